"""The machinery around the training loop: what a run needs but a reader of
train.py should not have to read first.

  errors       the exceptions a user can act on (bottom: imports nothing)
  validation   every config check, one line per bad field
  parallel     meshes, shardings, CPU devices, micro-batches, jax.distributed
  checkpoints  orbax checkpoints and exact resume
  bookkeeping  resume, the NaN stop and the per-group recorder of a run
  run_logs     the run's files (CSV records, TensorBoard) and their names
  progress     progress bar or log lines
  signals      Ctrl-C / SIGTERM as a stop request
  plots        every PNG
  cli          what main.py and tools/ share: config flag, one-line errors
"""

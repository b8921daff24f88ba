"""Predict any schedule's training loss from a law fitted on a few runs.

  python tools/predict.py --fit=runs/constant,runs/cosine,runs/step \
      --config=configs/lm_wsd.py --output=wsd.json [--plot=wsd.png]

Fits a schedule law (laws.py; --law, default the Multi-Power Law of Luo et
al. 2025) on the per-step records of finished runs of one task, model,
optimizer, batch size and peak (several seeds of each welcome: they give
the prediction its interval), then predicts the training-loss curve of the
schedule --config describes, its rate at every step built by schedules.py
as training builds it. Writes OUT.json (final_loss, interval, law, the
fitted parameters, the predicted curve, and `cautions`: why this
prediction may mislead, e.g. a schedule longer than every fitted run, where
docs/laws.md's benchmark found every law far off, in either direction) and
prints one line.

--measured=RUN_DIR[,...]: runs of the predicted schedule, to compare with
(and to draw, with --plot). --optimize: the non-increasing schedule after
the config's own warmup, of its length and peak, with the lowest predicted
final loss, written as a config anyone can train (OUT.schedule.json, for
configs/recorded.py). prediction.py holds the library; docs/laws.md the
benchmark of how well each law predicts here.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position

from absl import flags
import numpy as np

from machinery import cli
from machinery import errors
from machinery import files
from machinery import plots
import laws
import prediction

FLAGS = flags.FLAGS

flags.DEFINE_list('fit', None, 'Finished run workdirs (or published members '
                  'with train_steps.csv[.gz]) to fit the law on.')
flags.DEFINE_string('output', None, 'Where to write the prediction (JSON).')
flags.DEFINE_enum('law', 'multi_power', list(laws.LAWS), 'Which law.')
flags.DEFINE_list('measured', [], 'Finished runs of the predicted schedule, '
                  'to compare the prediction with.')
flags.DEFINE_string('plot', '', 'Draw the predicted curve (and the measured '
                    'and fitted runs) into this PNG.')
flags.DEFINE_bool('optimize', False, 'Also search the non-increasing '
                  'schedule after the warmup with the lowest predicted final '
                  'loss, and write it as a config (OUT.schedule.json).')
flags.mark_flags_as_required(['fit', 'output'])
cli.define_config_flag()


def _output_problem(path: str) -> str | None:
  path = pathlib.Path(path)
  if path.suffix != '.json':
    return f'--output={path} must end in .json'
  if not path.parent.is_dir():
    return f'--output={path}: its folder {path.parent} does not exist'
  if path.is_symlink():
    return f'--output={path} is a symbolic link; name a plain file'
  return None


def _load(paths, flag) -> list:
  if not paths:
    raise errors.ConfigError(f'--{flag} names no run')
  return [prediction.load_run(p) for p in paths]


def _binned(run):
  curve = run.curve()
  return curve.steps[:, -1], curve.losses


def predict(config, fit_paths, law_name, measured_paths=(), plot='',
            optimize=False) -> dict:
  """Everything OUT.json holds (see the module docstring)."""
  runs = _load(fit_paths, 'fit')
  prediction.check_fit_set(runs)
  rates = prediction.schedule_rates(config, runs)
  measured = [prediction.load_run(p) for p in measured_paths]
  for run in measured:
    if run.steps != len(rates):
      raise errors.ConfigError(
          f'--measured run {run.path} has {run.steps} steps; the schedule '
          f'predicted has {len(rates)}: give runs of the --config schedule')
  law_fit = prediction.fit_runs(law_name, runs)
  steps = np.arange(1, len(rates) + 1)
  curve = law_fit.predict(rates, steps)
  if not np.all(np.isfinite(curve)):
    raise errors.DataError(
        f'{law_name} fitted on these runs predicts no finite loss for this '
        f'schedule (parameters {law_fit.pooled.params}): try another --law')
  result = {
      'law': law_name, 'law_form': laws.LAWS[law_name].summary,
      'schedule': config.schedule, 'steps': len(rates),
      **law_fit.final(rates),
      'params': law_fit.pooled.params,
      'per_seed_params': {str(s): f.params for s, f in law_fit.per_seed.items()},
      'fit_runs': [r.path for r in runs],
      'fit_seeds': sorted({r.seed for r in runs}),
      'curve_note': 'curve[i]: the loss predicted after i + 1 updates, the '
                    'level train_steps.csv records at step i + 1',
      'curve': [round(float(v), 6) for v in curve],
      'cautions': prediction.cautions(law_fit, runs, rates),
  }
  if measured:
    result['measured'] = {
        'runs': [r.path for r in measured],
        'final_loss_last_bin': [prediction.measured_final(r) for r in measured],
        'predicted_last_bin': prediction.predicted_final_bin(
            law_fit, rates)['final_loss'],
        'note': f'each run\'s mean loss over its last of {laws.BINS} bins of '
                'steps, and the law\'s mean over the same steps'}
  if optimize:
    knots, found = prediction.optimize(law_fit, config, runs)
    found_rates = prediction.schedule_rates(found, runs)
    result['optimized'] = {'knots': list(knots),
                           **law_fit.final(found_rates),
                           'config': json.loads(found.to_json_best_effort())}
  if plot:
    plots.plot_prediction(
        (steps, curve),
        [(f'measured, seed {r.seed}', *_binned(r)) for r in measured],
        [(f'fitted: {r.config["schedule"]}, seed {r.seed}', *_binned(r))
         for r in runs],
        f'{law_name} fitted on {len(runs)} runs: {config.schedule}, '
        f'{len(rates)} steps', plot)
  return result


def _line(result) -> str:
  interval = result['interval']
  if interval:
    around = f' [{interval[0]:.4f}, {interval[1]:.4f}]'
  elif len(result['fit_seeds']) < 2:
    around = ' (no interval: one seed)'
  else:
    around = f' ({result["interval_note"]})'
  return (f'{result["law"]} predicts a final training loss of '
          f'{result["final_loss"]:.4f}{around} for {result["schedule"]} '
          f'({result["steps"]} steps), fitted on '
          f'{_count(len(result["fit_runs"]), "run")} of '
          f'{_count(len(result["fit_seeds"]), "seed")}'
          + ''.join(f' (caution: {c})' for c in result['cautions']))


def _count(n, noun) -> str:
  return f'{n} {noun}' + ('' if n == 1 else 's')


def main(argv):
  del argv
  problem = _output_problem(FLAGS.output) or (
      plots.output_problem(FLAGS.plot) if FLAGS.plot else None)
  if problem:
    sys.exit(f'Error: {problem}.')
  with cli.one_line_errors():
    result = predict(FLAGS.config, FLAGS.fit, FLAGS.law, FLAGS.measured,
                     FLAGS.plot, FLAGS.optimize)
  output = pathlib.Path(FLAGS.output)
  line = _line(result)
  if 'optimized' in result:
    schedule_path = output.with_suffix('.schedule.json')
    files.write_text(schedule_path,
                     json.dumps(result['optimized']['config'], indent=2))
    best = result['optimized']
    line += (f'; the best non-increasing schedule it finds ends at '
             f'{best["final_loss"]:.4f}: train it with python main.py '
             f'--config=configs/recorded.py:{schedule_path} --workdir=DIR')
  files.write_text(output, json.dumps(result, indent=1))
  print(f'{line}. Wrote {output}' + (f' and {FLAGS.plot}' if FLAGS.plot
                                      else '') + '.')


if __name__ == '__main__':
  cli.run(main)

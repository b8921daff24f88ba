"""A schedule study: a grid of configs x seeds, with confidence intervals.

  python tools/study.py --config=configs/default.py --workdir=runs/study \
      --seeds=5 --vary=schedule=constant,warmup_cosine,sgdr \
      [--vary=warmup_epochs=0,1,2] [--baseline=schedule=constant] \
      [--config.num_epochs=5 ...]
  python tools/study.py --config=configs/default.py --workdir=runs/methods \
      --vary=config=configs/default.py,configs/wsd.py,configs/schedule_free.py

A value of `--vary=config=...` is a whole config file: its fields that
differ from the --config file's (a method, often several fields at once),
applied over --config and --config.X; other --vary fields apply last.

Trains every grid point (the cross product of the --vary values) for seeds
0..N-1 (see studies/ for how: one after another, or stacked into one
program with jax.vmap), then reports only what the statistics support: each
point's mean final test accuracy with its 95% Student-t interval, and each
point against its baseline as a paired difference over the same seeds —
"better" or "worse" only when that interval excludes zero, otherwise "no
detectable difference with N seeds".

The baseline names some varied fields (default: all, at their first values);
every point is compared with the point that has the baseline's values in
those fields and its own in the others.

Writes into WORKDIR: study.csv (a row per member), study_epochs.csv (per
member and epoch), study.json (the statistics), study.md (the table a person
reads), study.png (test accuracy per epoch, mean and 95% band per point; with
two numeric varied fields also a heatmap) and study_spec.json (the command,
the grid, the machine and versions: enough for --rebuild). With
--publish=docs/studies/NAME the results and every member's config.json are
copied there; `--rebuild --workdir=docs/studies/NAME` rewrites the tables and
the picture from those files alone. Members live in WORKDIR/members/,
each a workdir as main.py writes it, named by a readable part of its values
and a hash of them. Run the same command again to resume:
finished members are not trained again.

Several devices and hosts: stacked groups are split over every device
(--members_per_device caps a program); with main.py's --coordinator_address,
--num_processes and --process_id (or JAX_*), `--mode=stacked` trains every
group over one mesh of all processes' devices, and sequential members are
shared out between the processes, the last to finish writing the report
(docs/studies.md, "Several devices and hosts").
"""

import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

import jax

from machinery import cli
from machinery import errors
from machinery import files
from machinery import parallel
from machinery import workdir as workdir_lib
import studies

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Folder of the study and its members.')
flags.DEFINE_integer('seeds', 5, 'Seeds 0..N-1 for every grid point.',
                     lower_bound=1)
flags.DEFINE_multi_string('vary', [], 'FIELD=V1,V2,... (repeatable): the '
                          'grid is the cross product.')
flags.DEFINE_string('baseline', None, 'FIELD=V[,FIELD=V]: what each point is '
                    'compared with; default: the first value of every field.')
flags.DEFINE_float('target_accuracy', 0.99, 'For epochs_to_target.',
                   lower_bound=0, upper_bound=1)
flags.DEFINE_enum('mode', 'auto', studies.MODES, 'auto: stacked (vmap) on '
                  'GPU/TPU, sequential on CPU, the faster there.')
flags.DEFINE_integer('members_per_device', 0, 'Stacked mode: at most this '
                     'many members per device in one program (0: a whole '
                     'group at once, split over every device).', lower_bound=0)
flags.DEFINE_bool('allow_large_study', False, 'Train a grid of more than '
                  f'{studies.MAX_MEMBERS:,} members.')
flags.DEFINE_string('publish', None, 'Also copy the results (and every '
                    "member's config.json) to this folder, e.g. "
                    'docs/studies/NAME.')
flags.DEFINE_string('carry', None, 'A folder (e.g. docs/studies/progress/'
                    'NAME) that keeps every finished member\'s records, '
                    'written after each member: commit it, and on another '
                    'machine the study resumes from it (its finished members '
                    'are not retrained). Checkpoints are not carried.')
flags.DEFINE_list('reuse', [], 'Other studies\' workdirs or --carry folders '
                  '(comma-separated): a member that is a finished run there '
                  '(the same config field for field, seed and CPU split '
                  'included, and the same data) takes its records instead of '
                  'training again.')
flags.DEFINE_bool('rebuild', False, 'Only rewrite study.json, study.md and '
                  'study.png of --workdir from its study.csv, '
                  'study_epochs.csv and study_spec.json; trains nothing.')
flags.mark_flag_as_required('workdir')
cli.define_config_flag(required=False)
# Several processes (see "Several devices and hosts" in docs/studies.md).
cli.define_distributed_flags()



def rebuild_only():
  with cli.one_line_errors():
    text = studies.rebuild(FLAGS.workdir)
  print(text)
  print(f'Rebuilt {FLAGS.workdir}/study.json, study.md and study.png from '
        f'its study.csv, study_epochs.csv and {studies.SPEC_JSON}.')


def main(argv):
  del argv
  if FLAGS.rebuild:
    return rebuild_only()
  if FLAGS.config is None:
    sys.exit('Error: --config=FILE is required (except with --rebuild).')
  workdir = pathlib.Path(FLAGS.workdir)
  with cli.one_line_errors():
    workdir_lib.check_usable(workdir)
    share, mode = join_processes()  # before anything starts JAX
    varied = [studies.parse_vary(text, FLAGS.config) for text in FLAGS.vary]
    fields = [f for f, _ in varied]
    if len(set(fields)) != len(fields):
      raise errors.ConfigError('--vary names a field twice.')
    count = studies.grid_size(varied, FLAGS.seeds)
    logging.info('Study: %d member(s) (grid points x seeds).', count)
    studies.check_grid_size(count, FLAGS.allow_large_study)
    points = studies.grid(varied)
    baseline = studies.parse_baseline(FLAGS.baseline, varied, FLAGS.config)
    # A method is what its file sets apart from --config's file as written.
    reference = cli.load_config_file(FLAGS['config'].config_filename)
    members = studies.members(FLAGS.config, points, FLAGS.seeds, workdir,
                              reference)
    # Before anything starts JAX, too: every member gets main.py's split.
    studies.split_cpu([m.config for m in members])
    studies.check_reuse_sources(FLAGS.reuse, workdir)
    with workdir_lib.locked(own_folder(workdir, share)):
      mine = [m for m in members if share.owns(m)]
      carried = studies.carry_in(FLAGS.carry, mine) if FLAGS.carry else 0
      mode = studies.choose_mode(mode)
      data = studies.load_data(members, mode)
      reused = studies.reuse_in(FLAGS.reuse, mine, data, mode)
      todo = [m for m in mine if not studies.is_finished(m)]
      for member in mine:
        studies.check_same_data(member, data[studies.data_key(member.config)])
      logging.info('Study: %d grid point(s) x %d seed(s) = %d members, %d to '
                   'train (%s%s).', len(points), FLAGS.seeds,
                   len(members), len(todo), mode, share_note(share))
      start = time.perf_counter()
      if carried:
        logging.info('Study: %d finished member(s) carried in from %s.',
                     carried, FLAGS.carry)
      for source, count in reused.items():
        logging.info('Study: %d member(s) taken from %s: the same runs, '
                     'finished there.', count, source)

      def carry_out():
        if FLAGS.carry:
          studies.carry_out(mine, FLAGS.carry)

      studies.train_members(todo, mode, data, FLAGS.members_per_device,
                            after_each=carry_out)
      carry_out()
      spec = {'command': ' '.join(sys.argv), 'vary': varied,
              'baseline': baseline, 'seeds': FLAGS.seeds,
              'target_accuracy': FLAGS.target_accuracy,
              **studies.task_spec(members), 'machine': studies.machine(),
              'extra': {'mode': mode, 'members_trained_now': len(todo),
                        'wall_s_now': round(time.perf_counter() - start, 1),
                        'members_carried_in': carried,
                        'members_reused': sum(reused.values())}}
      if share.num_processes == 1:
        studies.check_all_done(members)
        if not parallel.is_main_process():
          print(f'Process {jax.process_index()}: done; process 0 writes the '
                'report.')
          return
        return report(workdir, members, spec)
    report_when_all_done(workdir, members, spec)


def join_processes():
  """(this process's Share of the sequential members, the mode).

  Several processes (--coordinator_address, or JAX_COORDINATOR_ADDRESS)
  either train stacked groups together over one mesh of every host's
  devices (they join jax.distributed, as main.py's hosts do), or each train
  their own share of sequential members on their own devices, as main.py
  would, with no JAX job to join.
  """
  settings = parallel.distributed_settings(
      FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  mode = studies.mode_before_start(FLAGS.mode, settings)
  if settings is None:
    return studies.Share(), mode
  if mode == 'stacked':
    parallel.maybe_initialize_distributed(
        FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
        FLAGS.distributed_timeout_s)
    return studies.Share(), mode
  return studies.sequential_share(settings), mode


def own_folder(workdir, share):
  """The folder this process locks for the whole study: the study's own,
  or with several processes one per process (they share the study's and
  each member's lock guards its run)."""
  if share.num_processes > 1:
    folder = workdir / f'process_{share.process_id}'
  elif jax.process_count() > 1:
    folder = parallel.process_logdir(workdir)
  else:
    return workdir
  return files.check_no_links_below(workdir, folder)  # never a link


def share_note(share):
  if share.num_processes == 1:
    return ''
  first, step = share.process_id, share.num_processes
  return (f'; process {first} of {step} trains members #{first}, '
          f'#{first + step}, #{first + 2 * step}, ... of the study')


def report_when_all_done(workdir, members, spec):
  """With several processes: the one that finds every member done writes
  the report; the others say what is left (any may rerun the command)."""
  left = [m for m in members if not studies.finished_quietly(m)]
  if left:
    print(f'This process\'s members are done; {len(left)} member(s) of '
          'other processes are still training (e.g. '
          f'{left[0].workdir}). The last process to finish writes the '
          'report; or run the same command again once they are done.')
    return
  try:
    with workdir_lib.locked(workdir):
      if spec['extra']['members_trained_now'] and studies.report_is_current(
          workdir, members):
        print('Every member is done; another process wrote the report in '
              f'{workdir} after the last one finished.')
        return
      report(workdir, members, spec)
  except errors.WorkdirError as e:
    if 'in use' not in str(e):
      raise
    print(f'Every member is done; another process is writing the report in '
          f'{workdir}.')


def report(workdir, members, spec):
  text = studies.write_report(workdir, members, spec)
  if FLAGS.publish:
    studies.publish(workdir, members, FLAGS.publish)
  print(text)
  print('Wrote ' + ', '.join(str(workdir / f) for f in studies.REPORT_FILES))
  if FLAGS.publish:
    print(f'Published to {FLAGS.publish} (with {studies.SPEC_JSON} and every '
          'member\'s config.json); rebuild its tables with --rebuild '
          f'--workdir={FLAGS.publish}.')


if __name__ == '__main__':
  cli.run(main)

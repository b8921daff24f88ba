"""How many epochs? A whole budget curve from one WSD run per seed.

  python tools/budgets.py --config=configs/wsd.py --workdir=runs/budgets \
      --budgets=2,3,5,10 [--seeds=5] [--decay_fraction=0.2] \
      [--compare_study=DIR] [--config.X=Y ...]

For a budget of B epochs the cooldown takes the last decay_fraction x B
epochs. One trunk per seed trains the warmup and the constant peak up to the
largest budget's cooldown start, pausing at every budget's (mid-epoch steps
included); each budget is then a normal run directory (config.json,
train_steps.csv, epochs.csv, checkpoints) branched from the trunk there and
cooled down to its end. Each branch is the run

  python main.py --config=configs/wsd.py --config.num_epochs=B \
      --config.decay_fraction=F --config.seed=S

step for step (see budgets.py). For budgets 2,3,5,10 with 20% cooldowns a
seed costs 8 + 4 = 12 epochs instead of 20.

Writes budgets.csv (a row per budget and seed), budgets.json (per budget:
mean and 95% Student-t interval over seeds; the cost), budgets.md and
budgets.png into WORKDIR. --compare_study names a finished tools/study.py
study with --vary=num_epochs=... and the same seeds (e.g. warmup_cosine at
every budget, trained separately): each budget is then compared with it,
paired by seed. Run the same command again to resume. --carry=DIR copies
every finished seed's records there (commit it): on another machine the
same command with it does not train that seed again.

Several cooldowns from one trunk (Hagele et al.'s fractions x shapes):
--decay_fraction=0.1,0.2,0.4 --decay_shapes=linear,1-sqrt trains, per
seed, one trunk up to the latest cooldown start and a branch per budget,
fraction and shape (budget<B>_<shape>_<fraction>), each the run of its
own config step for step; the report has a row per branch, one family.
--compare_setting=config=configs/lm.py compares with one setting of a
--compare_study that varies config (e.g. the baseline of methods_lm). `--rebuild
--workdir=docs/budgets/NAME` rewrites a published sweep's statistics,
budgets.md and budgets.png from its budgets.csv and budgets.json alone.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

import budgets as budgets_lib
from machinery import cli
from machinery import workdir as workdir_lib
import studies
import tasks
import train

FLAGS = flags.FLAGS

flags.DEFINE_string('workdir', None, 'Folder of the trunks and branches.')
flags.DEFINE_string('budgets', None, 'Epochs budgets, increasing: 2,3,5,10.')
flags.DEFINE_integer('seeds', 5, 'Seeds 0..N-1: one trunk each.')
flags.DEFINE_list('decay_fraction', ['0.2'], 'Share of each budget its '
                  'cooldown takes, in (0, 1); several (0.1,0.2,0.4) branch '
                  'every one from the same trunk.')
flags.DEFINE_list('decay_shapes', [], 'Cooldown shapes (linear, cosine, '
                  '1-sqrt), each with every --decay_fraction; default: the '
                  'config\'s decay_shape.')
flags.DEFINE_string('compare_study', None, 'A finished study over num_epochs '
                    'to compare every budget with, paired by seed.')
flags.DEFINE_string('compare_setting', None, 'FIELD=VALUE: compare with '
                    'that setting of a --compare_study that varies FIELD, '
                    'e.g. config=configs/lm.py of a methods study.')
flags.DEFINE_string('compare_name', 'warmup_cosine, a run per budget',
                    'How the comparison is labelled.')
flags.DEFINE_string('carry', None, 'A folder (e.g. in the repository) that '
                    'keeps finished seeds\' records across machines.')
flags.DEFINE_bool('rebuild', False, 'Only rewrite budgets.json\'s '
                  'statistics, budgets.md and budgets.png of --workdir (e.g. '
                  'docs/budgets/mnist) from its budgets.csv and budgets.json; '
                  'trains nothing.')
flags.mark_flags_as_required(['workdir'])
cli.define_config_flag(required=False)


def main(argv):
  del argv
  workdir = pathlib.Path(FLAGS.workdir)
  if FLAGS.rebuild:
    with cli.one_line_errors():
      text = budgets_lib.rebuild(workdir)
    print(text)
    print(f'Rebuilt {workdir}/budgets.json, budgets.md and budgets.png.')
    return
  if FLAGS.config is None or not FLAGS.budgets:
    sys.exit('Error: --config=FILE and --budgets=B1,B2,... are required '
             '(except with --rebuild).')
  config, seeds = FLAGS.config, FLAGS.seeds
  with cli.one_line_errors():
    workdir_lib.check_usable(workdir)
    budgets = budgets_lib.parse_budgets(FLAGS.budgets)
    cooldowns = budgets_lib.parse_cooldowns(config, FLAGS.decay_fraction,
                                            FLAGS.decay_shapes)
    budgets_lib.check_plan(config, budgets, cooldowns, seeds)
    branches = budgets_lib.branches_of(budgets, cooldowns)
    with workdir_lib.locked(workdir):
      run = train.setup(budgets_lib.branch_config(config, branches[0], 0))
      steps_per_epoch, fingerprint = run.steps_per_epoch, run.data.fingerprint
      metric = tasks.task_of(config).primary
      comparison = (budgets_lib.read_comparison(FLAGS.compare_study,
                                                fingerprint, metric,
                                                FLAGS.compare_setting)
                    if FLAGS.compare_study else None)
      starts = [budgets_lib.cooldown_start(budgets_lib.branch_config(
          config, b, 0), steps_per_epoch) for b in branches]
      budgets_lib.check_call_grouping(config, starts, steps_per_epoch)
      logging.info('Branches %s: cooldowns start at steps %s (%d steps per '
                   'epoch); %d seed(s).', [b.name for b in branches], starts,
                   steps_per_epoch, seeds)
      cost = budgets_lib.Cost(workdir)
      plan = (config, budgets, cooldowns)
      for seed in range(seeds):
        if FLAGS.carry and budgets_lib.carry_in(FLAGS.carry, *plan, seed,
                                                workdir, cost, fingerprint):
          logging.info('Seed %d: finished elsewhere, taken from %s.', seed,
                       FLAGS.carry)
        budgets_lib.train_seed(*plan, seed, workdir, cost, steps_per_epoch,
                               fingerprint)
        if FLAGS.carry:
          budgets_lib.carry_out(FLAGS.carry, *plan, seed, workdir, cost,
                                fingerprint)
      rows = budgets_lib.branch_rows(config, budgets, cooldowns, seeds,
                                     workdir, steps_per_epoch)
      summary = budgets_lib.summarize(rows, budgets, seeds, comparison,
                                      metric)
      machines = budgets_lib.trained_on(budgets, seeds, workdir, cooldowns)
      spent = budgets_lib.cost_summary(rows, budgets, seeds, cost.seconds,
                                       len(machines))
      spec = {'command': ' '.join(sys.argv), 'budgets': list(budgets),
              'seeds': seeds,
              'decay_fraction': (cooldowns[0].fraction if len(cooldowns) == 1
                                 else [[c.fraction, c.shape]
                                       for c in cooldowns]),
              'compare_study': FLAGS.compare_study,
              **({'compare_setting': FLAGS.compare_setting}
                 if FLAGS.compare_setting else {}),
              'compare_name': FLAGS.compare_name if comparison else None,
              **tasks.spec_entry(config),
              'machine': studies.machine(), 'trained_on': machines}
      text = budgets_lib.write_report(workdir, rows, summary, spent, spec)
  print(text)
  print('Wrote ' + ', '.join(str(workdir / f)
                             for f in budgets_lib.REPORT_FILES))


if __name__ == '__main__':
  cli.run(main)

"""How many epochs? A whole budget curve from one WSD trunk per seed.

Up to its decay a warmup-stable-decay run does not depend on its length
(schedules.wsd_schedule): with the cooldown a fixed share of the run
(`decay_fraction`), a B-epoch run is the peak-rate run up to its own
S_B = T_B - round(decay_fraction x T_B), then a short cooldown. So one trunk
per seed, trained at the peak up to the largest S_B and paused at every S_B,
can be branched into every budget: each branch copies the trunk's records
and its state at S_B into a run directory of its own, with the config of
the B-epoch run, and resumes there (exact resume), which makes it that run
step for step (MiniCPM, arXiv 2404.06395; Hägele et al., arXiv 2405.18392).

The trunk is the longest budget's own run, paused (train.train_group's
`until_step`): its config.json says what it is. Layout under the workdir:

  seed<S>/trunk/          the trunk (checkpoints at every S_B)
  seed<S>/budget<B>/      one normal run directory per budget (main.py's)
  budgets.csv, budgets.json, budgets.md, budgets.png, cost.json

Several cooldowns (decay fractions x shapes, Hagele et al.'s comparison)
branch from the same trunk too: every (fraction, shape) of every budget is
a branch `budget<B>_<shape>_<fraction>`, the trunk trained up to the latest
cooldown start of them all. With one cooldown the names, rows and report
are those of a plain budget sweep.

Everything resumes: a trunk from its last checkpoint, a branch already made
is not made again, a finished branch is not trained again. With a carry
folder (carry_out, carry_in) a seed whose branches all finished on one
machine is not trained again on the next: on 2 CPU cores a sweep outlives
a session.

The package, by concern:

- `plan`: the budgets and cooldowns, each branch's config and the trunk's,
  where each cooldown starts, the refusals before any training.
- `sweep`: the trunks, the branches made from them and their cooldowns,
  the wall time (cost.json), carrying a finished seed between machines.
- `report`: the comparison runs, the statistics, budgets.csv/.json/.md/.png
  and rebuilding them from a published sweep.

`import budgets` gives every public name of them (`budgets.train_seed`,
`budgets.summarize`, ...); tools/budgets.py is the command.
"""

from budgets.plan import (
    Cooldown,
    cooldowns_of,
    parse_cooldowns,
    Branch,
    branches_of,
    parse_budgets,
    budget_config,
    branch_config,
    trunk_config,
    check_plan,
    cooldown_start,
    check_call_grouping,
)
from budgets.sweep import (
    TRUNK,
    PARTIAL,
    MARKER,
    COST_JSON,
    seed_dir,
    branch_dir,
    is_finished,
    make_branch,
    Cost,
    train_seed,
    branch_rows,
    carry_out,
    carry_in,
    trained_on,
)
from budgets.report import (
    ROW_FIELDS,
    COOLDOWN_FIELDS,
    REPORT_FILES,
    read_comparison,
    summarize,
    cost_summary,
    markdown,
    write_report,
    rebuild,
)

__all__ = [
    'Cooldown',
    'cooldowns_of',
    'parse_cooldowns',
    'Branch',
    'branches_of',
    'parse_budgets',
    'budget_config',
    'branch_config',
    'trunk_config',
    'check_plan',
    'cooldown_start',
    'check_call_grouping',
    'TRUNK',
    'PARTIAL',
    'MARKER',
    'COST_JSON',
    'seed_dir',
    'branch_dir',
    'is_finished',
    'make_branch',
    'Cost',
    'train_seed',
    'branch_rows',
    'carry_out',
    'carry_in',
    'trained_on',
    'ROW_FIELDS',
    'COOLDOWN_FIELDS',
    'REPORT_FILES',
    'read_comparison',
    'summarize',
    'cost_summary',
    'markdown',
    'write_report',
    'rebuild',
]

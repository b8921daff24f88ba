"""Schedule studies: a grid of configs x seeds, trained and summarised.

A study is the cross product of `--vary` values (its grid points), each run
for seeds 0..N-1: its members. Member (point, seed) is exactly the run of
`python main.py --config=... --config.seed=seed` with the point's fields: the
same initial parameters, the same data order, the same schedule.

Two ways to train the members, with the same records (a workdir per member,
as main.py writes it):

- `sequential`: one `train.train_and_evaluate` after another, with all of
  the project's machinery (micro-batches, CPU devices, exact resume). The
  faster way on a CPU, where one model already keeps the cores busy.
- `stacked`: members that share the shapes of their computation (batch size,
  number of steps, optimizer, data) are trained together in one program:
  `jax.vmap` over their stacked parameters, optimizer states, data orders and
  learning rates, each read from that member's own schedule at its step, so
  the model is compiled once and a GPU sees one larger program. The members
  axis is split over a mesh of every device of every process (each device
  trains its own members; a group is padded to a multiple of the device
  count). On XLA:CPU batched convolutions per member are slow (see
  docs/studies.md), so `auto` uses it only on accelerators.

With several processes (main.py's --coordinator_address, --num_processes,
--process_id), stacked groups span every process's devices through
jax.distributed, and sequential members are shared out: process i of n
trains members i, i + n, ... (`Share`).

Finished members are never trained again; interrupted ones resume from their
checkpoints (a stacked group resumes together).

The package, by concern:

- `grid`: --vary values, the grid points and the members (point, seed).
- `planning`: sequential or stacked, the CPU split, the data, the share of
  each process.
- `records`: finished members, --carry between machines, --reuse of other
  studies' runs; `machine`: the machine each ran on.
- `stacked`: the stacked program (jax.vmap over members).
- `training`: training the members that are left.
- `report`: study.csv, the summary and its statistics, study.md and
  study.png, rebuilding and publishing.

`import studies` gives every public name of them (`studies.members`,
`studies.train_members`, `studies.write_report`, ...).
"""

from studies.grid import (
    MAX_MEMBERS,
    MAX_NAME_CHARS,
    CONFIG_AXIS,
    method_fields,
    parse_vary,
    grid_size,
    check_grid_size,
    grid,
    label,
    member_folder_name,
    Member,
    members,
    task_spec,
)
from studies.planning import (
    MODES,
    MEMBER_AXIS,
    DATA_FIELDS,
    GROUP_FIELDS,
    data_key,
    split_cpu,
    load_data,
    STACKABLE_OPTIMIZERS,
    stackable,
    trains_stacked,
    choose_mode,
    check_mode,
    Share,
    sequential_share,
    mode_before_start,
)
from studies.machine import (
    machine,
    code_version,
)
from studies.records import (
    check_same_data,
    is_finished,
    finished_at,
    check_recorded_config,
    last_epoch_recorded,
    check_all_done,
    CARRIED_FILES,
    MACHINE_JSON,
    carry_in,
    copy_records_in,
    copy_records_out,
    REUSE_MAY_DIFFER,
    is_same_run,
    PLACEMENT_FIELDS,
    placement,
    machine_of_run,
    reuse_in,
    check_reuse_sources,
    carry_out,
    carried_machines,
    report_is_current,
    finished_quietly,
    recorded_fingerprint,
)
from studies.stacked import (
    INJECTED,
    injected_optimizer,
    compiled_for,
    member_mesh,
    programs,
    slots,
    StackedGroup,
    stacked_seconds_per_step,
    train_stacked,
    stacked_eval,
)
from studies.training import (
    train_members,
)
from studies.report import (
    member_result,
    parse_baseline,
    TRAINED_ACCURACY,
    outcome,
    compare,
    result_dict,
    summarize,
    comparison_sentence,
    family_note,
    markdown,
    epoch_curves,
    heatmap,
    write_csv,
    json_safe,
    REPORT_FILES,
    SPEC_JSON,
    ROW_FIELDS,
    EPOCH_ROW_FIELDS,
    write_report,
    write_tables,
    read_csv,
    counts,
    rebuild,
    publish,
    epoch_rows,
)

__all__ = [
    'MAX_MEMBERS',
    'MAX_NAME_CHARS',
    'CONFIG_AXIS',
    'method_fields',
    'parse_vary',
    'grid_size',
    'check_grid_size',
    'grid',
    'label',
    'member_folder_name',
    'Member',
    'members',
    'task_spec',
    'MODES',
    'MEMBER_AXIS',
    'DATA_FIELDS',
    'GROUP_FIELDS',
    'data_key',
    'split_cpu',
    'load_data',
    'STACKABLE_OPTIMIZERS',
    'stackable',
    'trains_stacked',
    'choose_mode',
    'check_mode',
    'Share',
    'sequential_share',
    'mode_before_start',
    'machine',
    'code_version',
    'check_same_data',
    'is_finished',
    'finished_at',
    'check_recorded_config',
    'last_epoch_recorded',
    'check_all_done',
    'CARRIED_FILES',
    'MACHINE_JSON',
    'carry_in',
    'copy_records_in',
    'copy_records_out',
    'REUSE_MAY_DIFFER',
    'is_same_run',
    'PLACEMENT_FIELDS',
    'placement',
    'machine_of_run',
    'reuse_in',
    'check_reuse_sources',
    'carry_out',
    'carried_machines',
    'report_is_current',
    'finished_quietly',
    'recorded_fingerprint',
    'INJECTED',
    'injected_optimizer',
    'compiled_for',
    'member_mesh',
    'programs',
    'slots',
    'StackedGroup',
    'stacked_seconds_per_step',
    'train_stacked',
    'stacked_eval',
    'train_members',
    'member_result',
    'parse_baseline',
    'TRAINED_ACCURACY',
    'outcome',
    'compare',
    'result_dict',
    'summarize',
    'comparison_sentence',
    'family_note',
    'markdown',
    'epoch_curves',
    'heatmap',
    'write_csv',
    'json_safe',
    'REPORT_FILES',
    'SPEC_JSON',
    'ROW_FIELDS',
    'EPOCH_ROW_FIELDS',
    'write_report',
    'write_tables',
    'read_csv',
    'counts',
    'rebuild',
    'publish',
    'epoch_rows',
]

"""Training the members that are left: stacked groups or one run after another."""

from absl import logging

from machinery import errors
import train

from studies.grid import Member
from studies.planning import check_mode, data_key, GROUP_FIELDS, trains_stacked
from studies.stacked import train_stacked


def train_members(todo: list[Member], mode: str, data: dict,
                  members_per_device: int = 0, after_each=None) -> None:
  """Trains every member of `todo` (none finished) in `mode`; stacked
  groups in programs of at most `members_per_device` per device (0: all).
  `after_each()`, if given, is called after each member or stacked group."""
  groups = {}
  for member in todo:
    stacked = trains_stacked(member, mode)
    check_mode(member, stacked)
    key = (('stacked', tuple(str(member.config[f]) for f in GROUP_FIELDS))
           if stacked else ('sequential', ()))  # in the grid's order
    groups.setdefault(key, []).append(member)
  for (kind, _), group in groups.items():
    if kind == 'sequential':
      for member in group:
        _train_one(member)
        if after_each:
          after_each()
    else:
      train_stacked(group, data[data_key(group[0].config)],
                    members_per_device=members_per_device)
      if after_each:
        after_each()


def _train_one(member: Member) -> None:
  member.check_folder()
  logging.info('Member %s (sequential).', member.name)
  try:
    train.train_and_evaluate(member.config, str(member.workdir))
  except errors.NonFiniteLoss as e:  # one diverged member ends no study
    logging.warning('Member %s diverged: %s', member.name, e)

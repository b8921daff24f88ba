"""Run by test_study_placement.py in a subprocess with 4 forced CPU devices.

Trains the same stacked group of 3 members twice, into WORKDIR/one on a
1-device mesh and into WORKDIR/four on a 4-device mesh (one padding slot).
The group is tools/study.py's `--seeds=1 --vary=learning_rate=0.05,0.1,0.2`
with test_study_placement.STACKED_FLAGS. Not a test module.
"""

import pathlib
import sys

import jax

import conftest
import studies


def group(idx_dir, workdir):
  config = conftest.small_config(idx_dir, num_epochs=1, warmup_epochs=0.5)
  points = studies.grid([('learning_rate', [0.05, 0.1, 0.2])])
  return studies.members(config, points, 1, workdir)


def main(idx_dir, workdir):
  workdir = pathlib.Path(workdir)
  devices = jax.devices()
  assert len(devices) == 4, devices
  for name, mesh in (('one', studies.member_mesh(devices[:1])),
                     ('four', studies.member_mesh(devices))):
    studies.train_stacked(group(idx_dir, workdir / name), mesh=mesh)


if __name__ == '__main__':
  main(*sys.argv[1:])

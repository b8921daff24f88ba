"""The machine a study ran on, for its report."""

import os
import pathlib
import platform
import subprocess

import jax


def machine() -> dict:
  """Where the study ran: what its wall times and last digits depend on."""
  return {'host': platform.node(), 'processor': _cpu_name(),
          'cpu_count': os.cpu_count(), 'python': platform.python_version(),
          'jax_version': jax.__version__, 'backend': jax.default_backend(),
          'device_kind': jax.devices()[0].device_kind,
          'devices': jax.device_count(), 'code_version': code_version()}


def code_version():
  """The git commit of this project's source (with `+changes` when the
  tracked files differ from it), or None outside a git checkout: a member's
  last digits depend on the code as much as on the machine."""
  source = pathlib.Path(__file__).resolve().parent

  def git(*args):
    return subprocess.run(['git', '-C', str(source), *args], check=True,
                          capture_output=True, text=True, timeout=10).stdout
  try:
    commit = git('rev-parse', 'HEAD').strip()
    changed = git('status', '--porcelain', '--untracked-files=no').strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ('+changes' if changed else '')


def _cpu_name() -> str:
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor()

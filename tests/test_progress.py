"""Progress reports: a bar on a terminal, log lines elsewhere
(machinery/progress.py)."""

import logging

import pytest

from machinery import progress


def test_progress_lines_without_a_terminal(caplog):
  caplog.set_level(logging.INFO)
  report = progress.EpochProgress(3, 10, total_steps=400, done_steps=100,
                                  bar=False)
  report.update(100, loss=0.25, learning_rate=0.05)
  report.close()
  line = caplog.records[-1].getMessage()
  assert line.startswith('epoch 3/10: step 200/400 (50%), ')
  assert 'steps/s, ETA ' in line and 'loss 0.2500, lr 0.05' in line


def test_progress_bar_on_a_terminal(capsys):
  report = progress.EpochProgress(1, 2, total_steps=50, done_steps=0,
                                  bar=True)
  report.update(25, loss=1.5, learning_rate=0.1)
  report.update(25, loss=0.5, learning_rate=0.05)
  report.close()
  err = capsys.readouterr().err
  assert 'epoch 1/2' in err and '50/50' in err
  assert 'step/s' in err and 'loss=0.5000' in err and '\r' in err


@pytest.mark.parametrize('setting,isatty,expected', [
    ('auto', True, True), ('auto', False, False), ('always', False, True),
    ('never', True, False)])
def test_bar_only_on_a_terminal(monkeypatch, setting, isatty, expected):
  monkeypatch.setattr(progress.sys.stderr, 'isatty', lambda: isatty)
  assert progress.use_bar(setting) is expected

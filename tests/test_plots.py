"""The pictures every run draws (machinery/plots.py)."""

from conftest import small_config
from machinery import run_logs
from runs import png_size
import train


def test_every_run_writes_its_curves_png(idx_dir, tmp_path):
  train.train_and_evaluate(small_config(idx_dir, num_epochs=2), str(tmp_path))
  assert png_size(tmp_path / run_logs.CURVES_PNG) == (800, 800)

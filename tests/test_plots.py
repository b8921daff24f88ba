"""The pictures every run draws (machinery/plots.py)."""

import numpy as np

from conftest import small_config
from machinery import plots
from machinery import run_logs
from runs import png_size
import train


def test_every_run_writes_its_curves_png(idx_dir, tmp_path):
  train.train_and_evaluate(small_config(idx_dir, num_epochs=2), str(tmp_path))
  assert png_size(tmp_path / run_logs.CURVES_PNG) == (800, 800)


def test_the_loss_line_is_tensorboards_debiased_ema():
  np.testing.assert_allclose(plots.smoothed(np.full(30, 2.5)), 2.5)
  values = np.array([4.0, 2.0, 1.0])
  w = plots.LOSS_SMOOTHING
  want = [4.0, (w * (1 - w) * 4 + (1 - w) * 2) / (1 - w**2),
          (w * w * (1 - w) * 4 + w * (1 - w) * 2 + (1 - w) * 1) / (1 - w**3)]
  np.testing.assert_allclose(plots.smoothed(values), want, rtol=1e-12)
  noisy = 1 + 0.5 * np.sin(np.arange(2000) * 2.0)
  assert np.std(plots.smoothed(noisy)[200:]) < 0.1 * np.std(noisy)

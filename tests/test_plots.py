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


def test_a_studys_picture_shows_its_label_and_its_curves_ends(
    tmp_path, monkeypatch):
  """The y-axis label lies inside the picture (it was cut off at both ends
  beside the band's meaning), and a loss's legend does not cover the last
  epoch's points, where the comparison is read (bottom right, where it
  was)."""
  import math  # pylint: disable=g-import-not-at-top
  import tasks  # pylint: disable=g-import-not-at-top
  drawn = []
  monkeypatch.setattr(plots, '_save', lambda fig, output: drawn.append(fig))
  epochs = np.arange(1, 5)
  nats = math.log(2)
  curves = {f'config=configs/lm_variant.py:lm:peak=4{suffix}':
            (epochs, nats * mean, nats * (mean - 0.05), nats * (mean + 0.05))
            for suffix, mean in (('', np.array([2.8, 2.2, 1.9, 1.8])),
                                 (':warmup=0', np.array([3.4, 3.4, 3.1,
                                                         3.0])))}
  plots.plot_study(curves, None, tmp_path / 'study.png',
                   metric=tasks.BITS_PER_BYTE)
  [fig] = drawn
  fig.canvas.draw()
  [ax] = fig.axes
  label = ax.yaxis.label.get_window_extent()
  assert fig.bbox.x0 <= label.x0 and label.x1 <= fig.bbox.x1
  assert fig.bbox.y0 <= label.y0 and label.y1 <= fig.bbox.y1
  legend = ax.get_legend().get_window_extent()
  for line in ax.get_lines():
    x, y = ax.transData.transform(line.get_xydata()[-1])
    assert not legend.contains(x, y), line.get_label()

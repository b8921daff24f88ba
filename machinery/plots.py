"""The project's pictures: a schedule, a run's curves, a range test, a comparison.

Every function writes one PNG with matplotlib's file-only Agg backend, so they
work on machines without a display (CI, a server over ssh).
"""

import functools
import pathlib
import textwrap

import numpy as np

from machinery import files
from machinery import run_logs
import tasks

DPI = 100


@functools.cache
def _pyplot():
  """matplotlib.pyplot on the file-only Agg backend, imported on the first
  picture: every run, tool and test start is 0.4 s quicker without it."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')  # files only; no display needed
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt
FORMATS = ('png', 'svg', 'pdf', 'jpg', 'jpeg')


def output_problem(path) -> str | None:
  """Why a picture cannot be written to `path`, or None if it can."""
  path = pathlib.Path(path)
  if path.suffix.lower().lstrip('.') not in FORMATS:
    return (f'--output={path} has an unknown picture type: end it with one '
            f'of {", ".join("." + f for f in FORMATS)}')
  if not path.parent.is_dir():
    return f'--output={path}: the folder {path.parent} does not exist'
  if path.is_dir() and not path.is_symlink():
    return f'--output={path} is a folder: name a picture file in it'
  return None


def _save(fig, output) -> None:
  try:
    files.save_figure(fig, output, DPI)
  finally:
    _pyplot().close(fig)


# The EMA weight of curves.png's loss line: about a 50-step window, what
# TensorBoard's smoothing slider shows at 0.98 (its default, 0.6, leaves
# per-step noise a band).
LOSS_SMOOTHING = 0.98


def smoothed(values, weight=LOSS_SMOOTHING) -> np.ndarray:
  """TensorBoard's smoothing: a debiased exponential moving average.

  s_t = weight * s_{t-1} + (1 - weight) * v_t from s_{-1} = 0, divided by
  1 - weight**(t+1) so that the first values are not pulled toward 0.
  """
  values = np.asarray(values, np.float64)
  out = np.empty_like(values)
  average = 0.0
  for t, value in enumerate(values):
    average = weight * average + (1 - weight) * value
    out[t] = average / (1 - weight ** (t + 1))
  return out


def _mark_epochs(ax, epoch_starts) -> None:
  for boundary in epoch_starts:
    ax.axvline(boundary, color='gray', ls=':', lw=0.8)


def plot_schedule(steps, rates, epoch_starts, restarts, title, output) -> None:
  """Learning rate vs. step, epochs dotted, restarts/drops dashed red."""
  fig, ax = _pyplot().subplots(figsize=(8, 4), constrained_layout=True)
  ax.plot(steps, rates, color='tab:blue')
  _mark_epochs(ax, epoch_starts)
  for i, step in enumerate(restarts):
    ax.axvline(step, color='tab:red', ls='--', lw=1,
               label='restart, drop or start of decay' if i == 0 else None)
  if len(restarts):
    ax.legend(loc='upper right')
  ax.set_xlabel('step (dotted lines: epoch boundaries)')
  ax.set_ylabel('learning rate')
  ax.set_title(textwrap.fill(title, 95), fontsize=9)
  _save(fig, output)


def plot_run(workdir, output, metric=None) -> None:
  """Per-step rate and loss, and per epoch the task's primary metric (test
  accuracy, or a language model's validation bits per byte; tasks.py),
  from a workdir.

  `metric` (a tasks.Metric) defaults to the primary metric of the task
  recorded in the workdir's config.json. Works on a run in progress or one
  that stopped early: without a finished epoch the metric's panel says so;
  non-finite losses are left out of the log-scale loss panel.
  """
  metric = metric or tasks.primary_metric(run_logs.read_config(workdir))
  steps = run_logs.read_steps(workdir)
  epochs = run_logs.read_epochs(workdir, allow_empty=True)
  fig = _pyplot().figure(figsize=(8, 8), constrained_layout=True)
  ax_lr = fig.add_subplot(3, 1, 1)
  ax_loss = fig.add_subplot(3, 1, 2, sharex=ax_lr)
  ax_acc = fig.add_subplot(3, 1, 3)
  ax_lr.plot(steps['step'], steps['learning_rate'], color='tab:blue')
  ax_lr.set_ylabel('learning rate')
  finite = np.isfinite(steps['loss']) & (steps['loss'] > 0)
  ax_loss.plot(steps['step'][finite], steps['loss'][finite],
               color='tab:orange', lw=0.5, alpha=0.25, label='per step')
  ax_loss.plot(steps['step'][finite], smoothed(steps['loss'][finite]),
               color='tab:orange', lw=1.2,
               label=f'smoothed (EMA, weight {LOSS_SMOOTHING})')
  ax_loss.set_yscale('log')
  ax_loss.set_ylabel('train loss')
  ax_loss.legend(loc='upper right', fontsize=8)
  ax_loss.set_xlabel('step')
  for ax in (ax_lr, ax_loss):
    _mark_epochs(ax, epochs['step'][:-1])
  _plot_primary_metric(ax_acc, epochs, metric)
  fig.suptitle(f'{pathlib.Path(workdir).name}: learning rate, loss and '
               f'{metric.name}')
  _save(fig, output)


def _plot_primary_metric(ax, epochs, metric) -> None:
  """The metric per epoch, its best epoch annotated."""
  ax.set_xlabel('epoch')
  ax.set_ylabel(f'{metric.name} ({metric.unit})' if metric.unit == '%' else
                f'{metric.name}\n({metric.unit}, {metric.direction})')
  if not len(epochs['epoch']):
    ax.text(0.5, 0.5, 'no epoch finished yet', ha='center', va='center',
            transform=ax.transAxes)
    return
  shown = metric.shown(epochs[metric.key])
  ax.plot(epochs['epoch'], shown, 'o-', color='tab:green')
  best = int(np.nanargmax(shown) if metric.higher_is_better
             else np.nanargmin(shown))
  ax.annotate(metric.format(shown[best]), (epochs['epoch'][best], shown[best]),
              textcoords='offset points', ha='center',
              xytext=(0, -14) if metric.higher_is_better else (0, 8))


def plot_range_test(rates, losses, smoothed, suggestions: dict,
                    output) -> None:
  """Loss vs. learning rate (log x) with each rule's suggestion marked."""
  fig, ax = _pyplot().subplots(figsize=(8, 5), constrained_layout=True)
  ax.plot(rates, losses, color='tab:orange', lw=0.6, alpha=0.5,
          label='loss per step')
  ax.plot(rates, smoothed, color='tab:blue', label='smoothed loss')
  for (rule, rate), style in zip(suggestions.items(), ('--', ':')):
    ax.axvline(rate, color='tab:red', ls=style,
               label=f'{rule}: learning_rate = {rate:.3g}')
  ax.set_xscale('log')
  finite = smoothed[np.isfinite(smoothed)]
  if finite.size:
    ax.set_ylim(0, min(float(finite.max()), 4 * float(finite[0])) * 1.05)
  ax.set_xlabel('learning rate (exponential ramp)')
  ax.set_ylabel('training loss')
  ax.set_title('Learning-rate range test', fontsize=10)
  ax.legend(loc='upper left')
  _save(fig, output)


def _metric_label(metric) -> str:
  """'test accuracy (%)' (as the committed pictures read), or
  'validation loss (bits per byte; lower is better)'."""
  if metric.higher_is_better:
    return f'{metric.name} ({metric.unit})'
  return f'{metric.name} ({metric.unit}; {metric.direction})'


def plot_study(curves: dict, target, output, heatmap=None,
               metric=tasks.TEST_ACCURACY) -> None:
  """The primary metric per epoch (test accuracy, or a language model's
  validation bits per byte), mean and 95% band, one line per grid point.

  `curves`: {label: (epochs, mean, low, high)} in recorded units; `target`
  (an accuracy) a dotted line; `heatmap`, if given, is (x_name, x_values,
  y_name, y_values, cells [y][x]) for a second panel.
  """
  scale = metric.scale
  panels = 2 if heatmap else 1
  fig, axes = _pyplot().subplots(1, panels, figsize=(8 * panels, 5),
                           constrained_layout=True, squeeze=False)
  ax = axes[0, 0]
  lows = []
  # Past 10 points the default colours repeat: 20 distinct ones instead.
  colors = (_pyplot().get_cmap('tab20').colors if len(curves) > 10
            else [None] * len(curves))
  for color, (name, (epochs, mean, low, high)) in zip(colors, curves.items()):
    line, = ax.plot(epochs, scale * np.asarray(mean), 'o-', ms=3, label=name,
                    color=color)
    if np.all(np.isfinite(low)):
      ax.fill_between(epochs, scale * np.asarray(low),
                      scale * np.asarray(high), color=line.get_color(),
                      alpha=0.2)
      lows.append(np.asarray(low))
    else:
      lows.append(np.asarray(mean))
  if target:
    ax.axhline(100 * target, color='gray', ls=':',
               label=f'target {100 * target:g}%')
  if metric.higher_is_better:
    floor = np.percentile(np.concatenate(lows), 10) if lows else 0.9
    ax.set_ylim(max(100 * floor - 0.5, 0), 100)
  elif lows:  # a loss: from below the best to the 90th percentile
    values = scale * np.concatenate(lows)
    values = values[np.isfinite(values)]
    if values.size:
      ax.set_ylim(values.min() * 0.98, np.percentile(values, 90) * 1.02)
  ax.set_xlabel('epoch')
  # The band's meaning in the title: beside the metric's name, the label
  # outgrows a 5-inch axis and is cut off.
  ax.set_ylabel(_metric_label(metric))
  ax.set_title('mean and 95% interval over seeds', fontsize=10)
  # Curves end where the comparison is read: bottom right for a loss, top
  # right for an accuracy; the legend goes where they leave room.
  ax.legend(loc='lower right' if metric.higher_is_better else 'best',
            fontsize=8 if len(curves) <= 8 else 6,
            ncol=1 if len(curves) <= 8 else 2)
  if heatmap:
    _plot_heatmap(axes[0, 1], *heatmap, metric=metric)
  _save(fig, output)


def plot_heatmap(heatmap, title, output, metric=tasks.TEST_ACCURACY) -> None:
  """One heatmap figure: `heatmap` is (x_name, x_values, y_name, y_values,
  cells [y][x]) as studies.heatmap gives it."""
  fig, ax = _pyplot().subplots(figsize=(8, 1.6 + 1.1 * len(heatmap[3])),
                               constrained_layout=True)
  _plot_heatmap(ax, *heatmap, metric=metric)
  fig.suptitle(title, fontsize=10)
  _save(fig, output)


def _plot_heatmap(ax, x_name, x_values, y_name, y_values, cells,
                  metric=tasks.TEST_ACCURACY) -> None:
  """Mean final metric per cell, its 95% half-width, and * where the
  cell differs detectably (paired) from its baseline point."""
  scale = metric.scale
  digits = 2 if metric.unit == '%' else 3
  means = scale * np.asarray([[c[0] for c in row] for row in cells], float)
  image = ax.imshow(means, cmap='viridis' if metric.higher_is_better
                    else 'viridis_r', origin='lower', aspect='auto')
  ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
  ax.set_yticks(range(len(y_values)), [str(v) for v in y_values])
  ax.set_xlabel(x_name)
  ax.set_ylabel(y_name)
  for y, row in enumerate(cells):
    for x, (mean, half, detectable) in enumerate(row):
      text = f'{scale * mean:.{digits}f}' + ('*' if detectable else '')
      if np.isfinite(half):
        text += f'\n±{scale * half:.{digits}f}'
      red, green, blue, _ = image.cmap(image.norm(means[y, x]))
      bright = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5
      ax.text(x, y, text, ha='center', va='center', fontsize=8,
              color='black' if bright else 'white')
  ax.set_title(f'mean final {metric.name} ({metric.unit}) ± 95% interval;'
               '\n* differs detectably from its baseline (paired by seed)',
               fontsize=9)
  ax.figure.colorbar(image, ax=ax)


def plot_budgets(wsd, comparison, comparison_name, output,
                 metric=tasks.TEST_ACCURACY) -> None:
  """The final primary metric against the epochs budget: the WSD branches
  and, if given, runs trained separately at each budget; mean and 95% band.

  `wsd`, `comparison`: (budgets, mean, low, high) or None, recorded units;
  `wsd` may be {label: curve}, a line per cooldown.
  """
  scale = metric.scale
  fig, ax = _pyplot().subplots(figsize=(8, 5), constrained_layout=True)
  lines = (list((c, n) for n, c in wsd.items()) if isinstance(wsd, dict)
           else [(wsd, 'WSD: one trunk, a cooldown branch per budget')])
  for curve, name in lines + [(comparison, comparison_name)]:
    if curve is None:
      continue
    budgets, mean, low, high = (np.asarray(v, float) for v in curve)
    line, = ax.plot(budgets, scale * mean, 'o-', label=name)
    if np.all(np.isfinite(low)):
      ax.fill_between(budgets, scale * low, scale * high,
                      color=line.get_color(), alpha=0.2)
  ax.set_xlabel('epochs budget')
  ax.set_ylabel(f'final {_metric_label(metric)}, mean and 95% interval over '
                'seeds')
  ax.legend(loc='lower right' if metric.higher_is_better else 'upper right',
            fontsize=8)
  _save(fig, output)


def plot_cooldowns(shapes: dict, comparison, comparison_name, budget, output,
                   metric=tasks.TEST_ACCURACY) -> None:
  """Several cooldowns of one budget: the final primary metric against the
  cooldown's share of the run, a line per shape (Hägele et al.'s picture),
  and, if given, the separately trained run as a level with its band.

  `shapes`: {shape: (fractions, mean, low, high)}; `comparison`: (mean,
  low, high) or None; recorded units.
  """
  scale = metric.scale
  fig, ax = _pyplot().subplots(figsize=(8, 5), constrained_layout=True)
  for shape, curve in shapes.items():
    fractions, mean, low, high = (np.asarray(v, float) for v in curve)
    line, = ax.plot(100 * fractions, scale * mean, 'o-',
                    label=f'WSD, {shape} cooldown')
    if np.all(np.isfinite(low)):
      ax.fill_between(100 * fractions, scale * low, scale * high,
                      color=line.get_color(), alpha=0.2)
  if comparison is not None:
    mean, low, high = (scale * float(v) for v in comparison)
    ax.axhline(mean, color='black', linestyle='--', label=comparison_name)
    if np.isfinite(low):
      ax.axhspan(low, high, color='black', alpha=0.08)
  ax.set_xlabel(f'cooldown: the last % of the run ({budget} epochs)')
  ax.set_ylabel(f'final {_metric_label(metric)}\nmean and 95% interval over '
                'seeds')
  ax.legend(fontsize=8)
  _save(fig, output)


def plot_prediction(predicted, measured, fitted, title, output) -> None:
  """A law's predicted training-loss curve against measured runs.

  `predicted`: (steps, losses) of the law; `measured` and `fitted`: lists
  of (label, steps, binned losses): runs of the predicted schedule (bold)
  and the runs the law was fitted on (faint).
  """
  fig, ax = _pyplot().subplots(figsize=(8, 5), constrained_layout=True)
  for label, steps, losses in fitted:
    ax.plot(steps, losses, color='0.7', lw=1, label=label)
  for label, steps, losses in measured:
    ax.plot(steps, losses, lw=1.5, label=label)
  ax.plot(*predicted, 'k--', lw=2, label='predicted by the law')
  ax.set_xlabel('step')
  ax.set_ylabel('training loss (mean of each bin of steps)')
  ax.set_title(textwrap.fill(title, 80), fontsize=9)
  low = min(np.min(v[2]) for v in measured + fitted) if measured + fitted else (
      np.min(predicted[1]))
  ax.set_ylim(low - 0.05 * abs(low), np.percentile(predicted[1], 98) * 1.15)
  ax.legend(fontsize=7, loc='upper right')
  _save(fig, output)


def plot_law_benchmark(points: dict, title, output) -> None:
  """Predicted against measured final loss, a marker per law.

  `points`: {law: [(measured mean, measured std, predicted, low, high)]},
  one per held-out schedule (low, high: the predicted interval or nan).
  """
  fig, ax = _pyplot().subplots(figsize=(6.5, 6), constrained_layout=True)
  values = [v for rows in points.values() for r in rows
            for v in (r[0], r[2]) if np.isfinite(v)]
  low, high = (min(values), max(values)) if values else (0, 1)
  pad = 0.05 * (high - low or 1)
  ax.plot([low - pad, high + pad], [low - pad, high + pad], color='0.6',
          lw=1, label='predicted = measured')
  for (law, rows), marker in zip(points.items(), 'osD^v<>'):
    rows = np.asarray(rows, float).reshape(-1, 5)
    below, above = rows[:, 2] - rows[:, 3], rows[:, 4] - rows[:, 2]
    yerr = None if np.all(np.isnan(below)) else np.vstack([below, above])
    ax.errorbar(rows[:, 0], rows[:, 2], xerr=rows[:, 1], yerr=yerr,
                fmt=marker, ms=5, capsize=2, lw=1, label=law)
  ax.set_xlabel('measured final training loss (mean over seeds, ± 1 std)')
  ax.set_ylabel('predicted (95% interval)')
  ax.set_title(textwrap.fill(title, 70), fontsize=9)
  ax.legend(fontsize=8, loc='upper left')
  _save(fig, output)


def plot_law_curves(curves: dict, title, output, columns=4) -> None:
  """Each held-out schedule's measured curve against every law's, a panel
  per schedule.

  `curves`: {schedule: (steps, measured, {law: predicted})}, each a binned
  curve after the warmup. A panel's height spans its measured curve from a
  tenth of the way in, where the schedules part: a law far off leaves it.
  """
  rows = -(-len(curves) // columns)
  fig, axes = _pyplot().subplots(rows, columns, squeeze=False,
                                 figsize=(3.6 * columns, 2.8 * rows + 0.6),
                                 constrained_layout=True)
  for ax, (name, (steps, measured, predicted)) in zip(axes.flat,
                                                      curves.items()):
    ax.plot(steps, measured, color='0.6', lw=3,
            label='measured (mean of seeds)')
    for law, values in predicted.items():
      ax.plot(steps, values, '--', lw=1.2, label=law)
    shown = np.asarray(measured[len(measured) // 10:])
    pad = 0.1 * (shown.max() - shown.min() or abs(shown.max()) or 1)
    ax.set_ylim(shown.min() - pad, shown.max() + pad)
    ax.set_title(name, fontsize=9)
    ax.tick_params(labelsize=7)
  for ax in axes.flat[len(curves):]:
    ax.set_visible(False)
  handles, labels = axes.flat[0].get_legend_handles_labels()
  fig.legend(handles, labels, loc='outside lower center', ncols=len(labels),
             fontsize=8)
  axes[-1, 0].set_xlabel('step (bins of steps after the warmup)', fontsize=8)
  fig.supylabel('training loss', fontsize=9)
  fig.suptitle(textwrap.fill(title, 110), fontsize=10)
  _save(fig, output)

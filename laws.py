"""Schedule laws: a run's training-loss curve as a function of its rates.

Two laws from the literature claim to predict the loss of **any** schedule
from a few fitted runs; two baselines say what they must beat. Each is one
entry of `LAWS`: its parameters (positive ones fitted in log space, a
fraction through a logistic) and its curve over the steps asked for.

- `multi_power` (Luo et al., ICLR 2025, arXiv 2503.12811):
  L(t) = L0 + A (S1(t) + S_W)^-alpha - LD(t),
  LD(t) = B sum_{k<=t} (eta_{k-1} - eta_k) G(eta_k^-gamma S_k(t)),
  G(x) = 1 - (C x + 1)^-beta, S_k(t) = sum_{tau=k..t} eta_tau.
  S1 + S_W is the summed rate from the first step (warmup included); the
  drops are summed after the warmup (where the rate first reaches its peak).
- `annealing` (Tissue et al., arXiv 2408.11029):
  L(s) = L0 + A S1^-alpha - C S2, S2 = sum_{i<=s} m_i,
  m_i = lambda m_{i-1} + (eta_{i-1} - eta_i): the annealing area, with
  momentum lambda.
- `step_power`: L0 + A t^-alpha, the step alone (a schedule-blind
  baseline).
- `s1_power`: L0 + A S1^-alpha, the summed rate alone (no annealing term).

Rates are normalised by the run's peak (laws are fitted per task and
peak). Fitting follows the MPL authors: a Huber loss (delta 1e-3) on the
log residuals, here jitted in JAX (float64) and minimised with scipy's
L-BFGS-B from a few starting points; curves are compared on the mean loss
of equal bins of steps, which averages the per-step noise away.
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

HUBER_DELTA = 1e-3
BINS = 100            # loss bins per run the fit compares
POINTS_PER_BIN = 4    # steps of a bin the law is averaged over
MIN_STEPS = 20        # fewer steps than this leave no curve to fit
RATE_FLOOR = 1e-8     # normalised rates are clipped here (eta^-gamma at 0)
PREDICT_CHUNK = 512   # steps predicted at once


@dataclasses.dataclass(frozen=True)
class Curve:
  """A run's normalised rate at every step, and its binned training loss:
  `losses` (each bin's mean loss) and `steps` [bins, POINTS_PER_BIN] (the
  1-based steps, evenly spread over each bin, whose predictions are
  averaged to compare with it: a bin's mean is not its last value)."""
  rates: np.ndarray
  steps: np.ndarray
  losses: np.ndarray

  @property
  def warmup_end(self) -> int:
    """The first step at the peak rate (0-based)."""
    return _warmup_end(self.rates)


def _warmup_end(rates) -> int:
  return int(np.argmax(rates >= rates.max() * (1 - 1e-6)))


def curve(rates, losses, bins=BINS) -> Curve:
  """A run's per-step rates and losses -> its Curve (rates / peak, the
  losses after the warmup averaged in `bins` equal bins of steps)."""
  rates = np.asarray(rates, np.float64)
  losses = np.asarray(losses, np.float64)
  if len(rates) != len(losses):
    raise ValueError(f'{len(rates)} rates for {len(losses)} losses')
  if len(rates) < MIN_STEPS:
    raise ValueError(f'a run of {len(rates)} steps: a law needs at least '
                     f'{MIN_STEPS}')
  if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
    raise ValueError('a loss that is not finite and positive')
  if not np.all(np.isfinite(rates)) or rates.max() <= 0:
    raise ValueError('rates that are not finite, or never positive')
  # From the first step at the peak: in the warmup S1 is near 0, where
  # every law's power of S1 is unbounded while the loss is still the first
  # one (the MPL authors fit after the warmup too).
  first = _warmup_end(rates)
  if len(rates) - first < MIN_STEPS:
    raise ValueError(f'{len(rates) - first} steps after the warmup: a law '
                     f'needs at least {MIN_STEPS}')
  edges = np.linspace(first, len(rates),
                      min(bins, len(rates) - first) + 1).astype(int)
  means = np.array([losses[a:b].mean() for a, b in zip(edges, edges[1:])])
  steps = np.array([np.round(np.linspace(a + 1, b, POINTS_PER_BIN))
                    for a, b in zip(edges, edges[1:])]).astype(np.int64)
  return Curve(rates / rates.max(), steps, means)


def _summed(rates):
  """S(t) = sum_{tau<=t} eta_tau, t = 1..T (index t - 1)."""
  return jnp.cumsum(rates)


def _multi_power(p, rates, steps, warmup_end):
  eta = jnp.maximum(rates, RATE_FLOOR)
  summed = _summed(eta)
  at = summed[steps - 1]
  drops = jnp.concatenate([jnp.zeros(1), eta[:-1] - eta[1:]])
  k = jnp.arange(1, len(eta) + 1)
  drops = jnp.where(k - 1 > warmup_end, drops, 0.0)  # after the warmup
  # S_k(t) = S(t) - S(k - 1), for every (eval step t, drop step k <= t)
  before = jnp.concatenate([jnp.zeros(1), summed[:-1]])
  eta_k = eta
  if not isinstance(drops, jax.core.Tracer):
    # Rates known at trace time (a fit's runs): only the steps where the rate
    # drops add to LD, so the [steps, T] matrix keeps those columns alone
    # (none for a constant rate, two for a two-drop step).
    columns = np.flatnonzero(np.asarray(drops))
    drops, k, before, eta_k = (a[columns] for a in (drops, k, before, eta))
  s_kt = at[:, None] - before[None, :]
  x = eta_k[None, :] ** -p['gamma'] * s_kt
  g = 1 - (p['C'] * jnp.maximum(x, 0) + 1) ** -p['beta']
  mask = k[None, :] <= steps[:, None]
  loss_drop = p['B'] * jnp.sum(jnp.where(mask, drops[None, :] * g, 0), 1)
  return p['L0'] + p['A'] * at ** -p['alpha'] - loss_drop


def _annealing(p, rates, steps, warmup_end):
  eta = jnp.maximum(rates, RATE_FLOOR)
  drops = jnp.concatenate([jnp.zeros(1), eta[:-1] - eta[1:]])
  k = jnp.arange(1, len(eta) + 1)
  drops = jnp.where(k - 1 > warmup_end, drops, 0.0)

  def momentum(m, drop):
    m = p['lam'] * m + drop
    return m, m
  _, m = jax.lax.scan(momentum, 0.0, drops)
  area = jnp.cumsum(m)[steps - 1]
  return (p['L0'] + p['A'] * _summed(eta)[steps - 1] ** -p['alpha']
          - p['C'] * area)


def _step_power(p, rates, steps, warmup_end):
  del rates, warmup_end
  return p['L0'] + p['A'] * steps.astype(jnp.float64) ** -p['alpha']


def _s1_power(p, rates, steps, warmup_end):
  del warmup_end
  summed = _summed(jnp.maximum(rates, RATE_FLOOR))
  return p['L0'] + p['A'] * summed[steps - 1] ** -p['alpha']


@dataclasses.dataclass(frozen=True)
class Law:
  """One law: its curve and its parameters with their starting values
  (`positive`: fitted as logs; `fractions`: through a logistic)."""
  summary: str
  predict: Callable    # (params, rates, steps, warmup_end) -> losses
  positive: dict
  fractions: dict = dataclasses.field(default_factory=dict)

  @property
  def names(self) -> tuple:
    return (*self.positive, *self.fractions)


LAWS = {
    'multi_power': Law(
        'Luo et al. 2025: L0 + A (S1 + S_W)^-alpha - LD(t)', _multi_power,
        # B and C in normalised units (the paper's, ~400 and ~2, are for
        # raw rates near 3e-4)
        {'L0': 1.0, 'A': 1.0, 'alpha': 0.5, 'B': 0.3, 'C': 0.05,
         'beta': 0.6, 'gamma': 0.6}),
    'annealing': Law(
        'Tissue et al. 2024: L0 + A S1^-alpha - C S2', _annealing,
        {'L0': 1.0, 'A': 1.0, 'alpha': 0.5, 'C': 1.0}, {'lam': 0.99}),
    'step_power': Law('baseline: L0 + A t^-alpha', _step_power,
                      {'L0': 1.0, 'A': 1.0, 'alpha': 0.5}),
    's1_power': Law('baseline: L0 + A S1^-alpha', _s1_power,
                    {'L0': 1.0, 'A': 1.0, 'alpha': 0.5}),
}


def _unpack(law: Law, theta):
  """Unconstrained vector -> the law's parameters."""
  n = len(law.positive)
  params = {name: jnp.exp(theta[i]) for i, name in enumerate(law.positive)}
  params.update({name: jax.nn.sigmoid(theta[n + i])
                 for i, name in enumerate(law.fractions)})
  return params


# A fit can end on a boundary, a log-fitted parameter underflowing to 0 or
# a fraction to 0 or 1 (on the language model's short runs L0 and gamma
# did); a fit started there (the per-seed refits start from the pooled fit)
# would begin at log(0) = -inf, a NaN objective, and stop at once. From
# just inside the boundary it can move.
PACK_FLOOR = 1e-12


def _on_boundary(law: Law, params: dict) -> bool:
  return (any(params[n] < PACK_FLOOR for n in law.positive)
          or any(not PACK_FLOOR < params[n] < 1 - PACK_FLOOR
                 for n in law.fractions))


def _pack(law: Law, params: dict) -> np.ndarray:
  positive = [max(params[n], PACK_FLOOR) for n in law.positive]
  fractions = [min(max(params[n], PACK_FLOOR), 1 - PACK_FLOOR)
               for n in law.fractions]
  return np.array([np.log(p) for p in positive]
                  + [np.log(f / (1 - f)) for f in fractions])


def predict(law_name: str, params: dict, rates, steps=None,
            warmup_end=None) -> np.ndarray:
  """The law's loss at `steps` (1-based; default every step) of a run with
  these normalised `rates`."""
  law = LAWS[law_name]
  rates = np.asarray(rates, np.float64)
  steps = np.arange(1, len(rates) + 1) if steps is None else np.asarray(steps)
  if warmup_end is None:
    warmup_end = _warmup_end(rates)
  with jax.enable_x64(True):
    params = {k: jnp.float64(v) for k, v in params.items()}
    rates = jnp.asarray(rates)
    # MPL holds a [steps, T] matrix: a few hundred steps at a time keep it
    # small for long runs (3x Fashion-MNIST's 4,680 steps and more).
    chunks = [law.predict(params, rates, jnp.asarray(part), warmup_end)
              for part in np.array_split(steps, -(-len(steps) // PREDICT_CHUNK))]
    return np.concatenate([np.asarray(c) for c in chunks])


def _objective(law: Law, curves):
  """Mean Huber loss of the log residuals over every bin of every curve."""
  data = [(jnp.asarray(c.rates), jnp.asarray(c.steps.ravel()), c.warmup_end,
           jnp.log(jnp.asarray(c.losses))) for c in curves]
  count = sum(len(c.losses) for c in curves)

  def loss(theta):
    params = _unpack(law, theta)
    total = 0.0
    for rates, steps, warmup_end, log_observed in data:
      predicted = law.predict(params, rates, steps, warmup_end).reshape(
          len(log_observed), POINTS_PER_BIN).mean(1)
      residual = jnp.log(jnp.maximum(predicted, 1e-12)) - log_observed
      total = total + jnp.sum(_huber(residual))
    # Per bin, in units of delta^2 / 2 (a residual of delta scores 1): the
    # optimiser's tolerances then mean the same for every law and task.
    return total / count / (0.5 * HUBER_DELTA ** 2)
  return jax.jit(jax.value_and_grad(loss))


def _huber(r, delta=HUBER_DELTA):
  return jnp.where(jnp.abs(r) < delta, 0.5 * r ** 2,
                   delta * (jnp.abs(r) - 0.5 * delta))


@dataclasses.dataclass(frozen=True)
class Fit:
  law: str
  params: dict
  objective: float

  def predict(self, rates, steps=None) -> np.ndarray:
    return predict(self.law, self.params, rates, steps)


def starts(law: Law, curves) -> list:
  """Starting points: the law's defaults with L0 below the lowest loss and
  A spanning the drop, at a few exponents."""
  low = min(float(c.losses.min()) for c in curves)
  high = max(float(c.losses.max()) for c in curves)
  out = []
  for alpha in (0.5,):
    for scale in ((0.01, 0.1, 1.0) if 'C' in law.positive else (None,)):
      params = {**law.positive, **law.fractions, 'L0': 0.5 * low,
                'A': max(high - 0.5 * low, 1e-3), 'alpha': alpha}
      if scale is not None:
        params['C'] = scale
      out.append(params)
  return out


def fit(law_name: str, curves: list, start: dict | None = None) -> Fit:
  """The law's parameters that best fit every curve at once (the runs of
  one task and peak), by L-BFGS-B from each of `starts` (or from `start`,
  e.g. a fit on more runs of the same task); the best wins. A `start` on a
  boundary (a parameter at 0, or a fraction at 0 or 1, where the gradient
  of its log or logit vanishes) would hold the fit there: the default
  starts then run too."""
  law = LAWS[law_name]
  best = None
  with jax.enable_x64(True):
    objective = _objective(law, curves)

    def value_and_grad(theta):
      value, grad = objective(jnp.asarray(theta))
      value, grad = float(value), np.asarray(grad, np.float64)
      if not np.isfinite(value) or not np.all(np.isfinite(grad)):
        return 1e3, np.zeros_like(theta)
      return value, grad

    tried = [start] if start else starts(law, curves)
    if start and _on_boundary(law, start):
      tried += starts(law, curves)
    for params in tried:
      result = scipy.optimize.minimize(value_and_grad, _pack(law, params),
                                       jac=True, method='L-BFGS-B',
                                       options={'maxiter': 3000, 'ftol': 1e-12,
                                                'gtol': 1e-8})
      if best is None or result.fun < best.fun:
        best = result
    params = {k: float(v) for k, v in _unpack(law, jnp.asarray(best.x)).items()}
  return Fit(law_name, params, float(best.fun))

"""Optimizers: one table, one entry per `config.optimizer`.

Each entry builds the optax transformation from the schedule and says which
parameters to evaluate. Plain SGD and AdamW evaluate the parameters they
train; the schedule-free variants (Defazio et al., 2024, "The Road Less
Scheduled") train at an interpolation y and evaluate the averaged sequence
x, which `optax.contrib.schedule_free_eval_params` recovers from their
state. `config.grad_clip_norm` > 0 clips every optimizer's gradient to that
global norm first (optax.clip_by_global_norm); at 0 nothing is added, so an
SGD run is the very transformation it always was.
"""

import dataclasses
from typing import Callable

import flax
import optax

from machinery import checks


@dataclasses.dataclass(frozen=True)
class OptimizerKind:
  summary: str
  build: Callable    # (learning_rate_fn, config) -> GradientTransformation
  eval_params: Callable  # (opt_state, params) -> params to evaluate
  check: Callable = lambda config: None


def _check_constant_schedule(config):
  if config.schedule != 'constant':
    checks.fail('schedule', config.schedule,
                f"must be 'constant' with optimizer='{config.optimizer}' "
                '(a schedule-free optimizer replaces the decay; its warmup '
                'comes from warmup_epochs)')


def _check_schedule_free(config):
  _check_constant_schedule(config)
  checks.check_real(config, 'momentum', 0, 1,
                    "must lie in (0, 1) with optimizer='schedule_free_sgd' "
                    '(it is the averaging weight b1)', low_open=True,
                    high_open=True)
  if config.nesterov:
    checks.fail('nesterov', config.nesterov,
                "must be false with optimizer='schedule_free_sgd' (it has no "
                'Nesterov variant)')


def _check_adam(config):
  for name in ('b1', 'b2'):
    checks.check_real(config, name, 0, 1, 'must lie in [0, 1)',
                      high_open=True)
  checks.check_real(config, 'eps', 0, checks.FLOAT32_MAX,
                    'must be a number > 0', low_open=True)
  checks.check_real(config, 'weight_decay', 0, checks.FLOAT32_MAX,
                    'must be a number >= 0')


def _check_schedule_free_adam(config):
  _check_constant_schedule(config)
  _check_adam(config)


def decay_mask(params):
  """True for the weight matrices AdamW decays (Dense and attention
  kernels), False for biases, LayerNorm scales and embeddings.

  Why not decay those: weight decay pulls a parameter toward 0 to keep the
  weights that mix features small. A bias or a LayerNorm scale mixes
  nothing, and pulling a scale toward 0 (not toward its neutral 1) only
  fights the normalization. An embedding row gets a gradient only when its
  token occurs, yet decay would shrink every row at every step: rare bytes'
  embeddings would fade between their appearances. (GPT-2's and most LM
  recipes' choice; the CNN's conv and dense kernels are decayed too.)
  """
  flat = flax.traverse_util.flatten_dict(params)
  return flax.traverse_util.unflatten_dict(
      {path: path[-1] == 'kernel' for path in flat})


def _adamw(learning_rate_fn, config):
  return optax.adamw(learning_rate_fn, b1=config.b1, b2=config.b2,
                     eps=config.eps, weight_decay=config.weight_decay,
                     mask=decay_mask)


def _schedule_free_adamw(learning_rate_fn, config):
  """optax.contrib.schedule_free_adamw's own composition (optax 0.2.8), with
  the decay mask it has no argument for. The schedule (warmup, then
  constant) is passed whole, as for schedule-free SGD, so the rate applied
  at step t is learning_rate_fn(t)."""
  inner = optax.chain(
      optax.scale_by_rms(decay=config.b2, eps=config.eps, eps_in_sqrt=False,
                         bias_correction=True),
      optax.add_decayed_weights(config.weight_decay, mask=decay_mask),
      optax.scale_by_learning_rate(learning_rate_fn))
  return optax.contrib.schedule_free(inner, learning_rate=learning_rate_fn,
                                     b1=config.b1)


def _schedule_free_eval_params(opt_state, params):
  """schedule_free_eval_params, through a clipping chain if there is one."""
  if isinstance(opt_state, tuple) and not hasattr(opt_state, 'z'):
    opt_state = opt_state[-1]  # (clip state, schedule-free state)
  return optax.contrib.schedule_free_eval_params(opt_state, params)


OPTIMIZERS_TABLE = {
    'sgd': OptimizerKind(
        summary='optax.sgd(schedule, momentum, nesterov)',
        build=lambda learning_rate_fn, config: optax.sgd(
            learning_rate_fn, config.momentum, nesterov=config.nesterov),
        eval_params=lambda opt_state, params: params),
    'schedule_free_sgd': OptimizerKind(
        summary='optax.contrib.schedule_free_sgd(schedule, b1=momentum)',
        # The schedule (warmup, then constant) is passed whole, so the rate
        # it applies at step t is learning_rate_fn(t), as for sgd.
        build=lambda learning_rate_fn, config:
        optax.contrib.schedule_free_sgd(learning_rate_fn, b1=config.momentum),
        eval_params=_schedule_free_eval_params,
        check=_check_schedule_free),
    'adamw': OptimizerKind(
        summary='optax.adamw(schedule, b1, b2, eps, weight_decay), no decay '
        'on biases, LayerNorm scales and embeddings',
        build=_adamw,
        eval_params=lambda opt_state, params: params,
        check=_check_adam),
    'schedule_free_adamw': OptimizerKind(
        summary='optax.contrib.schedule_free_adamw(schedule, b1, b2, eps, '
        'weight_decay)',
        build=_schedule_free_adamw,
        eval_params=_schedule_free_eval_params,
        check=_check_schedule_free_adam),
}
OPTIMIZERS = tuple(OPTIMIZERS_TABLE)


def create_optimizer(config, learning_rate_fn) -> optax.GradientTransformation:
  tx = OPTIMIZERS_TABLE[config.optimizer].build(learning_rate_fn, config)
  if config.grad_clip_norm:
    return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
  return tx


def eval_params(config, state):
  """The parameters to evaluate `state` with, for `config.optimizer`."""
  return OPTIMIZERS_TABLE[config.optimizer].eval_params(state.opt_state,
                                                        state.params)


def validate(config) -> None:
  checks.check_choice(config, 'optimizer', OPTIMIZERS)
  OPTIMIZERS_TABLE[config.optimizer].check(config)
  checks.check_real(config, 'grad_clip_norm', 0, checks.FLOAT32_MAX,
                    'must be a number >= 0 (0: no clipping)')

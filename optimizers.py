"""Optimizers: one table, one entry per `config.optimizer`.

Each entry builds the optax transformation from the schedule and says which
parameters to evaluate. Plain SGD evaluates the parameters it trains;
schedule-free SGD (Defazio et al., 2024, "The Road Less Scheduled") trains at
an interpolation y and evaluates the averaged sequence x, which
`optax.contrib.schedule_free_eval_params` recovers from its state.
"""

import dataclasses
from typing import Callable

import optax

from machinery import checks


@dataclasses.dataclass(frozen=True)
class OptimizerKind:
  summary: str
  build: Callable    # (learning_rate_fn, config) -> GradientTransformation
  eval_params: Callable  # (opt_state, params) -> params to evaluate
  check: Callable = lambda config: None


def _check_schedule_free(config):
  if config.schedule != 'constant':
    checks.fail('schedule', config.schedule,
                "must be 'constant' with optimizer='schedule_free_sgd' "
                '(schedule-free SGD replaces the decay; its warmup comes from '
                'warmup_epochs)')
  checks.check_real(config, 'momentum', 0, 1,
                    "must lie in (0, 1) with optimizer='schedule_free_sgd' "
                    '(it is the averaging weight b1)', low_open=True,
                    high_open=True)
  if config.nesterov:
    checks.fail('nesterov', config.nesterov,
                "must be false with optimizer='schedule_free_sgd' (it has no "
                'Nesterov variant)')


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
        eval_params=optax.contrib.schedule_free_eval_params,
        check=_check_schedule_free),
}
OPTIMIZERS = tuple(OPTIMIZERS_TABLE)


def create_optimizer(config, learning_rate_fn) -> optax.GradientTransformation:
  return OPTIMIZERS_TABLE[config.optimizer].build(learning_rate_fn, config)


def eval_params(config, state):
  """The parameters to evaluate `state` with, for `config.optimizer`."""
  return OPTIMIZERS_TABLE[config.optimizer].eval_params(state.opt_state,
                                                        state.params)


def validate(config) -> None:
  checks.check_choice(config, 'optimizer', OPTIMIZERS)
  OPTIMIZERS_TABLE[config.optimizer].check(config)

"""docs/laws/benchmark.json, issue 36's benchmark, frozen before any law is
fitted: its contents are pinned here, so that changing the held-out list
after seeing numbers takes a visible edit of this test."""

import hashlib
import json

from conftest import PROJECT_DIR
import schedules

BENCHMARK = PROJECT_DIR / 'docs' / 'laws' / 'benchmark.json'
FROZEN_SHA256 = (
    '2a7f9422c6b75506ea696ef638f246743ddb6d348f0eef07ffcac80ddeb6d8d2')


def test_the_benchmark_is_the_frozen_one():
  assert hashlib.sha256(BENCHMARK.read_bytes()).hexdigest() == FROZEN_SHA256


def test_the_benchmark_holds_what_the_issue_asks():
  benchmark = json.loads(BENCHMARK.read_text())
  held_out = benchmark['held_out']
  names = [entry['name'] for entry in benchmark['fit'] + held_out]
  assert len(held_out) >= 10 and len(set(names)) == len(names)
  kinds = {entry['schedule'] for entry in benchmark['fit'] + held_out}
  assert kinds <= set(schedules.SCHEDULES)
  shapes = {(e['decay_shape'], e['decay_fraction']) for e in held_out
            if e['schedule'] == 'wsd'}
  assert shapes == {(shape, fraction) for shape in ('linear', '1-sqrt',
                                                    'cosine')
                    for fraction in (0.1, 0.2)}
  lengths = {(e['schedule'], e['length']) for e in held_out}
  assert {('warmup_cosine', 2.0), ('warmup_cosine', 3.0), ('constant', 2.0),
          ('constant', 3.0), ('sgdr', 1.0), ('linear', 1.0), ('step', 1.0),
          ('onecycle', 1.0)} <= lengths
  assert all(task['seeds'] == [0, 1, 2, 3, 4]
             for task in benchmark['tasks'].values())

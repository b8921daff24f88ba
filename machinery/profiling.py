"""Where a training step's time goes: XLA's own ops, named by what they do.

A `jax.profiler` trace of some steps records every XLA op the CPU (or GPU)
ran, under its HLO name (`ynn_fusion.5`, `all-reduce.20`, ...). The compiled
step's HLO text says what each of those is: the `op_name` metadata of the op
(or of the ops fused into it) names the layer and whether it is the forward
pass (`jvp(CNN)`) or the backward (`transpose(jvp(CNN))`). This module joins
the two into a table of milliseconds per step by part of the model.
"""

import collections
import gzip
import json
import pathlib
import re

# (what an op_name path contains, the part of the step it belongs to); the
# first match wins, so the specific come first.
PARTS = (
    ('all-reduce', 'all-reduce between devices'),
    ('Conv_0', 'conv 1 (1 -> 32 channels, 28x28)'),
    ('Conv_1', 'conv 2 (32 -> 64 channels, 14x14)'),
    ('avg_pool', 'average pooling'),
    ('reduce_window', 'average pooling'),
    ('Dense_0', 'dense 1 (3136 -> 256)'),
    ('Dense_1', 'dense 2 (256 -> 10)'),
    # The transformer (models.Transformer): names its modules.
    ('attention_norm', 'LayerNorms'),
    ('mlp_norm', 'LayerNorms'),
    ('final_norm', 'LayerNorms'),
    ('attention', 'attention'),
    ('mlp_in', 'MLP in (width -> 4 width)'),
    ('mlp_out', 'MLP out (4 width -> width)'),
    ('token_embedding', 'embeddings'),
    ('position_embedding', 'embeddings'),
    ('/output/', 'output layer (width -> 256)'),
    ('clip', 'gradient clipping'),
    ('adam', 'optimizer update'),
    ('softmax', 'loss'),
    ('log_softmax', 'loss'),
    ('take', 'batch gather'),
    ('gather', 'batch gather'),
    ('dynamic_slice', 'batch gather'),
    ('dynamic-slice', 'batch gather'),
    ('sgd', 'optimizer update'),
    ('trace', 'optimizer update'),
    ('apply_gradients', 'optimizer update'),
    ('add_any', 'gradient sums (micro-batches; residual branches)'),
)


# Parts with a forward and a backward pass.
LAYERS = ('conv', 'dense', 'average', 'LayerNorms', 'attention', 'MLP',
          'embeddings', 'output layer')


def op_names(hlo_text: str) -> dict:
  """{HLO op name: (op_name metadata, sorted result dims)} from a compiled
  module's text, for every op; a fusion without metadata of its own takes
  that of its first fused op ('' where there is none)."""
  own, calls, first_inside, dims = {}, {}, {}, {}
  computation = None
  for line in hlo_text.splitlines():
    header = re.match(r'^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$', line)
    if header and ' = ' not in line:
      computation = header.group(1)
      continue
    match = re.match(r'^\s*(?:ROOT )?%?([\w.\-]+) = ', line)
    if not match:
      continue
    name = match.group(1)
    shape = re.match(r'^\s*(?:ROOT )?%?[\w.\-]+ = \w+\[([\d,]*)\]', line)
    dims[name] = tuple(sorted(int(d) for d in shape.group(1).split(',')
                              if d)) if shape else ()
    meta = re.search(r'op_name="([^"]*)"', line)
    called = re.search(r'calls=%?([\w.\-]+)', line)
    if meta:
      own[name] = meta.group(1)
      first_inside.setdefault(computation, meta.group(1))
    if called:
      calls[name] = called.group(1)
  for name, computation in calls.items():
    if name not in own and computation in first_inside:
      own[name] = first_inside[computation]
  return {name: (own.get(name, ''), dims[name]) for name in dims}


def parameter_parts(params) -> dict:
  """{sorted dims of a parameter: the PARTS name of its layer}."""
  import jax  # pylint: disable=g-import-not-at-top
  parts = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    text = jax.tree_util.keystr(path)
    part = next((p for needle, p in PARTS if needle in text), None)
    if part:
      parts.setdefault(tuple(sorted(leaf.shape)), part)
  return parts


def part_of(op: str, op_name: str, dims=(), parameters=None) -> str:
  """The part of the step an op belongs to, and its pass.

  An op XLA left without metadata whose result has a parameter's shape is
  that parameter's gradient (XLA:CPU's kernel-gradient convolutions); an
  elementwise op of a parameter's shape is the optimizer's update (or the
  micro-batches' gradient sum).
  """
  text = f'{op} {op_name}'
  for needle, part in PARTS:
    if needle in text:
      if part.startswith(LAYERS):
        backward = 'transpose(' in op_name
        return f'{part}, {"backward" if backward else "forward"}'
      return part
  layer = (parameters or {}).get(tuple(dims))
  if layer and not op_name:
    return f'{layer}, backward'
  if layer:
    return 'optimizer update and gradient sums'
  return 'other (broadcasts, copies, elementwise)'


def trace_events(directory) -> list:
  """The complete events of the perfetto trace jax.profiler wrote."""
  paths = sorted(pathlib.Path(directory).glob('**/*.trace.json.gz'))
  if not paths:
    raise FileNotFoundError(f'no perfetto trace under {directory}')
  events = json.load(gzip.open(paths[-1]))
  events = events['traceEvents'] if isinstance(events, dict) else events
  return [e for e in events if e.get('ph') == 'X' and 'dur' in e]


def step_table(events, names: dict, steps: int,
               parameters=None) -> list[tuple]:
  """[(part, ms per step, share of the ops' time)] of the HLO ops in
  `events` (those `names` knows), largest first."""
  totals = collections.Counter()
  for event in events:
    if event['name'] in names:
      op_name, dims = names[event['name']]
      totals[part_of(event['name'], op_name, dims, parameters)] += (
          event['dur'])
  whole = sum(totals.values()) or 1
  return [(part, us / 1e3 / steps, us / whole)
          for part, us in totals.most_common()]


def markdown(table, title) -> str:
  lines = [f'| {title} | ms per step | share |', '|---|---|---|']
  lines += [f'| {part} | {ms:.2f} | {100 * share:.0f}% |'
            for part, ms, share in table]
  return '\n'.join(lines) + '\n'

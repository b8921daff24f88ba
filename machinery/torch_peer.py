"""The same CNN trained by PyTorch: the benchmark's peer rows.

  PYTHON_WITH_TORCH machinery/torch_peer.py --data=TRAIN.npz --batch_size=128 \
      [--compile] [--threads=2]

Run by tools/benchmark.py in a Python that has torch (torch is never a
requirement of this project: see the benchmark's docstring for the separate
venv). It imports only torch and numpy. The model is models.CNN's: conv 3x3
(1 -> 32, 'same'), ReLU, 2x2 average pool, conv 3x3 (32 -> 64), ReLU, pool,
dense 3136 -> 256, ReLU, dense 256 -> 10; SGD with momentum 0.9, the mean
cross-entropy of each batch, images / 255 as float32, channels-last memory
format (NHWC, as XLA uses). One epoch over TRAIN.npz's images in a fresh
permutation, after WARMUP_STEPS untimed steps (compilation, allocator);
prints one line `BENCHMARK_RESULT {json}` with images/s.

--task=language_model: models.Transformer's shape instead (nanoGPT's):
token and position embeddings, --layers pre-LayerNorm blocks of causal
self-attention (F.scaled_dot_product_attention) and a 4x GELU (tanh) MLP,
a final LayerNorm and an output layer; AdamW (no decay on biases,
LayerNorm scales and embeddings, as optimizers.py) with global-norm
clipping; --steps windows of TRAIN.npz's 'tokens' per epoch, each
predicting its every next byte. Reports windows/s as images_per_s.
"""

import argparse
import json
import resource
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

RESULT_PREFIX = 'BENCHMARK_RESULT '
WARMUP_STEPS = 50


def cnn() -> nn.Module:
  return nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))


class Block(nn.Module):
  """Pre-LayerNorm: x + attention(LN(x)), then x + MLP(LN(x))."""

  def __init__(self, width, heads):
    super().__init__()
    self.heads = heads
    self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
    self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
    self.mlp = nn.Sequential(nn.Linear(width, 4 * width),
                             nn.GELU(approximate='tanh'),
                             nn.Linear(4 * width, width))

  def forward(self, x):
    b, t, c = x.shape
    q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2)
               for z in self.qkv(self.norm1(x)).split(c, dim=2))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + self.out(y.transpose(1, 2).reshape(b, t, c))
    return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):

  def __init__(self, context, layers, width, heads, vocab=256):
    super().__init__()
    self.token = nn.Embedding(vocab, width)
    self.position = nn.Embedding(context, width)
    self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(layers)])
    self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)

  def forward(self, tokens):
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    x = self.blocks(self.token(tokens) + self.position(positions))
    return self.head(self.norm(x))


def adamw(model, args):
  """Weight decay on the weight matrices only (optimizers.py's mask)."""
  decay = [p for n, p in model.named_parameters()
           if p.dim() >= 2 and 'token' not in n and 'position' not in n]
  rest = [p for n, p in model.named_parameters()
          if not (p.dim() >= 2 and 'token' not in n and 'position' not in n)]
  return torch.optim.AdamW([{'params': decay,
                             'weight_decay': args.weight_decay},
                            {'params': rest, 'weight_decay': 0.0}],
                           lr=args.learning_rate, betas=(args.b1, args.b2),
                           eps=args.eps)


def train_epoch(step, images, labels, batch_size, generator, steps=None):
  steps = steps or len(labels) // batch_size
  order = torch.randperm(len(labels), generator=generator)
  for i in range(steps):
    index = order[i * batch_size:(i + 1) * batch_size]
    step(images[index], labels[index])
  return steps


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--data', required=True)
  parser.add_argument('--batch_size', type=int, required=True)
  parser.add_argument('--compile', action='store_true')
  parser.add_argument('--threads', type=int, default=0)
  parser.add_argument('--task', default='image_classification')
  for name, kind in (('layers', int), ('width', int), ('heads', int),
                     ('steps', int), ('learning_rate', float), ('b1', float),
                     ('b2', float), ('eps', float), ('weight_decay', float),
                     ('grad_clip_norm', float)):
    parser.add_argument(f'--{name}', type=kind, default=0)
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  data = np.load(args.data)
  loss_fn = nn.CrossEntropyLoss()
  if args.task == 'language_model':
    windows = torch.from_numpy(data['tokens'].astype(np.int64))
    images, labels = windows[:, :-1], windows[:, 1:]  # inputs, next bytes
    model = Transformer(images.shape[1], args.layers, args.width, args.heads)
    optimizer = adamw(model, args)
    epoch_steps = args.steps or None
  else:
    images = torch.from_numpy(data['image']).permute(0, 3, 1, 2).float() / 255
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(data['label'].astype(np.int64))
    model = cnn().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    epoch_steps = None

  def step(x, y):
    optimizer.zero_grad(set_to_none=True)
    logits = model(x)
    loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    loss.backward()
    if args.grad_clip_norm:
      nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip_norm)
    optimizer.step()
    return loss

  if args.compile:
    step = torch.compile(step)
  generator = torch.Generator().manual_seed(0)
  start = time.perf_counter()
  train_epoch(step, images, labels, args.batch_size, generator, WARMUP_STEPS)
  warmup_s = time.perf_counter() - start
  start = time.perf_counter()
  steps = train_epoch(step, images, labels, args.batch_size, generator,
                      epoch_steps)
  epoch_s = time.perf_counter() - start
  print(RESULT_PREFIX + json.dumps({
      'batch_size': args.batch_size, 'steps_per_s': steps / epoch_s,
      'images_per_s': steps * args.batch_size / epoch_s, 'epoch_s': epoch_s,
      'compile_s': warmup_s, 'threads': torch.get_num_threads(),
      'torch_version': torch.__version__,
      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
  }), flush=True)


if __name__ == '__main__':
  main()

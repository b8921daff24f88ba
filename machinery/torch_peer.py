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
"""

import argparse
import json
import resource
import time

import numpy as np
import torch
from torch import nn

RESULT_PREFIX = 'BENCHMARK_RESULT '
WARMUP_STEPS = 50


def cnn() -> nn.Module:
  return nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
      nn.Flatten(), nn.Linear(3136, 256), nn.ReLU(), nn.Linear(256, 10))


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
  args = parser.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  data = np.load(args.data)
  images = torch.from_numpy(data['image']).permute(0, 3, 1, 2).float() / 255
  images = images.contiguous(memory_format=torch.channels_last)
  labels = torch.from_numpy(data['label'].astype(np.int64))
  model = cnn().to(memory_format=torch.channels_last)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
  loss_fn = nn.CrossEntropyLoss()

  def step(x, y):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss

  if args.compile:
    step = torch.compile(step)
  generator = torch.Generator().manual_seed(0)
  start = time.perf_counter()
  train_epoch(step, images, labels, args.batch_size, generator, WARMUP_STEPS)
  warmup_s = time.perf_counter() - start
  start = time.perf_counter()
  steps = train_epoch(step, images, labels, args.batch_size, generator)
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

"""The models: the small CNN of the Flax MNIST example, and a byte-level
decoder-only transformer for the language-model task (both Linen).

Kept deliberately small: the point of this project is the learning-rate
schedule, and a model that trains to >99% on MNIST in a few CPU minutes makes
the schedule's effect visible quickly.
"""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from machinery import convolutions


def avg_pool_2x2(x):
  """`nn.avg_pool(x, (2, 2), strides=(2, 2))` of an NHWC batch, as a reshape
  and a sum over each 2x2 block.

  Why not nn.avg_pool itself: the same numbers bit for bit, forward and
  backward (tests/test_models.py), but the gradient of a reshaped sum is a
  broadcast, where reduce_window's gradient is another reduce_window over
  the padded cotangent: 1.03-1.08x a whole batch-32 CPU step, within noise
  at 64 and 128 (docs/performance.md). Odd heights or widths (which
  nn.avg_pool crops) go to nn.avg_pool.
  """
  n, h, w, c = x.shape
  if h % 2 or w % 2:
    return nn.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
  with jax.named_scope('avg_pool'):
    return x.reshape(n, h // 2, 2, w // 2, 2, c).sum((2, 4)) / 4


class CNN(nn.Module):
  """Two conv/avg-pool blocks and a two-layer MLP head; returns logits.

  `conv_lowering` names how the convolutions are computed
  (convolutions.CONV_LOWERINGS): the same parameters and the same math
  either way, the float sums in another order.
  """

  num_classes: int = 10
  conv_lowering: str = 'xla'

  @nn.compact
  def __call__(self, x):
    conv = convolutions.CONV_LOWERINGS[self.conv_lowering]
    x = nn.Conv(features=32, kernel_size=(3, 3), conv_general_dilated=conv)(x)
    x = nn.relu(x)
    x = avg_pool_2x2(x)
    x = nn.Conv(features=64, kernel_size=(3, 3), conv_general_dilated=conv)(x)
    x = nn.relu(x)
    x = avg_pool_2x2(x)
    x = x.reshape((x.shape[0], -1))  # flatten
    x = nn.Dense(features=256)(x)
    x = nn.relu(x)
    x = nn.Dense(features=self.num_classes)(x)
    return x


class DecoderBlock(nn.Module):
  """Pre-LayerNorm: x + attention(LN(x)), then x + MLP(LN(x)) (GPT-2's
  order, which trains without a warmup-sensitive post-norm)."""

  num_heads: int
  mlp_ratio: int = 4
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, mask, deterministic=True):
    width = x.shape[-1]
    y = nn.LayerNorm(name='attention_norm')(x)
    y = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, dropout_rate=self.dropout_rate,
        deterministic=deterministic, name='attention')(y, y, mask=mask)
    x = x + nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)
    y = nn.LayerNorm(name='mlp_norm')(x)
    y = nn.Dense(self.mlp_ratio * width, name='mlp_in')(y)
    y = nn.gelu(y)
    y = nn.Dense(width, name='mlp_out')(y)
    return x + nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)


class Transformer(nn.Module):
  """A decoder-only byte-level language model (nanoGPT's shape, in Linen):
  token and learned position embeddings, `num_layers` pre-LayerNorm blocks
  of causal self-attention (Flax's attention) and a GELU MLP, a final
  LayerNorm and an output layer; returns logits [batch, length, vocab].
  Dropout is off by default (`dropout_rate=0`): the runs here are short,
  on more text than they see twice."""

  vocab_size: int = 256
  context_length: int = 128
  num_layers: int = 4
  width: int = 128
  num_heads: int = 4
  mlp_ratio: int = 4
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, tokens, deterministic=True):
    length = tokens.shape[-1]
    if length > self.context_length:
      raise ValueError(f'{length} tokens, more than the model\'s '
                       f'{self.context_length} positions')
    x = nn.Embed(self.vocab_size, self.width, name='token_embedding')(tokens)
    positions = nn.Embed(self.context_length, self.width,
                         name='position_embedding')(jnp.arange(length))
    x = nn.Dropout(self.dropout_rate)(x + positions,
                                      deterministic=deterministic)
    mask = nn.make_causal_mask(tokens)
    for i in range(self.num_layers):
      x = DecoderBlock(self.num_heads, self.mlp_ratio, self.dropout_rate,
                       name=f'block_{i}')(x, mask, deterministic)
    x = nn.LayerNorm(name='final_norm')(x)
    return nn.Dense(self.vocab_size, name='output')(x)


def generate(model: Transformer, params, prompt, num_tokens: int, rng,
             temperature: float = 1.0, top_k: int = 0) -> jax.Array:
  """`prompt` (byte tokens) continued by `num_tokens` bytes, as nanoGPT's
  generate: each next byte is drawn from the model's distribution given the
  last `context_length` bytes (positions 0.. of that window, as in training),
  its logits divided by `temperature` (0: the likeliest byte, no draw) and,
  with `top_k` > 0, only the k likeliest bytes kept. One compiled loop: a
  byte costs one forward pass of a window, a few ms for the default model on
  a CPU. Returns the prompt and the new bytes, int32 [len(prompt) +
  num_tokens]."""
  prompt = jnp.asarray(prompt, jnp.int32)
  if prompt.ndim != 1 or prompt.shape[0] < 1:
    raise ValueError('the prompt must be at least one token')
  return _generate(model, params, prompt, num_tokens, rng,
                   jnp.float32(max(temperature, 1e-6)), top_k,
                   temperature == 0)


@functools.partial(jax.jit, static_argnames=('model', 'num_tokens', 'top_k',
                                             'greedy'))
def _generate(model, params, prompt, num_tokens, rng, temperature, top_k,
              greedy):
  start, context = prompt.shape[0], model.context_length
  total = start + num_tokens
  # Room for a whole window even when prompt and continuation are shorter:
  # the causal mask keeps the unwritten zeros after the last byte unseen.
  tokens = jnp.zeros(max(total, context), jnp.int32).at[:start].set(prompt)

  def next_token(i, tokens):
    first = jnp.maximum(i - context, 0)  # the window ends at byte i - 1
    window = jax.lax.dynamic_slice(tokens, (first,), (context,))
    logits = model.apply({'params': params}, window[None])[0, i - 1 - first]
    if greedy:
      return tokens.at[i].set(jnp.argmax(logits).astype(jnp.int32))
    logits = logits / temperature
    if top_k:
      kth = jax.lax.top_k(logits, top_k)[0][-1]
      logits = jnp.where(logits < kth, -jnp.inf, logits)
    drawn = jax.random.categorical(jax.random.fold_in(rng, i), logits)
    return tokens.at[i].set(drawn.astype(jnp.int32))

  return jax.lax.fori_loop(start, total, next_token, tokens)[:total]


def parameter_count(params) -> int:
  """The number of scalars in a parameter tree."""
  return sum(int(leaf.size) for leaf in jax.tree.leaves(params))

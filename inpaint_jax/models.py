"""DCGAN generator and discriminator (Radford et al.), as in the paper.

Both networks are Flax Linen modules: pure `init`/`apply`, NHWC, images in
[-1, 1]. G maps z in [-1, 1]^z_dim through a dense layer to 4x4 and doubles the
resolution per layer while halving the channels (512-256-128-64 -> 3 at width
64), with batch norm and ReLU, ending in tanh. D mirrors it with leaky ReLU
(0.2), batch norm on all but the first layer, and one logit (the paper's
two-class softmax is the same thing: softmax([0, l]) = sigmoid(l)).

The stride-2 layers come from `inpaint_jax.layers`; `impl` picks how they are
computed ('auto': per layer by `layers.choose_formulation`), which changes
speed, not the function or the parameters.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import layers
from inpaint_jax.config import ModelConfig

# DCGAN initialisation: N(0, 0.02) weights.
kernel_init = nn.initializers.normal(stddev=0.02)


class _Stride2Conv(nn.Module):
  """A stride-2 layer with a (k, k, in, out) 'kernel' param (and 'bias').

  Attributes:
    features: output channels.
    kernel_size: k.
    use_bias: adds a (features,) 'bias' param, initialised to zero.
    impl: 'auto' (`layers.choose_formulation` per layer) or a key of
      layers.FORMULATIONS.
    dtype: computation dtype; the params are float32.
    kernel_init: initialiser of the kernel.
  """
  features: int
  kernel_size: int = 5
  use_bias: bool = False
  impl: str = 'auto'
  dtype: Any = jnp.float32
  kernel_init: Callable[..., Any] = nn.initializers.lecun_normal()
  upsample: ClassVar[bool]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x (N, H, W, in) -> y; `train` picks 'auto''s rule for training."""
    if self.impl not in layers.IMPLS:
      raise ValueError(f'impl={self.impl!r}; use one of {layers.IMPLS}'
                       ' (auto: layers.choose_formulation per layer).')
    kernel = self.param('kernel', self.kernel_init,
                        (self.kernel_size, self.kernel_size, x.shape[-1],
                         self.features))
    if self.upsample:
      image_side, low = self.features, x.shape[1]
      layer = layers.conv_transpose_stride2
    else:
      image_side, low = x.shape[-1], x.shape[1] // 2
      layer = layers.conv_stride2
    formulation = self.impl
    if formulation == 'auto':
      formulation = layers.choose_formulation(self.upsample, image_side, low,
                                              training=train)
    y = layer(x.astype(self.dtype), kernel, formulation)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros,
                         (self.features,)).astype(self.dtype)
    return y


class Upsample(_Stride2Conv):
  """Stride-2 transposed convolution: (N, H, W, in) -> (N, 2H, 2W, features)."""
  upsample = True


class Downsample(_Stride2Conv):
  """Stride-2 convolution: (N, 2H, 2W, in) -> (N, H, W, features)."""
  upsample = False


def _batch_norm(train: bool, axis_name: str | None, dtype: Any,
                name: str | None = None):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, axis_name=axis_name, dtype=dtype,
                      name=name)


class _DCGANModule(nn.Module):
  """The fields G and D share (see `Generator`)."""
  config: ModelConfig
  impl: str = 'auto'
  axis_name: str | None = None
  dtype: Any = jnp.float32


class Generator(_DCGANModule):
  """G: z (N, z_dim) in [-1, 1] -> images (N, R, R, channels) in [-1, 1].

  Attributes:
    config: the architecture.
    impl: one of layers.IMPLS: 'auto' (`layers.choose_formulation` per
      layer and backend) or a key of `layers.FORMULATIONS` for every layer.
    axis_name: pmap axis over which batch-norm statistics are averaged in
      training (None on one device).
    dtype: computation dtype (float32, or bfloat16 for speed); params and the
      output are float32.
  """

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False, *, start: int = 0,
               stop: int | None = None) -> jax.Array:
    """G(z), or a part of G (for a search on an intermediate activation).

    G is a chain of `config.num_layers` hidden stages (stage 0: the dense
    projection to 4x4, then one per stride-2 layer, each with batch norm
    and ReLU; stage k's activation is (N, 4 * 2^k, 4 * 2^k, width *
    2^(num_layers - 1 - k))) and the output layer. `stop=k + 1` returns
    stage k's activation of z; `start=k + 1` takes that activation as its
    input and returns the image. The defaults run all of G.
    """
    cfg = self.config
    channels = [cfg.width * 2**i for i in reversed(range(cfg.num_layers))]
    stop = cfg.num_layers + 1 if stop is None else stop
    # Explicit names (those Flax would give) so that a part of G finds its
    # parameters whatever stages run before it.
    batch_norm = lambda i: _batch_norm(train, self.axis_name, self.dtype,
                                       f'BatchNorm_{i}')
    x = z
    for stage in range(start, stop):
      if stage == 0:
        x = nn.Dense(4 * 4 * channels[0], use_bias=False,
                     kernel_init=kernel_init, dtype=self.dtype,
                     name='Dense_0')(x)
        x = nn.relu(batch_norm(0)(x.reshape(x.shape[0], 4, 4, channels[0])))
      elif stage < cfg.num_layers:
        x = Upsample(channels[stage], cfg.kernel, impl=self.impl,
                     dtype=self.dtype, kernel_init=kernel_init,
                     name=f'Upsample_{stage - 1}')(x, train)
        x = nn.relu(batch_norm(stage)(x))
      else:
        x = Upsample(cfg.channels, cfg.kernel, use_bias=True, impl=self.impl,
                     dtype=self.dtype, kernel_init=kernel_init,
                     name=f'Upsample_{stage - 1}')(x, train)
        x = jnp.tanh(x.astype(jnp.float32))
    return x


class Discriminator(_DCGANModule):
  """D: images (N, R, R, channels) in [-1, 1] -> logits (N,), real > 0.

  Attributes: as `Generator`'s; the output logits are float32.
  """

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    cfg = self.config
    x = images
    for i in range(cfg.num_layers):
      x = Downsample(cfg.width * 2**i, cfg.kernel, use_bias=(i == 0),
                     impl=self.impl, dtype=self.dtype,
                     kernel_init=kernel_init)(x, train)
      if i > 0:
        x = _batch_norm(train, self.axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    x = x.reshape(x.shape[0], -1)
    logits = nn.Dense(1, kernel_init=kernel_init, dtype=self.dtype)(x)
    return logits[:, 0].astype(jnp.float32)


def init_variables(config: ModelConfig, key: jax.Array) -> tuple[Any, Any]:
  """Initial (G variables, D variables), each {'params', 'batch_stats'}."""
  g_key, d_key = jax.random.split(key)
  z = jnp.zeros((1, config.z_dim), jnp.float32)
  images = jnp.zeros((1, config.resolution, config.resolution,
                      config.channels), jnp.float32)
  g_vars = jax.jit(Generator(config).init, static_argnames='train')(
      g_key, z, train=False)
  d_vars = jax.jit(Discriminator(config).init, static_argnames='train')(
      d_key, images, train=False)
  return g_vars, d_vars


def parameter_count(variables: Any) -> int:
  """How many numbers the arrays of a pytree hold.

  Pass `variables['params']` for the trained parameters, or the whole
  variables for all that is stored (batch statistics too). Works on
  `jax.eval_shape` results too, which count without computing.
  """
  return sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(variables))


def sample_z(key: jax.Array, n: int, z_dim: int) -> jax.Array:
  """Latents (n, z_dim), uniform in [-1, 1] as in the paper."""
  return jax.random.uniform(key, (n, z_dim), jnp.float32, -1.0, 1.0)

"""DCGAN generator and discriminator (Radford et al.) with fast stride-2 layers.

Both networks are Flax Linen modules: pure `init`/`apply`, NHWC, images in
[-1, 1]. G maps z in [-1, 1]^z_dim through a dense layer to 4x4 and doubles the
resolution per layer while halving the channels (512-256-128-64 -> 3 at width
64), with batch norm and ReLU, ending in tanh. D mirrors it with leaky ReLU
(0.2), batch norm on all but the first layer, and one logit (the paper's
two-class softmax is the same thing: softmax([0, l]) = sigmoid(l)).

Why the stride-2 layers are written by hand: on CPU, XLA's gradients of a
stride-2 transposed convolution (and the input gradient of a stride-2
convolution) use an input-dilated convolution that is 10-40x slower than
the forward pass (2.6 s vs 0.07 s for one 5x5 layer at batch 64). Every
stride-2 layer here can also be computed with stride-1 convolutions only,
whose gradients are stride-1 convolutions too:

* 'stride1': one 3x3 stride-1 convolution on the low-resolution side with a
  kernel rearranged from the k x k one (4x the channels; zero taps where a
  phase has fewer than 3 taps), plus depth-to-space (upsampling) or
  space-to-depth (downsampling).
* 'phase': the four output (or input) phases as four stride-1 convolutions
  with their exact sub-kernels (2x2, 2x3, 3x2, 3x3 for k = 5), so no zero taps
  are multiplied.
* 'pair': between the two, one convolution per row phase (2 instead of 4),
  each with the window rows that phase uses (zero taps only in the columns:
  30 instead of 36 multiplies per output for k = 5, against 25 exact).
* 'lax': the plain XLA strided / transposed convolution.

Every convolution goes through `conv2d`, whose input gradient is an explicit
convolution with the flipped kernel in (k, k, out, in) order: XLA's own input
gradient on CPU reads the kernel as (k, k, out, in) in place, which outside a
loop XLA fixes with a hoisted transpose, but inside the z-search's while loop
it runs on a slow convolution path (the whole search step took 2x as long).

The parameters are the ordinary k x k kernels in every formulation, so all are
numerically the same function (see tests/test_models.py) and checkpoints do
not depend on the choice. 'auto' picks per layer what measured fastest for
forward + input gradient (the z-search) on the 2-core CPU
(benchmarks/layers.py): 'lax' for the layers on the 3-channel image side,
'phase' where the low-resolution side is at most 8x8, 'stride1' elsewhere;
'pair' is faster only with the kernel gradient too (training) at 16<->32, so
'auto' does not use it.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from inpaint_jax.config import ModelConfig

_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')
IMPLS = ('auto', 'lax', 'stride1', 'phase', 'pair')

# DCGAN initialisation: N(0, 0.02) weights.
kernel_init = nn.initializers.normal(stddev=0.02)


Padding = tuple[tuple[int, int], tuple[int, int]]


def _lax_conv(x, kernel, strides, padding, lhs_dilation,
              dimension_numbers=_DIMENSION_NUMBERS):
  return lax.conv_general_dilated(x, kernel, strides, padding,
                                  lhs_dilation=lhs_dilation,
                                  dimension_numbers=dimension_numbers)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv(x, kernel, strides, padding, lhs_dilation):
  return _lax_conv(x, kernel, strides, padding, lhs_dilation)


def _conv_fwd(x, kernel, strides, padding, lhs_dilation):
  return _lax_conv(x, kernel, strides, padding, lhs_dilation), (x, kernel)


def _conv_bwd(strides, padding, lhs_dilation, residuals, cotangent):
  x, kernel = residuals
  # The same convolution on the physically transposed kernel, labelled HWOI:
  # JAX's transpose rule then yields an input gradient whose kernel XLA reads
  # in its canonical (k, k, in, out) order, also inside a while loop. The
  # convolution is linear in each argument, so its transposes are the
  # gradients (linear_transpose does not evaluate the forward again).
  kernel_oi = kernel.swapaxes(2, 3)
  input_grad = jax.linear_transpose(
      lambda x: _lax_conv(x, kernel_oi, strides, padding, lhs_dilation,
                          ('NHWC', 'HWOI', 'NHWC')), x)
  kernel_grad = jax.linear_transpose(
      lambda k: _lax_conv(x, k, strides, padding, lhs_dilation), kernel)
  return input_grad(cotangent)[0], kernel_grad(cotangent)[0]


_conv.defvjp(_conv_fwd, _conv_bwd)


def conv2d(x: jax.Array, kernel: jax.Array, strides: tuple[int, int] = (1, 1),
           padding: Padding | str = 'SAME',
           lhs_dilation: tuple[int, int] = (1, 1)) -> jax.Array:
  """`lax.conv_general_dilated` in NHWC / HWIO with a loop-friendly gradient.

  x: (N, H, W, in); kernel: (kh, kw, in, out); padding 'SAME', 'VALID' or
  ((lo, hi), (lo, hi)). Same values and gradients as the lax call (see the
  module docstring for why the input gradient is spelled out).
  """
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides,
                                  padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  return _conv(x, kernel, tuple(strides), padding, tuple(lhs_dilation))


def _transpose_padding_lo(kernel: int) -> int:
  """Leading padding of lax.conv_transpose(..., strides=2, padding='SAME')."""
  pad_len = kernel + 2 - 2
  return kernel - 1 if 2 > kernel - 1 else int(np.ceil(pad_len / 2))


@functools.lru_cache(maxsize=None)
def _phase_taps(kernel: int, upsample: bool) -> tuple[np.ndarray, int]:
  """Kernel tap used at (window offset e, phase p), or `kernel` for none.

  Upsampling (transposed conv, SAME): output 2m+p reads input m+e with tap
  t = 2e - p + pad_lo. Downsampling (conv, SAME): output m reads input
  2(m+e)+p with tap t = 2e + p + pad_lo. Returns (taps of shape
  (window, 2), window) with a centred window of odd size.
  """
  if upsample:
    pad_lo = _transpose_padding_lo(kernel)
    tap = lambda e, p: 2 * e - p + pad_lo
  else:
    pad_lo = (kernel - 2) // 2
    tap = lambda e, p: 2 * e + p + pad_lo
  offsets = [e for e in range(-kernel, kernel + 1)
             if any(0 <= tap(e, p) < kernel for p in (0, 1))]
  radius = max(abs(min(offsets)), abs(max(offsets)))
  window = 2 * radius + 1
  taps = np.full((window, 2), kernel, np.int32)
  for i, e in enumerate(range(-radius, radius + 1)):
    for p in (0, 1):
      if 0 <= tap(e, p) < kernel:
        taps[i, p] = tap(e, p)
  return taps, window


def _phase_kernel(kernel: jax.Array, upsample: bool) -> jax.Array:
  """Rearranges a (k, k, in, out) kernel into the stride-1 formulation.

  Upsampling: (w, w, in, 4 * out) with output channels ordered (py, px, out),
  for depth_to_space. Downsampling: (w, w, 4 * in, out) with input channels
  ordered (py, px, in), matching space_to_depth.
  """
  k, _, cin, cout = kernel.shape
  taps, window = _phase_taps(k, upsample)
  padded = jnp.pad(kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
  # (window, 2, window, 2, in, out) = [ey, py, ex, px, in, out]
  gathered = padded[taps[:, :, None, None], taps[None, None, :, :]]
  if upsample:
    gathered = gathered.transpose(0, 2, 4, 1, 3, 5)
    return gathered.reshape(window, window, cin, 4 * cout)
  gathered = gathered.transpose(0, 2, 1, 3, 4, 5)
  return gathered.reshape(window, window, 4 * cin, cout)


def _phase_subkernels(kernel: jax.Array, upsample: bool):
  """Per phase p in {0,1}^2: (sub-kernel, explicit padding) of the exact
  stride-1 convolution computing that phase (see _phase_taps)."""
  k = kernel.shape[0]
  taps, window = _phase_taps(k, upsample)
  radius = window // 2
  result = {}
  for py in (0, 1):
    for px in (0, 1):
      rows = [i for i in range(window) if taps[i, py] < k]
      cols = [i for i in range(window) if taps[i, px] < k]
      sub = kernel[taps[rows, py]][:, taps[cols, px]]
      padding = ((radius - rows[0], rows[-1] - radius),
                 (radius - cols[0], cols[-1] - radius))
      result[py, px] = sub, padding
  return result


def _phase_row_kernels(kernel: jax.Array, upsample: bool):
  """Per row phase py: (kernel, padding) of the 'pair' formulation.

  The stride-1 kernel of `_phase_kernel` restricted to the window rows that
  phase py uses and to its channel block: (rows, window, in, 2 * out) with
  output channels (px, out) for upsampling, (rows, window, 2 * in, out) with
  input channels (px, in) for downsampling.
  """
  k, _, cin, cout = kernel.shape
  taps, window = _phase_taps(k, upsample)
  radius = window // 2
  full = _phase_kernel(kernel, upsample)
  result = {}
  for py in (0, 1):
    rows = [i for i in range(window) if taps[i, py] < k]
    sub = full[rows[0]:rows[-1] + 1]
    if upsample:
      sub = sub[..., py * 2 * cout:(py + 1) * 2 * cout]
    else:
      sub = sub[:, :, py * 2 * cin:(py + 1) * 2 * cin]
    result[py] = sub, ((radius - rows[0], rows[-1] - radius), (radius, radius))
  return result


def depth_to_space(x: jax.Array) -> jax.Array:
  """(N, H, W, 4C) with channels ordered (py, px, c) -> (N, 2H, 2W, C)."""
  n, h, w, c4 = x.shape
  c = c4 // 4
  x = x.reshape(n, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, 2 * h, 2 * w, c)


def space_to_depth(x: jax.Array) -> jax.Array:
  """(N, 2H, 2W, C) -> (N, H, W, 4C) with channels ordered (py, px, c)."""
  n, h2, w2, c = x.shape
  x = x.reshape(n, h2 // 2, 2, w2 // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h2 // 2, w2 // 2, 4 * c)


def conv_transpose_stride2(x: jax.Array, kernel: jax.Array,
                           impl: str = 'stride1') -> jax.Array:
  """Stride-2 'SAME' transposed convolution: (N, H, W, in) -> (N, 2H, 2W, out).

  Equal to `lax.conv_transpose(x, kernel, (2, 2), 'SAME')` (and to Flax's
  `nn.ConvTranspose(strides=2, padding='SAME')`) with kernel (k, k, in, out).
  impl: 'stride1', 'phase', 'pair' or 'lax' (see the module docstring).
  """
  kernel = kernel.astype(x.dtype)
  if impl == 'lax':
    k = kernel.shape[0]
    lo = _transpose_padding_lo(k)
    pads = ((lo, k - lo), (lo, k - lo))
    return conv2d(x, kernel, padding=pads, lhs_dilation=(2, 2))
  if impl == 'phase':
    phases = {p: conv2d(x, sub, padding=padding)
              for p, (sub, padding) in _phase_subkernels(kernel, True).items()}
    y = jnp.stack([phases[py, px] for py in (0, 1) for px in (0, 1)], axis=3)
    return depth_to_space(y.reshape(y.shape[:3] + (-1,)))
  if impl == 'pair':
    y = jnp.concatenate(
        [conv2d(x, sub, padding=padding)
         for sub, padding in _phase_row_kernels(kernel, True).values()], -1)
    return depth_to_space(y)
  y = conv2d(x, _phase_kernel(kernel, upsample=True))
  return depth_to_space(y)


def conv_stride2(x: jax.Array, kernel: jax.Array,
                 impl: str = 'stride1') -> jax.Array:
  """Stride-2 'SAME' convolution: (N, 2H, 2W, in) -> (N, H, W, out).

  Equal to `lax.conv_general_dilated(x, kernel, (2, 2), 'SAME')`.
  impl: 'stride1', 'phase', 'pair' or 'lax' (see the module docstring).
  """
  kernel = kernel.astype(x.dtype)
  if impl == 'lax':
    return conv2d(x, kernel, strides=(2, 2))
  if impl == 'phase':
    n, h2, w2, c = x.shape
    phases = x.reshape(n, h2 // 2, 2, w2 // 2, 2, c)
    return sum(
        conv2d(phases[:, :, py, :, px], sub, padding=padding)
        for (py, px), (sub, padding) in _phase_subkernels(kernel,
                                                          False).items())
  if impl == 'pair':
    n, h2, w2, c = x.shape
    rows = x.reshape(n, h2 // 2, 2, w2 // 2, 2 * c)  # channels (px, in)
    return sum(conv2d(rows[:, :, py], sub, padding=padding)
               for py, (sub, padding) in _phase_row_kernels(kernel,
                                                            False).items())
  return conv2d(space_to_depth(x), _phase_kernel(kernel, upsample=False))


def _resolve_impl(impl: str, image_side_channels: int,
                  low_resolution: int) -> str:
  """The formulation a layer uses; 'auto' follows benchmarks/layers.py."""
  if impl not in IMPLS:
    raise ValueError(f'impl={impl!r}; use one of {IMPLS}.')
  if impl != 'auto':
    return impl
  if image_side_channels <= 4:
    return 'lax'
  return 'phase' if low_resolution <= 8 else 'stride1'


class _Stride2Conv(nn.Module):
  """A stride-2 layer with a (k, k, in, out) 'kernel' param (and 'bias')."""
  features: int
  kernel_size: int = 5
  use_bias: bool = False
  impl: str = 'auto'
  dtype: Any = jnp.float32
  upsample: ClassVar[bool]

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', kernel_init,
                        (self.kernel_size, self.kernel_size, x.shape[-1],
                         self.features))
    if self.upsample:
      impl = _resolve_impl(self.impl, self.features, x.shape[1])
      y = conv_transpose_stride2(x.astype(self.dtype), kernel, impl)
    else:
      impl = _resolve_impl(self.impl, x.shape[-1], x.shape[1] // 2)
      y = conv_stride2(x.astype(self.dtype), kernel, impl)
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


def _batch_norm(train: bool, axis_name: str | None, dtype: Any):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, axis_name=axis_name, dtype=dtype)


class Generator(nn.Module):
  """G: z (N, z_dim) in [-1, 1] -> images (N, R, R, channels) in [-1, 1].

  Attributes:
    config: the architecture.
    impl: 'auto' (per-layer choice by measurement) or one of 'lax',
      'stride1', 'phase', 'pair' for every layer.
    axis_name: pmap axis over which batch-norm statistics are averaged in
      training (None on one device).
    dtype: computation dtype (float32, or bfloat16 for speed); params and the
      output are float32.
  """
  config: ModelConfig
  impl: str = 'auto'
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
    cfg = self.config
    channels = [cfg.width * 2**i for i in reversed(range(cfg.num_layers))]
    x = nn.Dense(4 * 4 * channels[0], use_bias=False, kernel_init=kernel_init,
                 dtype=self.dtype)(z)
    x = x.reshape(z.shape[0], 4, 4, channels[0])
    x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    for features in channels[1:]:
      x = Upsample(features, cfg.kernel, impl=self.impl, dtype=self.dtype)(x)
      x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    x = Upsample(cfg.channels, cfg.kernel, use_bias=True, impl=self.impl,
                 dtype=self.dtype)(x)
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """D: images (N, R, R, channels) in [-1, 1] -> logits (N,), real > 0."""
  config: ModelConfig
  impl: str = 'auto'
  axis_name: str | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    cfg = self.config
    x = images
    for i in range(cfg.num_layers):
      x = Downsample(cfg.width * 2**i, cfg.kernel, use_bias=(i == 0),
                     impl=self.impl, dtype=self.dtype)(x)
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


def sample_z(key: jax.Array, n: int, z_dim: int) -> jax.Array:
  """Latents (n, z_dim), uniform in [-1, 1] as in the paper."""
  return jax.random.uniform(key, (n, z_dim), jnp.float32, -1.0, 1.0)


def count_params(variables: Any) -> int:
  """Number of scalars in a pytree of arrays."""
  return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables))

"""Stride-2 'SAME' convolutions of the DCGAN in four equal formulations.

On CPU, XLA's gradients of a stride-2 transposed convolution (and the input
gradient of a stride-2 convolution) use an input-dilated convolution 10-40x
slower than the forward pass (2.6 s vs 0.07 s for one 5x5 layer at batch 64).
A stride-2 layer can also be computed with stride-1 convolutions only, whose
gradients are stride-1 convolutions too. The formulations, one section each
below, give an upsampling (transposed convolution, G) and a downsampling
(convolution, D) function of (x, kernel): 'lax' (XLA's own), 'stride1' (one
3x3 convolution), 'phase' (four exact ones) and 'pair' (two). All take the
ordinary (k, k, in, out) kernel and compute the same function
(tests/test_layers.py), so checkpoints do not depend on the choice.
`choose_formulation` is the per-layer rule behind impl='auto' of the Flax
layers `models.Upsample` / `models.Downsample`.
"""

from __future__ import annotations

import functools
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_DIMENSION_NUMBERS = ('NHWC', 'HWIO', 'NHWC')


# -- conv2d -------------------------------------------------------------------
# Every convolution of every formulation goes through it.
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
           padding: tuple[tuple[int, int], ...] | str = 'SAME',
           lhs_dilation: tuple[int, int] = (1, 1)) -> jax.Array:
  """`lax.conv_general_dilated` in NHWC / HWIO with a loop-friendly gradient.

  x: (N, H, W, in); kernel: (kh, kw, in, out); padding 'SAME', 'VALID' or
  ((lo, hi), (lo, hi)). Same values and gradients as the lax call, but the
  input gradient is spelled out as a convolution with the flipped kernel in
  (k, k, out, in) order: XLA's own reads the kernel as (k, k, out, in) in
  place, which XLA fixes with a hoisted transpose outside a loop, but inside
  the z-search's while loop it runs on a slow CPU convolution path (the whole
  search step took 2x as long).
  """
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:3], kernel.shape[:2], strides,
                                  padding)
  padding = tuple((int(lo), int(hi)) for lo, hi in padding)
  return _conv(x, kernel, tuple(strides), padding, tuple(lhs_dilation))


# -- Tap tables ---------------------------------------------------------------
# Which kernel tap each output phase reads, shared by the stride-1 ones.
def _transpose_padding_lo(kernel: int) -> int:
  """Leading padding of lax.conv_transpose(..., strides=2, padding='SAME')."""
  pad_len = kernel + 2 - 2
  return kernel - 1 if 2 > kernel - 1 else int(np.ceil(pad_len / 2))


@functools.lru_cache(maxsize=None)
def _phase_taps(kernel: int, upsample: bool) -> tuple[np.ndarray, int]:
  """Kernel tap used at (window offset e, phase p) along one axis.

  Upsampling (transposed conv): output 2m + p reads input m + e with tap
  t = 2e - p + pad_lo. Downsampling: output m reads input 2(m + e) + p with
  tap t = 2e + p + pad_lo. In 2-D, phase (py, px) at (ey, ex) uses the kernel
  entry (row tap, column tap).

  Worked example, k = 5 (window 3, e in {-1, 0, +1}, '-' for no tap):

    upsampling, pad_lo = 3        downsampling, pad_lo = 1
           e = -1   0  +1                e = -1   0  +1
    p = 0      1    3   -         p = 0      -    1   3
    p = 1      0    2   4         p = 1      0    2   4

  Upsampling: output row 2m reads input rows m - 1, m with taps 1, 3; row
  2m + 1 reads m - 1, m, m + 1 with taps 0, 2, 4. Downsampling: output row m
  reads the even input rows 2m, 2m + 2 with taps 1, 3 and the odd ones
  2m - 1, 2m + 1, 2m + 3 with taps 0, 2, 4. So the 2-D phases have 2x2, 2x3,
  3x2 and 3x3 taps (25 in all; 36 in the 3x3 'stride1' window).

  Returns (taps, window): taps (window, 2) int32 with taps[e + window // 2, p]
  = t, or `kernel` for no tap (k = 5 up: [[1, 0], [3, 2], [5, 4]]); window
  the odd size of the centred window of offsets.
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
  ordered (py, px, in), matching space_to_depth. w is the window of
  `_phase_taps`; entries with no tap are zero.
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


# -- 'lax' --------------------------------------------------------------------
# XLA's strided / transposed convolution. 'auto' picks it on CPU for the
# layers with 3 channels on the image side, and everywhere on GPU / TPU.
def _lax_up(x: jax.Array, kernel: jax.Array) -> jax.Array:
  k = kernel.shape[0]
  lo = _transpose_padding_lo(k)
  pads = ((lo, k - lo), (lo, k - lo))
  return conv2d(x, kernel, padding=pads, lhs_dilation=(2, 2))


def _lax_down(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv2d(x, kernel, strides=(2, 2))


# -- 'stride1' ----------------------------------------------------------------
# One 3x3 stride-1 convolution on the low-resolution side with the kernel
# rearranged by `_phase_kernel` (4x the channels; zero taps where a phase has
# fewer than 3 taps), plus depth-to-space / space-to-depth. 'auto' picks it
# on CPU where the low-resolution side is more than 8 (16<->32 at 64x64).
def _stride1_up(x: jax.Array, kernel: jax.Array) -> jax.Array:
  y = conv2d(x, _phase_kernel(kernel, upsample=True))
  return depth_to_space(y)


def _stride1_down(x: jax.Array, kernel: jax.Array) -> jax.Array:
  return conv2d(space_to_depth(x), _phase_kernel(kernel, upsample=False))


# -- 'phase' ------------------------------------------------------------------
# The four output (or input) phases as four stride-1 convolutions with their
# exact sub-kernels (2x2, 2x3, 3x2, 3x3 for k = 5): no zero taps. 'auto'
# picks it on CPU where the low-resolution side is at most 8.
def _phase_subkernels(kernel: jax.Array, upsample: bool):
  """{(py, px): (sub-kernel, padding)} of the exact stride-1 convolutions."""
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


def _phase_up(x: jax.Array, kernel: jax.Array) -> jax.Array:
  phases = {p: conv2d(x, sub, padding=padding)
            for p, (sub, padding) in _phase_subkernels(kernel, True).items()}
  y = jnp.stack([phases[py, px] for py in (0, 1) for px in (0, 1)], axis=3)
  return depth_to_space(y.reshape(y.shape[:3] + (-1,)))


def _phase_down(x: jax.Array, kernel: jax.Array) -> jax.Array:
  n, h2, w2, c = x.shape
  phases = x.reshape(n, h2 // 2, 2, w2 // 2, 2, c)
  return sum(conv2d(phases[:, :, py, :, px], sub, padding=padding)
             for (py, px), (sub, padding)
             in _phase_subkernels(kernel, False).items())


# -- 'pair' -------------------------------------------------------------------
# One convolution per row phase (2 instead of 4), zero taps only in the
# columns (30 multiplies per output for k = 5; 36 'stride1', 25 exact). Never
# the fastest for the z-search, so 'auto' does not pick it, but the fastest
# for training (forward + input + kernel gradient) at the 16<->32 layers in
# benchmarks/layers.py: G 16->32 0.181 s vs 0.218 s ('stride1'), D 32->16
# 0.189 s vs 0.191 s ('lax', 'stride1'; within noise).
def _phase_row_kernels(kernel: jax.Array, upsample: bool):
  """{py: (kernel, padding)}: `_phase_kernel`'s rows and channels of row phase.

  (rows, window, in, 2 * out), output channels (px, out), when upsampling;
  (rows, window, 2 * in, out), input channels (px, in), when downsampling.
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


def _pair_up(x: jax.Array, kernel: jax.Array) -> jax.Array:
  y = jnp.concatenate(
      [conv2d(x, sub, padding=padding)
       for sub, padding in _phase_row_kernels(kernel, True).values()], -1)
  return depth_to_space(y)


def _pair_down(x: jax.Array, kernel: jax.Array) -> jax.Array:
  n, h2, w2, c = x.shape
  rows = x.reshape(n, h2 // 2, 2, w2 // 2, 2 * c)  # channels (px, in)
  return sum(conv2d(rows[:, :, py], sub, padding=padding)
             for py, (sub, padding) in _phase_row_kernels(kernel,
                                                          False).items())


# -- Dispatch and the per-layer rule ------------------------------------------
# name -> (upsampling function, downsampling function), both (x, kernel) -> y.
FORMULATIONS = {
    'lax': (_lax_up, _lax_down),
    'stride1': (_stride1_up, _stride1_down),
    'phase': (_phase_up, _phase_down),
    'pair': (_pair_up, _pair_down),
}
# Valid `impl` values of the layers and networks: 'auto' or a formulation.
IMPLS = ('auto',) + tuple(FORMULATIONS)


def _formulation_functions(formulation: str):
  if formulation not in FORMULATIONS:
    raise ValueError(f'Unknown stride-2 formulation {formulation!r}; use one'
                     f' of {tuple(FORMULATIONS)}.')
  return FORMULATIONS[formulation]


def conv_transpose_stride2(x: jax.Array, kernel: jax.Array,
                           formulation: str) -> jax.Array:
  """Stride-2 'SAME' transposed convolution: (N, H, W, in) -> (N, 2H, 2W, out).

  Equal to `lax.conv_transpose(x, kernel, (2, 2), 'SAME')` and Flax's
  `nn.ConvTranspose`; kernel (k, k, in, out), cast to x's dtype.
  """
  up, _ = _formulation_functions(formulation)
  return up(x, kernel.astype(x.dtype))


def conv_stride2(x: jax.Array, kernel: jax.Array,
                 formulation: str) -> jax.Array:
  """Stride-2 'SAME' convolution: (N, 2H, 2W, in) -> (N, H, W, out).

  Equal to `lax.conv_general_dilated(x, kernel, (2, 2), 'SAME')`; kernel
  (k, k, in, out), cast to x's dtype.
  """
  _, down = _formulation_functions(formulation)
  return down(x, kernel.astype(x.dtype))


def choose_formulation(upsample: bool, image_side_channels: int,
                       low_resolution: int, backend: str | None = None,
                       training: bool = False) -> str:
  """The formulation (a key of FORMULATIONS) impl='auto' uses for a layer.

  On 'cpu', the fastest in `python -m benchmarks.layers` on the 2-core CPU.
  For inference (the z-search: forward + input gradient): 'lax' for layers
  with <= 4 channels on the image side, 'phase' where the low-resolution side
  is <= 8, 'stride1' elsewhere. For training (forward + input + kernel
  gradients) two layers differ: G's last layer (32 -> 64, 3 channels), where
  XLA's kernel gradient of the input-dilated 'lax' convolution is slow
  (0.082 s against 0.032 s for 'pair' at batch 64, AMD EPYC, 2026-11-25), and
  D's 32 -> 16 layer ('pair' 0.106 s, 'stride1' 0.118 s). Other backends
  ('gpu', 'cuda', 'rocm', 'tpu', ...) get plain 'lax' until measured there:
  CPU timings say nothing about them.

  Args:
    upsample: transposed convolution (G) or convolution (D).
    image_side_channels: channels on the high-resolution side (out when
      upsampling, in when downsampling); 3 for the RGB layers.
    low_resolution: side of the low-resolution feature map.
    backend: a JAX platform name; None (what the layers pass, at trace time)
      for `jax.default_backend()`.
    training: choose for training (kernel gradients too) rather than for the
      z-search.
  """
  if (backend or jax.default_backend()).lower() != 'cpu':
    return 'lax'
  if training and upsample and image_side_channels <= 4:
    return 'pair'
  if training and not upsample and low_resolution == 16:
    return 'pair'
  if image_side_channels <= 4:
    return 'lax'
  return 'phase' if low_resolution <= 8 else 'stride1'

"""PSNR and SSIM of images in [-1, 1], evaluated on [0, 1] (data range 1).

Both are per image and jittable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  if a.ndim != 4 or a.shape != b.shape:
    raise ValueError(f'images have shapes {a.shape} and {b.shape}; expected'
                     ' two (N, H, W, C) arrays of the same shape.')
  return a, b


def psnr(a: jax.Array, b: jax.Array) -> jax.Array:
  """Peak signal-to-noise ratio, per image.

  Args:
    a: (N, H, W, C) in [-1, 1].
    b: (N, H, W, C) in [-1, 1].

  Returns:
    float32 (N,) in dB: 10 log10(1 / MSE) with MSE over H, W, C computed on
    the images mapped to [0, 1]. Identical images give +inf.
  """
  a, b = _check_pair(a, b)
  # (a+1)/2 - (b+1)/2 = (a - b)/2.
  mse = jnp.mean(jnp.square(0.5 * (a - b)), axis=(1, 2, 3))
  return -10.0 * jnp.log10(mse)


def _gaussian_kernel_1d() -> np.ndarray:
  # Same taps as scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5), which
  # skimage's structural_similarity uses with gaussian_weights=True.
  r = SSIM_WINDOW // 2
  x = np.arange(-r, r + 1, dtype=np.float64)
  k = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
  return (k / k.sum()).astype(np.float32)


def _filter_valid(x: jax.Array) -> jax.Array:
  """Separable 'valid' Gaussian filtering of (M, H, W, 1)."""
  k = jnp.asarray(_gaussian_kernel_1d())
  dn = ('NHWC', 'HWIO', 'NHWC')
  x = jax.lax.conv_general_dilated(
      x, k.reshape(SSIM_WINDOW, 1, 1, 1), (1, 1), 'VALID',
      dimension_numbers=dn, precision=jax.lax.Precision.HIGHEST)
  return jax.lax.conv_general_dilated(
      x, k.reshape(1, SSIM_WINDOW, 1, 1), (1, 1), 'VALID',
      dimension_numbers=dn, precision=jax.lax.Precision.HIGHEST)


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
  """Structural similarity (Wang et al. 2004), per image.

  11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1 on
  the images mapped to [0, 1], population (not sample) covariances, 'valid'
  filtering (only windows fully inside the image), SSIM map averaged over
  pixels and then over channels. Matches
  `skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)`.

  Args:
    a: (N, H, W, C) in [-1, 1], H, W >= 11.
    b: (N, H, W, C) in [-1, 1].

  Returns:
    float32 (N,) in [-1, 1]; 1 for identical images.
  """
  s = _ssim_map(a, b)
  return jnp.mean(s.reshape(s.shape[0], s.shape[1], -1), axis=(1, 2))


def _ssim_map(a: jax.Array, b: jax.Array) -> jax.Array:
  """The SSIM map of `ssim`: (N, C, H - 10, W - 10), window centres."""
  a, b = _check_pair(a, b)
  n, h, w, c = a.shape
  if h < SSIM_WINDOW or w < SSIM_WINDOW:
    raise ValueError(f'images are {h}x{w}; SSIM needs at least'
                     f' {SSIM_WINDOW}x{SSIM_WINDOW} pixels.')
  x = 0.5 * (a + 1.0)
  y = 0.5 * (b + 1.0)
  # Channels become batch entries: (N*C, H, W, 1).
  x = jnp.transpose(x, (0, 3, 1, 2)).reshape(n * c, h, w, 1)
  y = jnp.transpose(y, (0, 3, 1, 2)).reshape(n * c, h, w, 1)
  stats = _filter_valid(
      jnp.concatenate([x, y, x * x, y * y, x * y], axis=0))
  ux, uy, uxx, uyy, uxy = jnp.split(stats, 5, axis=0)
  vx = uxx - ux * ux
  vy = uyy - uy * uy
  vxy = uxy - ux * uy
  c1 = SSIM_K1 ** 2
  c2 = SSIM_K2 ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)
       / ((ux * ux + uy * uy + c1) * (vx + vy + c2)))
  return s.reshape(n, c, h - SSIM_WINDOW + 1, w - SSIM_WINDOW + 1)


def psnr_in(a: jax.Array, b: jax.Array, region: jax.Array) -> jax.Array:
  """PSNR over the pixels of `region` only (e.g. the hole: 1 - mask).

  a, b: (N, H, W, C) in [-1, 1]; region: (N, H, W, 1) in {0, 1}, each image
  with at least one pixel. Returns float32 (N,) in dB ([0, 1] data range).
  """
  a, b = _check_pair(a, b)
  region = jnp.broadcast_to(jnp.asarray(region, jnp.float32), a.shape)
  squared = jnp.sum(region * jnp.square(0.5 * (a - b)), axis=(1, 2, 3))
  mse = squared / jnp.maximum(jnp.sum(region, axis=(1, 2, 3)), 1.0)
  return -10.0 * jnp.log10(mse)


def ssim_in(a: jax.Array, b: jax.Array, region: jax.Array) -> jax.Array:
  """SSIM averaged over the window centres that lie in `region` (the hole).

  a, b: (N, H, W, C) in [-1, 1]; region: (N, H, W, 1) in {0, 1}. Centres
  closer than 5 pixels to the border have no full window and are left out,
  as in `ssim`. Returns float32 (N,).
  """
  s = _ssim_map(a, b)
  r = SSIM_WINDOW // 2
  centres = jnp.asarray(region, jnp.float32)[:, r:-r, r:-r, 0][:, None]
  centres = jnp.broadcast_to(centres, s.shape)
  return (jnp.sum(s * centres, axis=(1, 2, 3))
          / jnp.maximum(jnp.sum(centres, axis=(1, 2, 3)), 1.0))


def confidence_interval(values: np.ndarray) -> tuple[float, float]:
  """(mean, half-width of the normal-approximation 95 % interval) of a
  sample of per-image values (e.g. paired PSNR differences); the half-width
  is nan for fewer than two values."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(np.mean(values)), float('nan')
  return (float(np.mean(values)),
          float(1.96 * np.std(values, ddof=1) / np.sqrt(len(values))))

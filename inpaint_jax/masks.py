"""The four hole masks of Yeh et al. (Sec. 4.1), batched and keyed.

Every mask is float32 with 1 = known pixel and 0 = missing pixel (the paper's
M), shaped (n, size, size, 1) so that it broadcasts over image channels. The
generators that draw take a `jax.random` key and are deterministic given it.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from inpaint_jax.data import images as image_io
from inpaint_jax.errors import InputError

KINDS = ('center', 'pattern', 'random', 'half')

# Side of the low-resolution noise grid the pattern mask is upsampled from, as a
# fraction of the mask side: 64 -> 8x8 grid, i.e. blobs of roughly 8-16 pixels.
_PATTERN_GRID_DIVISOR = 8


def _check_n_size(n: int, size: int) -> None:
  if not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f'n={n!r} must be a positive int (number of masks).')
  if not isinstance(size, (int, np.integer)) or size < 2:
    raise ValueError(f'size={size!r} must be an int >= 2 (mask side in'
                     ' pixels).')


def center(n: int, size: int = 64) -> jax.Array:
  """Central square hole of side size // 2 (25 % missing for even sizes).

  Args:
    n: number of masks.
    size: mask side in pixels.

  Returns:
    float32 (n, size, size, 1) in {0, 1}, 1 = known; rows and columns
    [size // 4, size // 4 + size // 2) are missing.
  """
  _check_n_size(n, size)
  return _center(int(n), int(size))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _center(n: int, size: int) -> jax.Array:
  lo, hi = size // 4, size // 4 + size // 2
  idx = jnp.arange(size)
  inside = (idx >= lo) & (idx < hi)
  hole = inside[:, None] & inside[None, :]
  mask = jnp.where(hole, 0.0, 1.0).astype(jnp.float32)
  return jnp.broadcast_to(mask[None, :, :, None], (n, size, size, 1))


def pattern(key: jax.Array, n: int, size: int = 64,
            missing: float = 0.25) -> jax.Array:
  """Random irregular blob mask, like the "random pattern" of Context Encoders.

  Construction: per mask, uniform noise on a coarse (size/8 x size/8) grid is
  upsampled bicubically to size x size and a second, finer octave (size/4 grid,
  half amplitude) is added, giving a smooth random field; the pixels whose
  value is below the field's `missing` quantile are missing. Thresholding a
  smooth field yields a few connected irregular blobs, and thresholding at the
  per-mask quantile makes the missing fraction equal `missing` (up to rounding
  to whole pixels) for every mask.

  Args:
    key: `jax.random` key.
    n: number of masks.
    size: mask side in pixels.
    missing: fraction of missing pixels per mask, in (0, 1).

  Returns:
    float32 (n, size, size, 1) in {0, 1}, 1 = known.
  """
  _check_n_size(n, size)
  if not 0.0 < missing < 1.0:
    raise ValueError(f'missing={missing!r} must lie in (0, 1).')
  return _pattern(key, int(n), int(size), float(missing))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _pattern(key: jax.Array, n: int, size: int, missing: float) -> jax.Array:
  coarse = max(2, size // _PATTERN_GRID_DIVISOR)
  fine = max(2, 2 * size // _PATTERN_GRID_DIVISOR)
  k1, k2 = jax.random.split(key)
  low = jax.random.uniform(k1, (n, coarse, coarse))
  high = jax.random.uniform(k2, (n, fine, fine))
  field = (jax.image.resize(low, (n, size, size), 'cubic')
           + 0.5 * jax.image.resize(high, (n, size, size), 'cubic'))
  flat = field.reshape(n, size * size)
  k = max(1, min(size * size - 1, round(missing * size * size)))
  # Missing = the k smallest values; ties have probability zero.
  threshold = jnp.sort(flat, axis=1)[:, k - 1]
  known = field > threshold[:, None, None]
  return known.astype(jnp.float32)[..., None]


def random_pixels(key: jax.Array, n: int, size: int = 64,
                  missing: float = 0.8) -> jax.Array:
  """Each pixel missing independently with probability `missing`.

  Args:
    key: `jax.random` key.
    n: number of masks.
    size: mask side in pixels.
    missing: probability that a pixel is missing, in [0, 1].

  Returns:
    float32 (n, size, size, 1) in {0, 1}, 1 = known (same for all channels).
  """
  _check_n_size(n, size)
  if not 0.0 <= missing <= 1.0:
    raise ValueError(f'missing={missing!r} must lie in [0, 1].')
  return _random_pixels(key, int(n), int(size), float(missing))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _random_pixels(key: jax.Array, n: int, size: int,
                   missing: float) -> jax.Array:
  known = jax.random.bernoulli(key, 1.0 - missing, (n, size, size, 1))
  return known.astype(jnp.float32)


def half(key: jax.Array, n: int, size: int = 64) -> jax.Array:
  """One half of the image missing: left, right, top or bottom, uniformly.

  Args:
    key: `jax.random` key.
    n: number of masks.
    size: mask side in pixels (use an even size for exactly 50 % missing).

  Returns:
    float32 (n, size, size, 1) in {0, 1}, 1 = known.
  """
  _check_n_size(n, size)
  return _half(key, int(n), int(size))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _half(key: jax.Array, n: int, size: int) -> jax.Array:
  side = jax.random.randint(key, (n, 1, 1), 0, 4)  # left, right, top, bottom
  rows = jnp.arange(size)[None, :, None]
  cols = jnp.arange(size)[None, None, :]
  h = size // 2
  hole = jnp.select(
      [side == 0, side == 1, side == 2],
      [jnp.broadcast_to(cols < h, (n, size, size)),
       jnp.broadcast_to(cols >= size - h, (n, size, size)),
       jnp.broadcast_to(rows < h, (n, size, size))],
      jnp.broadcast_to(rows >= size - h, (n, size, size)))
  return jnp.where(hole, 0.0, 1.0).astype(jnp.float32)[..., None]


def make(kind: str, key: jax.Array, n: int, size: int = 64) -> jax.Array:
  """Masks of the named kind, one of `KINDS` ('random' = `random_pixels`).

  Args:
    kind: 'center', 'pattern', 'random' or 'half'.
    key: `jax.random` key (unused for 'center').
    n: number of masks.
    size: mask side in pixels.

  Returns:
    float32 (n, size, size, 1) in {0, 1}, 1 = known.
  """
  if kind == 'center':
    return center(n, size)
  if kind == 'pattern':
    return pattern(key, n, size)
  if kind == 'random':
    return random_pixels(key, n, size)
  if kind == 'half':
    return half(key, n, size)
  raise InputError(f'Unknown mask kind {kind!r}; use one of {KINDS}.')


def read_known(path: str | os.PathLike) -> np.ndarray:
  """A mask image at its own size: (H, W) bool, True = known (white).

  Any image `images.read_image` takes works (PNG, JPEG, any mode; EXIF
  orientation applied, as to the photos). It is read as grey levels and a
  pixel is known if its grey level is above half of the image's maximum grey
  level, so 0/255 and 0/1 images and JPEG-compressed black-and-white masks
  all load as intended; the alpha channel is ignored. Raises InputError (one
  line) for a file that is missing, not an image, truncated, too large or not
  single-channel.
  """
  image = image_io.read_image(path, 'mask image', mode='grey')
  grey = np.asarray(image, dtype=np.float64)
  if grey.ndim != 2:
    raise InputError(f'Mask image {os.fspath(path)!r} has shape {grey.shape};'
                     ' expected a single-channel image.')
  return 2.0 * grey > grey.max()


def from_file(path: str | os.PathLike, size: int = 64) -> np.ndarray:
  """Loads a mask image (`read_known`: white = known, black = missing).

  If the image is not size x size it is resized with nearest-neighbour
  sampling after binarisation.

  Args:
    path: path of the mask image.
    size: side of the returned mask.

  Returns:
    float32 numpy array (size, size, 1) in {0, 1}, 1 = known.

  Raises:
    InputError: if the file cannot be read, or the mask has no missing pixel
      or no known pixel.
  """
  _check_n_size(1, size)
  known = read_known(path).astype(np.uint8)
  if known.shape != (size, size):
    known = np.asarray(
        Image.fromarray(known * 255).resize((size, size), Image.NEAREST)) > 127
  known = known.astype(np.float32)[..., None]
  check_masks(known[None], f'Mask {os.fspath(path)!r}',
              missing_fix='paint the hole black',
              known_fix='white marks the pixels to keep')
  return known


def check_masks(masks: jax.Array | np.ndarray, name: str = 'masks', *,
                require_missing: bool = True,
                missing_fix: str = 'mark missing pixels with 0',
                known_fix: str = 'use a mask with 1 at known pixels') -> None:
  """Raises InputError unless every mask can condition an inpainting.

  The one mask-validity check of the project (inpaint, blending, mask files):
  values must be binary, and every mask needs a known pixel (something to
  condition on / a boundary for blending) and, if `require_missing`, a
  missing pixel (something to inpaint).

  Args:
    masks: (N, H, W, 1|C) concrete values, 1 = known pixel, 0 = missing.
    name: how the error message names the masks.
    require_missing: refuse masks without a missing pixel.
    missing_fix, known_fix: the fix each message proposes.
  """
  m = np.asarray(masks)
  if not np.all((np.abs(m) < 1e-6) | (np.abs(m - 1.0) < 1e-6)):
    raise InputError(f'{name} must be binary (1 = known pixel, 0 = missing);'
                     ' threshold them first, e.g. (m > 0.5).astype(float32).')
  known = (m > 0.5).reshape(m.shape[0], -1)
  no_known = np.nonzero(~known.any(axis=1))[0]
  if len(no_known):
    raise InputError(f'{name}: mask {int(no_known[0])} has no known pixel:'
                     f' nothing to condition on; {known_fix}.')
  no_missing = np.nonzero(known.all(axis=1))[0]
  if require_missing and len(no_missing):
    raise InputError(f'{name}: mask {int(no_missing[0])} has no missing'
                     f' pixel: nothing to inpaint; {missing_fix}.')


def missing_fraction(masks: jax.Array | np.ndarray) -> jax.Array:
  """Fraction of missing pixels of each mask.

  Args:
    masks: (n, H, W, 1) or (H, W, 1) in {0, 1}, 1 = known.

  Returns:
    float32 (n,) in [0, 1] (shape () for a single (H, W, 1) mask).
  """
  masks = jnp.asarray(masks)
  if masks.ndim not in (3, 4) or masks.shape[-1] != 1:
    raise ValueError(f'masks have shape {masks.shape}; expected (n, H, W, 1)'
                     ' or (H, W, 1).')
  return 1.0 - jnp.mean(masks.astype(jnp.float32), axis=(-3, -2, -1))

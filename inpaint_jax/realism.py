"""Multi-scale sliced Wasserstein distance (MS-SWD): a realism measure.

Karras et al., "Progressive Growing of GANs for Improved Quality, Stability,
and Variation" (ICLR 2018), Sec. 5.1 and App. D. It needs no downloaded
network: each image is split into a Laplacian pyramid (for 64x64 images the
64 and 32 band-pass levels and the 16x16 low-pass image), 7x7x3 neighbourhoods
(147-dimensional descriptors) are taken at random positions of every level,
each level's descriptors are normalised per colour channel, and the two
descriptor sets of a level are compared by the sliced Wasserstein distance:
the mean, over random unit directions, of the 1-D Wasserstein-1 distance
between the sorted projections; reported x10^3 per level ('swd_64',
'swd_32', 'swd_16') and averaged over levels ('ms_swd').

As in the reference code (tkarras/progressive_growing_of_gans,
metrics/sliced_wasserstein.py): the pyramid filter is the 5x5 binomial kernel
of cv2.pyrDown / pyrUp with reflected borders; neighbourhoods lie wholly inside
their level; both sets have the same number of descriptors; the distance
depends on that number (fewer descriptors, larger distance), so only compare
figures measured with the same number of images and patches per image.

Two choices to know:

* Normalisation. The reference code normalises each set by its own
  per-channel mean and standard deviation ('per_set'), which makes the measure
  blind to any per-channel affine change of colour (a tint, a contrast change:
  a set and its tinted copy score like two draws of one set). The default here,
  'joint', normalises both sets of a level by the mean and standard deviation
  of their union (per channel, over all descriptors and their 7x7 positions),
  a transform shared by both sets, so colour shifts count.
* Pairing. Unpaired (the reference's use: a generator's samples against real
  images) draws the positions of each set independently, so two draws of one
  distribution give a positive floor (measure real-vs-real for it). Paired
  (`paired=True`, for inpainted images against their originals, image k of
  one set corresponding to image k of the other) uses the same positions in
  both sets: identical sets give exactly 0 and the distance comes only from
  where the images differ. It is still a distance between descriptor
  distributions (sorted projections), not a per-patch error.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax.errors import InputError

PATCH = 7
DESCRIPTOR = PATCH * PATCH * 3
NORMALIZATIONS = ('joint', 'per_set')
# Images put through the pyramid at once, and projections per set held at
# once (64 MiB): they bound memory whatever the number of images.
IMAGE_BATCH = 256
PROJECTION_BLOCK = 2**24
_HALF = PATCH // 2
_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float32) / 16
_HIGHEST = jax.lax.Precision.HIGHEST


class Plan(NamedTuple):
  """The random draws of one MS-SWD measurement, per pyramid level.

  positions_a: per level, int32 (N_a, P, 2) (row, col) neighbourhood centres
    in [3, S - 3) for a level of S x S pixels, P patches per image.
  positions_b: the same for images_b (the same arrays when paired).
  directions: per level, float32 (T, 147) unit rows, T = directions x
    repeats; a descriptor is a 7x7x3 neighbourhood flattened in (row, col,
    channel) order.
  """
  positions_a: tuple[jax.Array, ...]
  positions_b: tuple[jax.Array, ...]
  directions: tuple[jax.Array, ...]


def resolutions(size: int, min_resolution: int = 16) -> list[int]:
  """Pyramid level sizes, finest first: 64 -> [64, 32, 16] for 16."""
  out = []
  while size >= min_resolution:
    out.append(size)
    size //= 2
  return out


def sampling_plan(key: jax.Array, num_a: int, num_b: int, size: int, *,
                  patches_per_image: int = 128, directions: int = 512,
                  repeats: int = 4, min_resolution: int = 16,
                  paired: bool = False) -> Plan:
  """Neighbourhood positions and projection directions drawn from `key`.

  Positions of images_a and the directions do not depend on `paired`, so a
  paired and an unpaired measurement with one key differ only in images_b's
  positions.
  """
  key_a, key_b, key_dirs = jax.random.split(key, 3)
  pos_a, pos_b, dirs = [], [], []
  for level, res in enumerate(resolutions(size, min_resolution)):
    def positions(k, n, res=res, level=level):
      return jax.random.randint(jax.random.fold_in(k, level),
                                (n, patches_per_image, 2), _HALF, res - _HALF,
                                jnp.int32)
    pos_a.append(positions(key_a, num_a))
    pos_b.append(pos_a[-1] if paired else positions(key_b, num_b))
    d = jax.random.normal(jax.random.fold_in(key_dirs, level),
                          (directions * repeats, DESCRIPTOR), jnp.float32)
    dirs.append(d / jnp.linalg.norm(d, axis=1, keepdims=True))
  return Plan(tuple(pos_a), tuple(pos_b), tuple(dirs))


def _blur(x: jax.Array, gain: float) -> jax.Array:
  """Separable 5x5 binomial filter (x gain) of NHWC x, reflected borders."""
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode='reflect')
  c = x.shape[-1]
  k = jnp.asarray(_BINOMIAL * gain)
  dn = ('NHWC', 'HWIO', 'NHWC')
  for shape in ((5, 1, 1, 1), (1, 5, 1, 1)):
    x = jax.lax.conv_general_dilated(
        x, jnp.tile(k.reshape(shape), (1, 1, 1, c)), (1, 1), 'VALID',
        dimension_numbers=dn, feature_group_count=c, precision=_HIGHEST)
  return x


def _pyr_down(x: jax.Array) -> jax.Array:
  return _blur(x, 1.0)[:, ::2, ::2]


def _pyr_up(x: jax.Array) -> jax.Array:
  n, h, w, c = x.shape
  up = jnp.zeros((n, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
  # x4 (2 per axis) restores the brightness lost to the zeros.
  return _blur(up, 2.0)


@functools.partial(jax.jit, static_argnums=1)
def laplacian_pyramid(images: jax.Array, num_levels: int
                      ) -> tuple[jax.Array, ...]:
  """Laplacian pyramid (cv2.pyrDown / pyrUp filters), finest level first.

  Args:
    images: float (N, S, S, C), S divisible by 2^(num_levels - 1).
    num_levels: number of levels L.

  Returns:
    L arrays (N, S / 2^l, S / 2^l, C): L - 1 band-pass levels (an image minus
    the up-sampled next coarser one) and the low-pass image last.
  """
  gaussian = [jnp.asarray(images, jnp.float32)]
  for _ in range(num_levels - 1):
    gaussian.append(_pyr_down(gaussian[-1]))
  bands = [g - _pyr_up(coarser) for g, coarser in zip(gaussian, gaussian[1:])]
  return tuple(bands) + (gaussian[-1],)


def extract_descriptors(level: jax.Array, positions: jax.Array) -> jax.Array:
  """7x7 neighbourhoods of `level` around `positions`, flattened.

  Args:
    level: (N, S, S, C) one pyramid level.
    positions: int (N, P, 2) (row, col) centres, each in [3, S - 3).

  Returns:
    (N * P, 49 * C), image-major, each row a neighbourhood in (row, col,
    channel) order.
  """
  offsets = jnp.arange(PATCH) - _HALF
  rows = positions[..., 0, None] + offsets  # (N, P, 7)
  cols = positions[..., 1, None] + offsets
  image = jnp.arange(level.shape[0])[:, None, None, None]
  patches = level[image, rows[..., :, None], cols[..., None, :]]
  return patches.reshape(-1, PATCH * PATCH * level.shape[-1])


@jax.jit
def _batch_descriptors(images: jax.Array, positions: tuple[jax.Array, ...]
                       ) -> tuple[jax.Array, ...]:
  pyramid = laplacian_pyramid(images, len(positions))
  return tuple(extract_descriptors(level, pos)
               for level, pos in zip(pyramid, positions))


def descriptors(images: np.ndarray, positions: Sequence[jax.Array]
                ) -> list[jax.Array]:
  """Per level, (N * P, 147) descriptors of (N, S, S, 3) images.

  The pyramid is computed IMAGE_BATCH images at a time (the last batch padded,
  so that one executable serves every batch).
  """
  n = len(images)
  batch = min(n, IMAGE_BATCH)
  pad = -n % batch
  images = np.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0)))
  positions = [jnp.pad(p, ((0, pad), (0, 0), (0, 0)), constant_values=_HALF)
               for p in positions]
  parts = [_batch_descriptors(images[s:s + batch],
                              tuple(p[s:s + batch] for p in positions))
           for s in range(0, n + pad, batch)]
  return [jnp.concatenate(level)[:n * positions[0].shape[1]]
          for level in zip(*parts)]


def _channel_stats(sets: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
  """Per-channel mean and std (population) over the rows of all `sets`."""
  count = sum(s.shape[0] for s in sets) * PATCH * PATCH
  views = [s.reshape(s.shape[0], PATCH * PATCH, -1) for s in sets]
  mean = sum(v.sum(axis=(0, 1)) for v in views) / count
  var = sum(jnp.square(v - mean).sum(axis=(0, 1)) for v in views) / count
  std = jnp.sqrt(var)
  return mean, jnp.where(std > 0, std, 1.0)  # Constant channel: 0, not NaN.


def normalize_descriptors(a: jax.Array, b: jax.Array, normalize: str = 'joint'
                          ) -> tuple[jax.Array, jax.Array]:
  """Zero mean, unit standard deviation per colour channel.

  Args:
    a: (M, 49 * C) descriptors.
    b: (M', 49 * C) descriptors.
    normalize: 'joint' (one mean and std per channel from the union of a and
      b, applied to both) or 'per_set' (each set by its own statistics, as the
      reference code).

  Returns:
    (a, b) normalised, same shapes.
  """
  def apply(x, mean, std):
    shape = x.shape
    return ((x.reshape(shape[0], PATCH * PATCH, -1) - mean) / std
            ).reshape(shape)
  if normalize == 'joint':
    stats = _channel_stats([a, b])
    return apply(a, *stats), apply(b, *stats)
  return apply(a, *_channel_stats([a])), apply(b, *_channel_stats([b]))


def sort_rows(x: jax.Array, use_numpy: bool | None = None) -> jax.Array:
  """Sorts each row of a float32 (R, M) array, ascending (jittable).

  XLA's CPU sort is a generic comparator sort, about 20x slower than NumPy's
  on the rows here (2048 x 8192: 5.5 s vs 0.3 s), so on CPU the rows go to
  np.sort through a callback (the default, use_numpy=None, follows the
  backend); elsewhere jnp.sort. Both give the same array.
  """
  if use_numpy is None:
    use_numpy = jax.default_backend() == 'cpu'
  if not use_numpy:
    return jnp.sort(x, axis=1)
  return jax.pure_callback(functools.partial(np.sort, axis=1),
                           jax.ShapeDtypeStruct(x.shape, x.dtype), x)


def sliced_wasserstein(a: jax.Array, b: jax.Array, directions: jax.Array,
                       block: int | None = None) -> jax.Array:
  """Sliced Wasserstein-1 distance between two equal-size descriptor sets.

  Args:
    a: (M, D) descriptors.
    b: (M, D) descriptors.
    directions: (T, D) unit rows.
    block: directions projected at once (must divide T); default: all.

  Returns:
    float32 scalar: the mean over directions and over the M sorted
    projections of |sort(a d) - sort(b d)|.
  """
  t = directions.shape[0]
  block = block or t
  def one_block(dirs):  # (block, D)
    pa = sort_rows(jnp.matmul(dirs, a.T, precision=_HIGHEST))
    pb = sort_rows(jnp.matmul(dirs, b.T, precision=_HIGHEST))
    return jnp.mean(jnp.abs(pa - pb), axis=1)
  means = jax.lax.map(one_block, directions.reshape(t // block, block, -1))
  return jnp.mean(means)


@functools.partial(jax.jit, static_argnames=('normalize', 'block'))
def _level_distance(a, b, directions, normalize, block):
  a, b = normalize_descriptors(a, b, normalize)
  return sliced_wasserstein(a, b, directions, block)


def _block_size(total: int, rows: int) -> int:
  """The largest divisor of `total` with block x rows <= PROJECTION_BLOCK."""
  cap = max(1, PROJECTION_BLOCK // max(rows, 1))
  return max(d for d in range(1, min(total, cap) + 1) if total % d == 0)


def ms_swd_with_plan(images_a, images_b, plan: Plan, *,
                     normalize: str = 'joint') -> dict[str, float]:
  """MS-SWD with explicit positions and directions (see `ms_swd`).

  Args:
    images_a: float (N, S, S, 3) in [-1, 1].
    images_b: float (N, S, S, 3) in [-1, 1].
    plan: from `sampling_plan` (or built by hand), one entry per level.
    normalize: 'joint' or 'per_set' (module docstring).

  Returns:
    {'swd_<S>': ..., 'swd_<S/2>': ..., ..., 'ms_swd': mean of the levels},
    all x10^3, Python floats.
  """
  levels = len(plan.directions)
  a, b = _check_images(images_a, images_b, PATCH + 1)
  _check_normalize(normalize)
  if (not levels or a.shape[1] >> (levels - 1) < PATCH + 1
      or {len(plan.positions_a), len(plan.positions_b)} != {levels}
      or any(p.shape[:2] != plan.positions_a[0].shape[:2]
             for p in plan.positions_a + plan.positions_b)
      or plan.positions_a[0].shape[0] != len(a)):
    raise InputError(f'the plan has {levels} levels and positions for'
                     f' {[p.shape[0] for p in plan.positions_a]} images; it'
                     f' does not fit {len(a)} images of {a.shape[1]}x'
                     f'{a.shape[1]} (use sampling_plan).')
  return _measure(a, b, plan, normalize)


def _measure(a: np.ndarray, b: np.ndarray, plan: Plan, normalize: str
             ) -> dict[str, float]:
  desc_a = descriptors(a, plan.positions_a)
  desc_b = descriptors(b, plan.positions_b)
  out = {}
  for level, (da, db, dirs) in enumerate(zip(desc_a, desc_b, plan.directions)):
    block = _block_size(dirs.shape[0], da.shape[0])
    out[f'swd_{a.shape[1] >> level}'] = 1e3 * float(
        _level_distance(da, db, dirs, normalize, block))
  out['ms_swd'] = float(np.mean(list(out.values())))
  return out


def ms_swd(images_a, images_b, key: jax.Array, *, patches_per_image: int = 128,
           directions: int = 512, repeats: int = 4, min_resolution: int = 16,
           paired: bool = False, normalize: str = 'joint') -> dict[str, float]:
  """Multi-scale sliced Wasserstein distance between two sets of images, x10^3.

  Args:
    images_a: float (N, S, S, 3) in [-1, 1], S a power of 2 >= min_resolution.
    images_b: float (N, S, S, 3) in [-1, 1], the same shape (the distance
      depends on the number of descriptors, so sets are compared at one size).
    key: JAX PRNG key; the same key gives the same result.
    patches_per_image: 7x7 neighbourhoods drawn per image and level.
    directions: random unit directions per repeat.
    repeats: direction draws; directions x repeats directions in all (the
      mean over repeats equals the mean over all of them).
    min_resolution: coarsest level, a power of 2 >= 8 (levels S, S/2, ...,
      min_resolution).
    paired: the same positions in both sets (image k of a with image k of b):
      for inpainted images against their originals. Identical sets give 0.
    normalize: 'joint' (default) or 'per_set' (the reference code's).

  Returns:
    {'swd_64': ..., 'swd_32': ..., 'swd_16': ..., 'ms_swd': average} for
    64x64 images, x10^3, Python floats.

  Raises:
    InputError: bad images or arguments (before any computation).
  """
  for name, value in (('patches_per_image', patches_per_image),
                      ('directions', directions), ('repeats', repeats)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise InputError(f'{name}={value!r}: must be a positive integer.')
  if min_resolution < PATCH + 1 or min_resolution & (min_resolution - 1):
    raise InputError(f'min_resolution={min_resolution}: must be a power of 2'
                     f' >= {PATCH + 1} (a level must hold a {PATCH}x{PATCH}'
                     ' neighbourhood).')
  a, b = _check_images(images_a, images_b, min_resolution)
  _check_normalize(normalize)
  plan = sampling_plan(key, len(a), len(b), a.shape[1],
                       patches_per_image=patches_per_image,
                       directions=directions, repeats=repeats,
                       min_resolution=min_resolution, paired=paired)
  return _measure(a, b, plan, normalize)


def _check_normalize(normalize: str) -> None:
  if normalize not in NORMALIZATIONS:
    raise InputError(f'normalize={normalize!r}: use one of'
                     f' {", ".join(NORMALIZATIONS)}.')


def _check_images(images_a, images_b, min_resolution: int
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Both sets as float32 numpy, or InputError saying what is wrong."""
  out = []
  for name, images in (('images_a', images_a), ('images_b', images_b)):
    x = np.asarray(images)
    if x.dtype.kind != 'f':
      raise InputError(f'{name} has dtype {x.dtype}; MS-SWD takes float'
                       ' images in [-1, 1] (uint8: use data.images.from_uint8).')
    if x.ndim != 4 or x.shape[-1] != 3:
      raise InputError(f'{name} has shape {x.shape}; expected (N, S, S, 3).')
    n, h, w, _ = x.shape
    if n < 1 or h != w or h < min_resolution or h & (h - 1):
      raise InputError(
          f'{name} has shape {x.shape}; expected N >= 1 square images whose'
          f' side is a power of 2 >= {min_resolution}.')
    if not np.isfinite(x).all():
      raise InputError(f'{name} has NaN or infinite values.')
    out.append(x.astype(np.float32, copy=False))
  if out[0].shape != out[1].shape:
    raise InputError(f'images_a has shape {out[0].shape} and images_b'
                     f' {out[1].shape}; MS-SWD compares sets of the same'
                     ' number and size of images.')
  return out[0], out[1]


def ms_swd_levels(size: int, min_resolution: int = 16) -> list[str]:
  """The keys `ms_swd` returns for S x S images, in order."""
  return [f'swd_{r}' for r in resolutions(size, min_resolution)] + ['ms_swd']


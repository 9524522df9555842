"""Classical inpainting baselines of the paper's comparisons (Sec. 4).

* `total_variation_inpaint` (TV): the image of least total variation that
  keeps the known pixels, solved by the primal-dual algorithm of Chambolle
  and Pock (2011), jitted and batched.
* `low_rank_inpaint` (LR): matrix completion of each channel (an H x W
  matrix) by soft-impute (Mazumder et al. 2010): singular value thresholding
  with the known pixels put back after every step, the threshold decreasing
  geometrically, jitted and batched.
* `nearest_neighbour_inpaint` (NN): the training image closest on the known
  pixels (L2), pasted into the hole.
* `patchmatch_inpaint` (PM): exemplar-based completion from the image's own
  known patches, with PatchMatch nearest-neighbour fields (Barnes et al.
  2009): an onion-peel fill, then Wexler et al. (2007) style refinement.

Each has a `*_method` factory returning a `methods.Method`, so that it runs
through the same evaluation as the z-search.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import methods

TV_ITERATIONS = 500
LR_ITERATIONS = 200
PM_PATCH = 7
PM_ITERATIONS = 5
PM_SEARCH_ITERATIONS = 2


def _gradient(x: jax.Array) -> jax.Array:
  """Forward differences of (N, H, W, C), zero at the far border ->
  (N, H, W, C, 2)."""
  dy = jnp.concatenate([x[:, 1:] - x[:, :-1], jnp.zeros_like(x[:, :1])], 1)
  dx = jnp.concatenate([x[:, :, 1:] - x[:, :, :-1],
                        jnp.zeros_like(x[:, :, :1])], 2)
  return jnp.stack([dy, dx], axis=-1)


def _divergence(p: jax.Array) -> jax.Array:
  """The negative adjoint of `_gradient`: (N, H, W, C, 2) -> (N, H, W, C)."""
  py, px = p[..., 0], p[..., 1]
  dy = jnp.concatenate([py[:, :1], py[:, 1:-1] - py[:, :-2], -py[:, -2:-1]],
                       1)
  dx = jnp.concatenate([px[:, :, :1], px[:, :, 1:-1] - px[:, :, :-2],
                        -px[:, :, -2:-1]], 2)
  return dy + dx


@functools.partial(jax.jit, static_argnames=('iterations',))
def total_variation_inpaint(images: jax.Array, masks: jax.Array,
                            iterations: int = TV_ITERATIONS) -> jax.Array:
  """TV inpainting: min over x of sum_i |grad x_i| with x = y where M = 1.

  Isotropic total variation per channel (forward differences), minimised by
  Chambolle-Pock with step sizes sigma = tau = 0.35 (sigma * tau * 8 < 1,
  8 bounding |grad|^2), started from the mean colour of the known pixels in
  the hole.

  Args:
    images: (N, H, W, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, H, W, 1), 1 = known pixel.
    iterations: primal-dual iterations.

  Returns:
    float32 (N, H, W, C): known pixels exactly as in `images`.
  """
  images = jnp.asarray(images, jnp.float32)
  known = jnp.broadcast_to(jnp.asarray(masks, jnp.float32) > 0.5,
                           images.shape)
  y = jnp.where(known, images, 0.0)
  mean = (jnp.sum(y, axis=(1, 2), keepdims=True)
          / jnp.maximum(jnp.sum(known, axis=(1, 2), keepdims=True), 1))
  x = jnp.where(known, y, mean)
  step = 0.35

  def body(_, carry):
    x, x_bar, p = carry
    p = p + step * _gradient(x_bar)
    p = p / jnp.maximum(1.0, jnp.linalg.norm(p, axis=-1, keepdims=True))
    x_new = jnp.where(known, y, x + step * _divergence(p))
    return x_new, 2.0 * x_new - x, p

  p0 = jnp.zeros(images.shape + (2,), jnp.float32)
  x, _, _ = jax.lax.fori_loop(0, iterations, body, (x, x, p0))
  return x


@functools.partial(jax.jit, static_argnames=('iterations',))
def low_rank_inpaint(images: jax.Array, masks: jax.Array,
                     iterations: int = LR_ITERATIONS,
                     final_threshold: float = 1e-3) -> jax.Array:
  """LR inpainting: each channel completed as a low-rank H x W matrix.

  Soft-impute: Z <- S_t(M * Y + (1 - M) * Z), S_t shrinking the singular
  values by t, with t going geometrically from the largest singular value of
  the known pixels down to `final_threshold` times it; known pixels are
  returned exactly.

  Args:
    images: (N, H, W, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, H, W, 1), 1 = known pixel.
    iterations: thresholding steps.
    final_threshold: last threshold relative to the first.

  Returns:
    float32 (N, H, W, C).
  """
  images = jnp.asarray(images, jnp.float32)
  known = jnp.broadcast_to(jnp.asarray(masks, jnp.float32) > 0.5,
                           images.shape)
  # (N, C, H, W): one matrix per image and channel.
  y = jnp.transpose(jnp.where(known, images, 0.0), (0, 3, 1, 2))
  k = jnp.transpose(known, (0, 3, 1, 2))
  top = jnp.linalg.norm(y, ord=2, axis=(2, 3), keepdims=True)
  decay = final_threshold ** (1.0 / max(iterations - 1, 1))

  def body(i, z):
    u, s, vt = jnp.linalg.svd(jnp.where(k, y, z), full_matrices=False)
    s = jnp.maximum(s - top[..., 0] * decay ** i, 0.0)
    return jnp.einsum('...ij,...j,...jk->...ik', u, s, vt)

  z = jax.lax.fori_loop(0, iterations, body, y)
  return jnp.transpose(jnp.where(k, y, z), (0, 2, 3, 1))


def lr_method(iterations: int = LR_ITERATIONS) -> methods.Method:
  """LR inpainting as a `methods.Method` (the 'LR' of the paper's Fig. 1/6)."""

  def fill(images, masks, index_offset):
    del index_offset
    filled = np.asarray(jnp.clip(low_rank_inpaint(
        images, masks, iterations=iterations), -1.0, 1.0))
    return {'generated': filled, 'inpainted': filled}

  return methods.Method('lr', fill, settings={'iterations': iterations})


@jax.jit
def _masked_distances(images: jax.Array, masks: jax.Array,
                      candidates: jax.Array) -> jax.Array:
  """(N, K) squared L2 distances over each image's known pixels.

  sum M (x - t)^2 = sum M x^2 - 2 sum (M x) t + sum M t^2, two matmuls.
  """
  m = jnp.broadcast_to(masks, images.shape).reshape(len(images), -1)
  x = images.reshape(len(images), -1)
  t = candidates.reshape(len(candidates), -1)
  return (jnp.sum(m * x * x, axis=1, keepdims=True) - 2.0 * (m * x) @ t.T
          + m @ (t * t).T)


def nearest_neighbour_inpaint(images: np.ndarray, masks: np.ndarray,
                              candidates: np.ndarray, chunk: int = 2048
                              ) -> tuple[np.ndarray, np.ndarray]:
  """NN inpainting: the candidate closest on the known pixels fills the hole.

  Args:
    images: (N, H, W, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, H, W, 1), 1 = known pixel.
    candidates: (K, H, W, C) in [-1, 1] (or uint8), e.g. the training split.
    chunk: candidates compared at a time (memory).

  Returns:
    (filled (N, H, W, C) float32: known pixels from `images`, the rest from
    the nearest candidate; the index of that candidate per image, (N,)).
  """
  images = np.asarray(images, np.float32)
  masks = np.asarray(masks, np.float32)
  y = images * masks
  best = np.full(len(images), np.inf)
  index = np.zeros(len(images), np.int64)
  for start in range(0, len(candidates), chunk):
    block = np.asarray(candidates[start:start + chunk])
    if block.dtype == np.uint8:
      block = block.astype(np.float32) / 127.5 - 1.0
    d = np.asarray(_masked_distances(y, masks, block))
    nearest = np.argmin(d, axis=1)
    closer = d[np.arange(len(d)), nearest] < best
    best = np.where(closer, d[np.arange(len(d)), nearest], best)
    index = np.where(closer, start + nearest, index)
  chosen = np.asarray(candidates[index])
  if chosen.dtype == np.uint8:
    chosen = chosen.astype(np.float32) / 127.5 - 1.0
  return masks * images + (1.0 - masks) * chosen, index


def nn_method(candidates: np.ndarray) -> methods.Method:
  """NN inpainting from `candidates` (the training split) as a Method."""

  def fill(images, masks, index_offset):
    del index_offset
    filled, _ = nearest_neighbour_inpaint(images, masks, candidates)
    return {'generated': filled, 'inpainted': filled}

  return methods.Method('nn', fill, settings={'candidates': len(candidates)})


def tv_method(iterations: int = TV_ITERATIONS) -> methods.Method:
  """TV inpainting as a `methods.Method` (the 'TV' of the paper's Fig. 1/6)."""

  def fill(images, masks, index_offset):
    del index_offset
    filled = np.asarray(jnp.clip(total_variation_inpaint(
        images, masks, iterations=iterations), -1.0, 1.0))
    return {'generated': filled, 'inpainted': filled}

  return methods.Method('tv', fill, settings={'iterations': iterations})


# PatchMatch propagation offsets: the four neighbours at distances 1, 2 and
# 4 (a parallel, jump-flooding version of the scan-order propagation).
_PM_OFFSETS = tuple((s * dy, s * dx) for s in (1, 2, 4)
                    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)))


class _PatchMatch:
  """Nearest-neighbour fields from target patches to fully known patches.

  Patches are addressed by their top-left corner (i, j), 0 <= i < H - p + 1;
  targets are given as flat arrays (image n, i, j) over the whole batch.
  """

  def __init__(self, known: np.ndarray, patch: int,
               rng: np.random.Generator):
    """known: bool (N, H, W), True = known pixel."""
    self.patch = patch
    self.rng = rng
    windows = np.lib.stride_tricks.sliding_window_view(
        known, (patch, patch), axis=(1, 2))
    # (N, Hc, Wc): True where the whole patch is known (a valid source).
    self.source_ok = windows.all(axis=(3, 4))
    self.shape = self.source_ok.shape[1:]
    self.sources = [np.flatnonzero(ok) for ok in self.source_ok]
    # The field over all corners, kept between calls; -1 = unset.
    self.grid = np.full(self.source_ok.shape + (2,), -1, np.int64)

  def _random_sources(self, n: np.ndarray) -> np.ndarray:
    """A uniformly random valid source corner for each of n (T,) -> (T, 2)."""
    counts = np.array([len(s) for s in self.sources])[n]
    pick = (self.rng.random(len(n)) * counts).astype(np.int64)
    flat = np.array([self.sources[k][p] for k, p in zip(n, pick)],
                    np.int64).reshape(-1)
    return np.stack(np.unravel_index(flat, self.shape), axis=-1)

  def _distances(self, patches, n, target, weight, field):
    """Weighted mean squared differences, inf for invalid sources -> (T,)."""
    field = np.clip(field, 0, np.array(self.shape) - 1)
    rows = (n * self.shape[0] + field[:, 0]) * self.shape[1] + field[:, 1]
    d = np.einsum('tk,tk->t', (target - np.take(patches, rows, axis=0)) ** 2,
                  weight)
    return np.where(self.source_ok[n, field[:, 0], field[:, 1]], d,
                    np.inf), field

  def search(self, image: np.ndarray, weights: np.ndarray, n: np.ndarray,
             i: np.ndarray, j: np.ndarray, iterations: int) -> np.ndarray:
    """Approximate nearest sources of the targets (n, i, j), each (T,).

    Args:
      image: (N, H, W, C) the current estimate.
      weights: (N, H, W) per-pixel weights of the patch distance (0 = pixel
        not yet filled).
      n, i, j: (T,) image index and top-left corner of each target patch.
      iterations: PatchMatch rounds of propagation and random search.

    Returns:
      int (T, 2): the source corner of each target, a fully known patch.
    """
    p = self.patch
    # (N * Hc * Wc, C * p * p): every patch as a contiguous row.
    windows = np.lib.stride_tricks.sliding_window_view(
        image, (p, p), axis=(1, 2))
    patches = np.ascontiguousarray(windows).reshape(-1, windows[0, 0, 0].size)
    target = windows[n, i, j].reshape(len(n), -1)
    weight = np.lib.stride_tricks.sliding_window_view(
        weights, (p, p), axis=(1, 2))[n, i, j]
    weight = np.broadcast_to(weight[:, None], windows[n, i, j].shape).reshape(
        len(n), -1)
    weight = weight / np.maximum(weight.sum(axis=1, keepdims=True), 1e-6)
    field = self.grid[n, i, j]
    unset = ~self.source_ok[n, np.maximum(field[:, 0], 0),
                            np.maximum(field[:, 1], 0)] | (field[:, 0] < 0)
    if unset.any():
      field[unset] = self._random_sources(n[unset])
    best, field = self._distances(patches, n, target, weight, field)
    limit = np.array(self.shape) - 1

    def consider(candidate):
      nonlocal best, field
      d, candidate = self._distances(patches, n, target, weight, candidate)
      better = d < best
      best = np.where(better, d, best)
      field = np.where(better[:, None], candidate, field)

    for _ in range(iterations):
      self.grid[n, i, j] = field
      for dy, dx in _PM_OFFSETS:
        ni, nj = np.clip(i + dy, 0, limit[0]), np.clip(j + dx, 0, limit[1])
        neighbour = self.grid[n, ni, nj]
        consider(neighbour - np.stack([ni - i, nj - j], axis=-1))
      radius = max(self.shape)
      while radius >= 1:
        consider(field + self.rng.integers(-radius, radius + 1, field.shape))
        radius //= 2
    self.grid[n, i, j] = field
    return field


def _vote(image: np.ndarray, n: np.ndarray, i: np.ndarray, j: np.ndarray,
          field: np.ndarray, vote_weight: np.ndarray, patch: int
          ) -> tuple[np.ndarray, np.ndarray]:
  """Each target patch votes its source's pixels for the pixels it covers.

  Returns:
    (weighted sums (N, H, W, C), total weights (N, H, W)).
  """
  big_n, h, w, c = image.shape
  a, b = np.divmod(np.arange(patch * patch), patch)
  ty, tx = i[:, None] + a, j[:, None] + b  # (T, p * p)
  sy, sx = field[:, :1] + a, field[:, 1:] + b
  nn = np.broadcast_to(n[:, None], ty.shape)
  index = ((nn * h + ty) * w + tx).reshape(-1)
  values = image[nn, sy, sx].reshape(-1, c)
  weight = np.broadcast_to(vote_weight[:, None], ty.shape).reshape(-1)
  size = big_n * h * w
  sums = np.stack([np.bincount(index, weight * values[:, k], size)
                   for k in range(c)], axis=-1)
  total = np.bincount(index, weight, size)
  return sums.reshape(image.shape), total.reshape(image.shape[:3])


def _covering(pixels: np.ndarray, patch: int) -> np.ndarray:
  """bool (N, Hc, Wc): patches (by top-left corner) containing a pixel set in
  `pixels` (N, H, W)."""
  return np.lib.stride_tricks.sliding_window_view(
      pixels, (patch, patch), axis=(1, 2)).any(axis=(3, 4))


def patchmatch_inpaint(images: np.ndarray, masks: np.ndarray,
                       patch: int = PM_PATCH,
                       iterations: int = PM_ITERATIONS,
                       search_iterations: int = PM_SEARCH_ITERATIONS,
                       seed: int = 0) -> np.ndarray:
  """PM inpainting: the hole completed from the image's own known patches.

  Exemplar-based completion with PatchMatch nearest-neighbour fields (Barnes
  et al. 2009), single scale, in NumPy and batched:

  1. Onion peel: while hole pixels remain, the patches containing an
     unfilled pixel next to a filled one are matched (distance over their
     filled pixels only) to fully known patches, and those next pixels are
     set to the votes of their sources, weighted by the square of the
     number of filled pixels of the voting patch.
  2. Wexler et al. (2007) refinement, `iterations` times: every patch
     overlapping the hole is matched (distance over all its pixels), and
     every hole pixel set to the mean of the corresponding pixels of the
     sources of the patches covering it.

  Sources are patches lying wholly in the known region; an image with none
  (a hole too large for `patch`) is filled with its mean known colour.

  Args:
    images: (N, H, W, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, H, W, 1), 1 = known pixel.
    patch: patch side in pixels.
    iterations: refinement rounds (step 2).
    search_iterations: PatchMatch rounds per nearest-neighbour field.
    seed: seeds the random initialisation and search; deterministic.

  Returns:
    float32 (N, H, W, C): known pixels exactly as in `images`.
  """
  images = np.asarray(images, np.float32)
  known = np.asarray(masks)[..., 0] > 0.5
  if images.shape[1] < patch or images.shape[2] < patch:
    raise ValueError(f'images {images.shape[1:3]} smaller than the patch '
                     f'{patch}')
  count = np.maximum(known.sum(axis=(1, 2)), 1)[:, None, None, None]
  mean = np.sum(np.where(known[..., None], images, 0.0), axis=(1, 2),
                keepdims=True) / count
  x = np.where(known[..., None], images, mean).astype(np.float32)
  matcher = _PatchMatch(known, patch, np.random.default_rng(seed))
  active = np.array([len(s) > 0 for s in matcher.sources])
  filled = known | ~active[:, None, None]

  def fill(pixels, weights, vote_power):
    """Matches the patches covering `pixels` and sets those pixels."""
    n, i, j = np.nonzero(_covering(pixels, patch))
    if not len(n):
      return
    field = matcher.search(x, weights, n, i, j, search_iterations)
    vote_weight = np.lib.stride_tricks.sliding_window_view(
        weights, (patch, patch), axis=(1, 2))[n, i, j].sum(axis=(1, 2))
    sums, total = _vote(x, n, i, j, field, vote_weight ** vote_power, patch)
    update = pixels & (total > 0)
    x[update] = sums[update] / total[update][:, None]

  # 1. Onion peel, one ring of pixels at a time.
  while not filled.all():
    grown = np.zeros_like(filled)
    padded = np.pad(filled, ((0, 0), (1, 1), (1, 1)))
    for dy in range(3):
      for dx in range(3):
        grown |= padded[:, dy:dy + filled.shape[1], dx:dx + filled.shape[2]]
    ring = grown & ~filled
    if not ring.any():
      break
    fill(ring, filled.astype(np.float32), 2)
    filled |= ring
  # 2. Wexler-style refinement.
  hole = ~known & active[:, None, None]
  for _ in range(iterations):
    fill(hole, np.ones(known.shape, np.float32), 0)
  return x


def pm_method(patch: int = PM_PATCH, iterations: int = PM_ITERATIONS,
              search_iterations: int = PM_SEARCH_ITERATIONS,
              seed: int = 0) -> methods.Method:
  """PM inpainting (PatchMatch exemplar fill) as a `methods.Method`."""

  def fill(images, masks, index_offset):
    del index_offset
    filled = np.clip(patchmatch_inpaint(
        images, masks, patch=patch, iterations=iterations,
        search_iterations=search_iterations, seed=seed), -1.0, 1.0)
    return {'generated': filled, 'inpainted': filled}

  return methods.Method('pm', fill, settings={
      'patch': patch, 'iterations': iterations,
      'search_iterations': search_iterations, 'seed': seed})

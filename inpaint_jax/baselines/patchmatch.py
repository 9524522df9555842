"""PatchMatch exemplar inpainting (the paper's PM baseline).

`patchmatch_inpaint` fills each hole from the image's own known patches:
approximate nearest-neighbour fields by PatchMatch (Barnes et al. 2009), an
onion-peel fill, then Wexler et al. (2007) style refinement. NumPy, batched,
deterministic given the seed. `baselines.pm_method` wraps it as a Method.
"""

from __future__ import annotations

import numpy as np

PM_PATCH = 7
PM_ITERATIONS = 5
PM_SEARCH_ITERATIONS = 2
PM_PEEL = 2  # Depth of the ring of hole pixels each onion-peel step fills.


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
    counts = np.array([len(s) for s in self.sources])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pick = (self.rng.random(len(n)) * counts[n]).astype(np.int64)
    flat = np.concatenate(self.sources)[starts[n] + pick]
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
     unfilled pixel within `PM_PEEL` pixels of a filled one are matched
     (distance over their filled pixels only) to fully known patches, and
     those pixels are set to the votes of their sources, weighted by the
     square of the number of filled pixels of the voting patch.
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

  # 1. Onion peel, a ring `PM_PEEL` pixels deep at a time.
  height, width = filled.shape[1:]
  while not filled.all():
    grown = filled
    for _ in range(PM_PEEL):
      padded = np.pad(grown, ((0, 0), (1, 1), (1, 1)))
      grown = np.zeros_like(filled)
      for dy in range(3):
        for dx in range(3):
          grown |= padded[:, dy:dy + height, dx:dx + width]
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

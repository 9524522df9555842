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
* `patchmatch.patchmatch_inpaint` (PM): exemplar-based completion from the
  image's own known patches (in its own module).

Each has a `*_method` factory returning a `methods.Method`, so that it runs
through the same evaluation as the z-search.
"""

from __future__ import annotations

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import threadpoolctl

from inpaint_jax import methods
from inpaint_jax.baselines.patchmatch import (PM_ITERATIONS, PM_PATCH,
                                    PM_SEARCH_ITERATIONS, patchmatch_inpaint)

TV_ITERATIONS = 500
LR_ITERATIONS = 200


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


def one_blas_thread() -> threadpoolctl.threadpool_limits:
  """A context in which BLAS and LAPACK run on one thread (threadpoolctl).

  jaxlib runs its CPU LAPACK kernels (jnp.linalg.svd) on SciPy's OpenBLAS,
  whose threads spin against XLA's own: with two busy processes on a 2-core
  CPU, 64 64x64 images through 10 soft-impute steps took 86-101 s on 2
  OpenBLAS threads and 3 s on one. SciPy's LAPACK is loaded first (jaxlib
  loads it when it lowers its first LAPACK call) so that threadpoolctl finds
  it.
  """
  importlib.import_module('scipy.linalg.cython_lapack')
  return threadpoolctl.threadpool_limits(1, user_api='blas')


def low_rank_inpaint(images: jax.Array, masks: jax.Array,
                     iterations: int = LR_ITERATIONS,
                     final_threshold: float = 1e-3) -> jax.Array:
  """LR inpainting: each channel completed as a low-rank H x W matrix.

  Soft-impute: Z <- S_t(M * Y + (1 - M) * Z), S_t shrinking the singular
  values by t, with t going geometrically from the largest singular value of
  the known pixels down to `final_threshold` times it; known pixels are
  returned exactly. The SVDs run on one BLAS thread (`one_blas_thread`).

  Args:
    images: (N, H, W, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, H, W, 1), 1 = known pixel.
    iterations: thresholding steps.
    final_threshold: last threshold relative to the first.

  Returns:
    float32 (N, H, W, C).
  """
  with one_blas_thread():
    return jax.block_until_ready(
        _soft_impute(images, masks, iterations, final_threshold))


@functools.partial(jax.jit, static_argnames=('iterations',))
def _soft_impute(images: jax.Array, masks: jax.Array, iterations: int,
                 final_threshold: float) -> jax.Array:
  """`low_rank_inpaint`, jitted (its SVDs on however many BLAS threads)."""
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
  return methods.fill_method(
      'lr', functools.partial(low_rank_inpaint, iterations=iterations),
      {'iterations': iterations})


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
  return methods.fill_method(
      'nn', lambda images, masks: nearest_neighbour_inpaint(
          images, masks, candidates)[0], {'candidates': len(candidates)})


def tv_method(iterations: int = TV_ITERATIONS) -> methods.Method:
  """TV inpainting as a `methods.Method` (the 'TV' of the paper's Fig. 1/6)."""
  return methods.fill_method(
      'tv', functools.partial(total_variation_inpaint, iterations=iterations),
      {'iterations': iterations})


def pm_method(patch: int = PM_PATCH, iterations: int = PM_ITERATIONS,
              search_iterations: int = PM_SEARCH_ITERATIONS,
              seed: int = 0) -> methods.Method:
  """PM inpainting (PatchMatch exemplar fill) as a `methods.Method`."""
  settings = {'patch': patch, 'iterations': iterations,
              'search_iterations': search_iterations, 'seed': seed}
  return methods.fill_method(
      'pm', functools.partial(patchmatch_inpaint, **settings), settings)

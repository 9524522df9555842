"""Classical inpainting baselines of the paper's comparisons (Sec. 4).

* `total_variation_inpaint` (TV): the image of least total variation that
  keeps the known pixels, solved by the primal-dual algorithm of Chambolle
  and Pock (2011), jitted and batched.

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


def tv_method(iterations: int = TV_ITERATIONS) -> methods.Method:
  """TV inpainting as a `methods.Method` (the 'TV' of the paper's Fig. 1/6)."""

  def fill(images, masks, index_offset):
    del index_offset
    filled = np.asarray(jnp.clip(total_variation_inpaint(
        images, masks, iterations=iterations), -1.0, 1.0))
    return {'generated': filled, 'inpainted': filled}

  return methods.Method('tv', fill, settings={'iterations': iterations})

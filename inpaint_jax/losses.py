"""The inpainting losses of Yeh et al.: Eq. 3 (weights), 4 (context), 5 (prior).

Images are float32 NHWC in [-1, 1]; masks are (N, H, W, 1) with 1 = known
pixel and 0 = missing pixel. All functions are jittable.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from inpaint_jax.config import SearchConfig


def importance_weights(masks: jax.Array,
                       window: int = SearchConfig.window) -> jax.Array:
  """Importance weights W of Eq. 3.

  W_i = 0 where M_i = 0; at a known pixel, W_i = sum_{j in N(i)} (1 - M_j) /
  |N(i)|, the fraction of missing pixels in the window x window neighbourhood
  N(i) centred on i (i itself included; it is known, so it adds 0).
  Boundary convention: pixels outside the image count as known, and |N(i)| =
  window**2 everywhere, also near the border; this is a zero-padded box filter
  of (1 - M).

  Args:
    masks: (N, H, W, 1) or (H, W, 1) float in {0, 1}, 1 = known.
    window: odd window side (the paper uses 7).

  Returns:
    float32 array of the shape of `masks`, values in [0, 1).
  """
  if (isinstance(window, bool) or not hasattr(window, '__index__')
      or window < 1 or window % 2 == 0):
    raise ValueError(f'window={window!r} must be a positive odd int so that'
                     ' the neighbourhood is centred on the pixel.')
  masks = jnp.asarray(masks, jnp.float32)
  if masks.ndim not in (3, 4) or masks.shape[-1] != 1:
    raise ValueError(f'masks have shape {masks.shape}; expected (N, H, W, 1)'
                     ' or (H, W, 1).')
  window = int(window)
  batched = masks if masks.ndim == 4 else masks[None]
  r = window // 2
  missing_count = jax.lax.reduce_window(
      1.0 - batched, 0.0, jax.lax.add,
      window_dimensions=(1, window, window, 1),
      window_strides=(1, 1, 1, 1),
      padding=((0, 0), (r, r), (r, r), (0, 0)))
  weights = batched * missing_count / float(window * window)
  return weights if masks.ndim == 4 else weights[0]


def _check_images(generated: jax.Array, images: jax.Array,
                  weights: jax.Array) -> None:
  if generated.ndim != 4 or generated.shape != images.shape:
    raise ValueError(f'generated {generated.shape} and images {images.shape}'
                     ' must both be (N, H, W, C).')
  if (weights.ndim != 4 or weights.shape[:3] != images.shape[:3]
      or weights.shape[3] not in (1, images.shape[3])):
    raise ValueError(f'weights have shape {weights.shape}; expected'
                     f' {images.shape[:3] + (1,)} or {images.shape}.')


def context_loss(generated: jax.Array, images: jax.Array,
                 weights: jax.Array) -> jax.Array:
  """Importance-weighted L1 context loss of Eq. 4, per image.

  Args:
    generated: G(z), (N, H, W, C) in [-1, 1].
    images: corrupted inputs y, (N, H, W, C) in [-1, 1] (values at missing
      pixels are ignored since their weight is 0).
    weights: (N, H, W, 1) or (N, H, W, C), from `importance_weights`;
      broadcast over channels.

  Returns:
    float32 (N,) >= 0: sum over H, W, C of |W * (G(z) - y)|.
  """
  _check_images(generated, images, weights)
  return jnp.sum(jnp.abs(weights * (generated - images)), axis=(1, 2, 3))


def prior_loss(logits: jax.Array, lam: float = SearchConfig.lam) -> jax.Array:
  """Prior loss of Eq. 5, lam * log(1 - D(G(z))), per image.

  D = sigmoid(logits); log(1 - sigmoid(l)) = -softplus(l) is used, which is
  finite for any finite logit.

  Args:
    logits: discriminator logits of G(z), shape (N,) or (N, 1).
    lam: weight lambda (the paper uses 0.003).

  Returns:
    float32 (N,) <= 0; it decreases towards -inf as D(G(z)) -> 1.
  """
  logits = jnp.asarray(logits)
  if logits.ndim == 2 and logits.shape[1] == 1:
    logits = logits[:, 0]
  if logits.ndim != 1:
    raise ValueError(f'logits have shape {logits.shape}; expected (N,) or'
                     ' (N, 1).')
  return -lam * jax.nn.softplus(logits)


class InpaintingLoss(NamedTuple):
  """Eq. 2 per image, with its two terms: each float32 (N,)."""
  total: jax.Array
  context: jax.Array
  prior: jax.Array


def inpainting_loss(generated: jax.Array, images: jax.Array,
                    weights: jax.Array, logits: jax.Array,
                    lam: float = SearchConfig.lam) -> InpaintingLoss:
  """Eq. 2: context loss (Eq. 4) + prior loss (Eq. 5), per image.

  The one place the two terms are added: the z-search, its benchmarks and
  the tests all call this.

  Args:
    generated: G(z), (N, H, W, C) in [-1, 1].
    images: corrupted inputs y, (N, H, W, C) in [-1, 1].
    weights: (N, H, W, 1) or (N, H, W, C) importance weights (Eq. 3).
    logits: discriminator logits of G(z), (N,) or (N, 1).
    lam: prior loss weight lambda.

  Returns:
    InpaintingLoss(total, context, prior), each float32 (N,); sum `total`
    over images before differentiating.
  """
  logits = jnp.asarray(logits)
  n = logits.shape[0] if logits.ndim else -1
  if n != generated.shape[0]:
    raise ValueError(f'logits {logits.shape} and generated {generated.shape}'
                     ' must have the same batch size.')
  context = context_loss(generated, images, weights)
  prior = prior_loss(logits, lam)
  return InpaintingLoss(context + prior, context, prior)

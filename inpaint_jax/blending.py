"""Eq. 6 of Yeh et al.: Poisson blending of G(z_hat) into the known pixels.

Images are float32 NHWC in [-1, 1]; masks are (N, H, W, 1) (or (H, W, 1), or
one mask per channel (N, H, W, C)) with 1 = known pixel, 0 = missing pixel.

Poisson blending solves, independently per image and channel,

  min_x sum_{edges (i, j)} ((x_i - x_j) - (g_i - g_j))^2
  s.t. x_i = y_i where M_i = 1,

over the 4-neighbour edges (i, j) that lie inside the image, with g = G(z_hat)
and y the input. The optimality conditions are the discrete Poisson equation
on the missing set U with Dirichlet values from y at known pixels and Neumann
conditions at the image border:

  deg_i x_i - sum_{j ~ i, j in U} x_j
      = deg_i g_i - sum_{j ~ i} g_j + sum_{j ~ i, j known} y_j,  i in U,

where deg_i (2, 3 or 4) counts the in-image neighbours of i. Its matrix A (the
graph Laplacian restricted to U) is symmetric positive definite as soon as the
image has one known pixel, since every connected component of U then borders a
known pixel. It is solved matrix-free by Jacobi-preconditioned conjugate
gradients, all images and channels of the batch at once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from inpaint_jax import masks as masks_lib

DEFAULT_MAX_ITERS = 2000
DEFAULT_TOL = 1e-6


def overlay(generated: jax.Array, images: jax.Array,
            masks: jax.Array) -> jax.Array:
  """Plain overlay M * y + (1 - M) * G(z): known pixels from y, others from G.

  Args:
    generated: G(z_hat), (N, H, W, C) in [-1, 1].
    images: inputs y, (N, H, W, C) in [-1, 1].
    masks: (N, H, W, 1), (H, W, 1) or (N, H, W, C) in {0, 1}, 1 = known.

  Returns:
    float32 (N, H, W, C) in [-1, 1].
  """
  generated, images, masks = _check_shapes(generated, images, masks)
  return masks * images + (1.0 - masks) * generated


def _check_shapes(generated, images, masks):
  generated = jnp.asarray(generated, jnp.float32)
  images = jnp.asarray(images, jnp.float32)
  masks = jnp.asarray(masks, jnp.float32)
  if generated.ndim != 4 or generated.shape != images.shape:
    raise ValueError(f'generated {generated.shape} and images {images.shape}'
                     ' must both be (N, H, W, C).')
  if masks.ndim == 3:
    masks = masks[None]
  n, h, w, c = images.shape
  if (masks.ndim != 4 or masks.shape[1:3] != (h, w)
      or masks.shape[0] not in (1, n) or masks.shape[3] not in (1, c)):
    raise ValueError(f'masks have shape {masks.shape}; expected ({n}, {h}, {w},'
                     f' 1), ({h}, {w}, 1) or ({n}, {h}, {w}, {c}).')
  masks = jnp.broadcast_to(masks, (n, h, w, masks.shape[3]))
  return generated, images, masks


def _check_mask_values(masks: jax.Array) -> None:
  """Value checks, skipped when the masks are traced (under jit)."""
  if isinstance(masks, jax.core.Tracer):
    return
  masks_lib.check_masks(
      masks, 'masks', require_missing=False,
      known_fix='Poisson blending has no boundary values; use overlay() or'
      ' G(z_hat) itself for it')


def _neighbour_sum(v: jax.Array) -> jax.Array:
  """Sum of the in-image 4-neighbours of each pixel of (S, H, W)."""
  # Concatenating zeros is about twice as fast as jnp.pad + slicing on CPU.
  s, h, w = v.shape
  zr = jnp.zeros((s, 1, w), v.dtype)
  zc = jnp.zeros((s, h, 1), v.dtype)
  return ((jnp.concatenate([zr, v[:, :-1]], 1)
           + jnp.concatenate([v[:, 1:], zr], 1))
          + (jnp.concatenate([zc, v[:, :, :-1]], 2)
             + jnp.concatenate([v[:, :, 1:], zc], 2)))


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-system inner product of (S, H, W) arrays -> (S, 1, 1)."""
  return jnp.sum(a * b, axis=(1, 2), keepdims=True)


def _to_systems(v: jax.Array) -> jax.Array:
  # (N, H, W, C) -> (N * C, H, W): W innermost vectorises the stencil far
  # better on CPU than a channel axis of 3.
  n, h, w, c = v.shape
  return jnp.transpose(v, (0, 3, 1, 2)).reshape(n * c, h, w)


def _from_systems(v: jax.Array, c: int) -> jax.Array:
  s, h, w = v.shape
  return jnp.transpose(v.reshape(s // c, c, h, w), (0, 2, 3, 1))


def poisson_system(generated: jax.Array, images: jax.Array,
                   unknown: jax.Array):
  """The discrete system of Eq. 6 on the missing pixels (module docstring).

  Args:
    generated: g = G(z_hat) as (S, H, W) systems (one per image and channel).
    images: y as (S, H, W); values at missing pixels are ignored (may be NaN).
    unknown: (S, H, W) bool, True at missing pixels (the set U).

  Returns:
    (apply_a, b, degree): the operator v -> A v of the graph Laplacian
    restricted to U (for v zero outside U), the right-hand side
    b_i = deg_i g_i - sum_{j~i} g_j + sum_{j~i, j known} y_j on U (0
    elsewhere), and the (1, H, W) in-image degree deg_i in {2, 3, 4}, the
    diagonal of A on U.
  """
  u = unknown.astype(jnp.float32)
  degree = _neighbour_sum(jnp.ones((1,) + generated.shape[1:], jnp.float32))

  def apply_a(v):
    return u * (degree * v - _neighbour_sum(v))

  known_y = jnp.where(unknown, 0.0, images)
  b = u * (degree * generated - _neighbour_sum(generated)
           + _neighbour_sum(known_y))
  return apply_a, b, degree


def preconditioned_cg(apply_a, b: jax.Array, x0: jax.Array,
                      inv_diagonal: jax.Array, tol: jax.Array,
                      max_iters: int):
  """Batched preconditioned conjugate gradients for S independent SPD systems.

  Each system (leading axis) has its own step sizes and stops once its
  residual in the M^-1 norm (M = the preconditioner) falls below `tol`
  times the larger of |b| and |r0| in that norm, so b = 0 still terminates
  and no system depends on the others; the loop runs until all have.

  Args:
    apply_a: v -> A v on (S, H, W) arrays (A symmetric positive definite).
    b: (S, H, W) right-hand sides.
    x0: (S, H, W) starting points.
    inv_diagonal: M^-1, broadcastable to (S, H, W) (Jacobi: 1 / diag(A)).
    tol: relative tolerance (float32 scalar).
    max_iters: iteration cap (static).

  Returns:
    (x (S, H, W), iterations run (int32), relative residual (S, 1, 1)).
  """
  r = b - apply_a(x0)
  z = inv_diagonal * r
  rz = _dot(r, z)
  ref = jnp.maximum(_dot(b, inv_diagonal * b), rz)
  threshold = jnp.square(tol) * ref
  active = rz > threshold

  def cond(state):
    i, _, _, _, _, active = state
    return (i < max_iters) & jnp.any(active)

  def body(state):
    i, x, r, p, rz, active = state
    ap = apply_a(p)
    pap = _dot(p, ap)
    alpha = jnp.where(active & (pap > 0), rz / jnp.where(pap > 0, pap, 1.0),
                      0.0)
    x = x + alpha * p
    r = r - alpha * ap
    z = inv_diagonal * r
    rz_new = _dot(r, z)
    beta = rz_new / jnp.where(rz > 0, rz, 1.0)
    p = jnp.where(active, z + beta * p, p)
    rz = jnp.where(active, rz_new, rz)
    return i + 1, x, r, p, rz, active & (rz > threshold)

  iters, x, _, _, rz, _ = jax.lax.while_loop(
      cond, body, (jnp.int32(0), x0, r, z, rz, active))
  return x, iters, jnp.sqrt(rz / jnp.maximum(ref, 1e-30))


@functools.partial(jax.jit, static_argnames=('max_iters',))
def _solve(generated, images, masks, tol, max_iters, initial=None):
  n, h, w, c = images.shape
  unknown_nhwc = jnp.broadcast_to(masks <= 0.5, (n, h, w, c))
  unknown = _to_systems(unknown_nhwc)
  generated = _to_systems(generated)
  start = generated if initial is None else _to_systems(initial)
  apply_a, b, degree = poisson_system(generated, _to_systems(images), unknown)
  x, iters, rel = preconditioned_cg(
      apply_a, b, unknown.astype(jnp.float32) * start, 1.0 / degree, tol,
      max_iters)
  x = _from_systems(x, c)
  return jnp.where(unknown_nhwc, x, images), iters, rel.reshape(n, c)


def solve_poisson(generated: jax.Array, images: jax.Array, masks: jax.Array,
                  *, max_iters: int = DEFAULT_MAX_ITERS,
                  tol: float = DEFAULT_TOL,
                  initial: jax.Array | None = None,
                  ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Poisson blending (Eq. 6) with solver diagnostics; see `poisson_blend`.

  Args:
    generated: G(z_hat), (N, H, W, C) in [-1, 1].
    images: inputs y, (N, H, W, C) in [-1, 1].
    masks: (N, H, W, 1), (H, W, 1) or (N, H, W, C) in {0, 1}, 1 = known.
    max_iters: maximum number of CG iterations.
    tol: relative residual tolerance per image and channel.
    initial: optional (N, H, W, C) starting point of CG in the hole (only its
      missing pixels are used), e.g. a coarser solution upsampled, which
      leaves CG far fewer iterations on large holes; by default G(z_hat).

  Returns:
    (blended, iterations, residual): blended (N, H, W, C) float32, unclipped;
    iterations, int32 scalar, the CG iterations run (the batch stops when its
    slowest system has converged); residual, float32 (N, C), the final
    recursive residual of each system in the D^-1 norm (D = pixel degree),
    relative to the larger of the right-hand side and the initial residual
    in that norm (what `tol` bounds).
  """
  generated, images, masks = _check_shapes(generated, images, masks)
  _check_mask_values(masks)
  if max_iters < 1:
    raise ValueError(f'max_iters={max_iters} must be >= 1.')
  if initial is not None:
    initial = jnp.asarray(initial, jnp.float32)
    if initial.shape != images.shape:
      raise ValueError(f'initial has shape {initial.shape}; expected the'
                       f' images\' {images.shape}.')
  return _solve(generated, images, masks, jnp.float32(tol), int(max_iters),
                initial)


def poisson_blend(generated: jax.Array, images: jax.Array, masks: jax.Array,
                  *, max_iters: int = DEFAULT_MAX_ITERS,
                  tol: float = DEFAULT_TOL, clip: bool = False) -> jax.Array:
  """Poisson blending of Eq. 6: G's gradients in the hole, y's colours around.

  Solves min_x ||grad x - grad G(z_hat)||^2 s.t. x_i = y_i where M_i = 1, per
  image and channel, with the 4-neighbour gradient on the edges inside the
  image (Neumann image border; see the module docstring). The solver is a
  jitted, batched, matrix-free conjugate gradient with Jacobi (degree)
  preconditioning, started from G(z_hat) in the hole; each (image, channel)
  system has its own CG step sizes and stops once its residual falls below
  `tol` times its right-hand side's norm (or initial residual, if larger;
  both in the D^-1 norm, D = pixel degree in {2, 3, 4}), so
  its result does not depend on the rest of the batch. Known pixels are
  returned exactly (bitwise) as in `images`; an all-known mask returns the
  image.

  Args:
    generated: G(z_hat), (N, H, W, C) in [-1, 1].
    images: inputs y, (N, H, W, C) in [-1, 1]; values at missing pixels are
      ignored.
    masks: (N, H, W, 1), (H, W, 1) or (N, H, W, C) in {0, 1}, 1 = known.
      Every image needs at least one known pixel (the problem has no anchor
      otherwise): checked, with the binary values, when masks are concrete.
    max_iters: maximum number of CG iterations.
    tol: relative residual tolerance per image and channel.
    clip: clip the result to [-1, 1]. Off by default: the exact solution can
      overshoot [-1, 1] slightly.

  Returns:
    float32 (N, H, W, C); in [-1, 1] if `clip`.
  """
  x, _, _ = solve_poisson(generated, images, masks, max_iters=max_iters,
                          tol=tol)
  return jnp.clip(x, -1.0, 1.0) if clip else x

"""Tests for inpaint_jax.blending."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from inpaint_jax import blending
from inpaint_jax import masks as masks_lib


def _reference(g, y, m):
  """Eq. 6 for one (H, W, C) image by a sparse direct solve in float64."""
  g = g.astype(np.float64)
  y = y.astype(np.float64)
  h, w, c = g.shape
  unknown = m[..., 0] < 0.5
  idx = -np.ones((h, w), int)
  idx[unknown] = np.arange(unknown.sum())
  rows, cols, vals = [], [], []
  b = np.zeros((unknown.sum(), c))
  for i, j in zip(*np.nonzero(unknown)):
    k = idx[i, j]
    for a, bb in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
      if not (0 <= a < h and 0 <= bb < w):
        continue
      rows.append(k), cols.append(k), vals.append(1.0)
      b[k] += g[i, j] - g[a, bb]
      if unknown[a, bb]:
        rows.append(k), cols.append(idx[a, bb]), vals.append(-1.0)
      else:
        b[k] += y[a, bb]
  n = unknown.sum()
  a_mat = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
  x = y.copy()
  sol = scipy.sparse.linalg.spsolve(a_mat.tocsc(), b)
  x[unknown] = sol.reshape(n, c)
  return x


def _smooth(rng, shape, offset=0.0):
  x = rng.uniform(-1, 1, shape)
  for ax in (1, 2):
    x = (x + np.roll(x, 1, ax) + np.roll(x, -1, ax)) / 3
  return (x + offset).astype(np.float32)


def _test_masks():
  s = 16
  m = np.ones((4, s, s, 1), np.float32)
  m[0] = np.asarray(masks_lib.center(1, s))[0]
  m[1] = np.asarray(masks_lib.random_pixels(jax.random.PRNGKey(0), 1, s))[0]
  m[2, :, :7] = 0  # hole touching the left, top and bottom border
  m[3] = np.asarray(masks_lib.pattern(jax.random.PRNGKey(1), 1, s))[0]
  return m


def test_matches_sparse_direct_solve():
  rng = np.random.default_rng(0)
  m = _test_masks()
  y = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  g = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  x, iters, rel = blending.solve_poisson(g, y, m)
  assert x.shape == y.shape and x.dtype == np.float32
  assert int(iters) < blending.DEFAULT_MAX_ITERS
  assert np.all(np.asarray(rel) <= 1e-6)
  for k in range(4):
    want = _reference(g[k], y[k], m[k])
    assert np.max(np.abs(np.asarray(x[k], np.float64) - want)) < 1e-4


def test_known_pixels_bitwise_unchanged():
  rng = np.random.default_rng(1)
  m = _test_masks()
  y = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  g = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  x = np.asarray(blending.poisson_blend(g, y, m))
  known = np.broadcast_to(m > 0.5, x.shape)
  np.testing.assert_array_equal(x[known], y[known])
  clipped = np.asarray(blending.poisson_blend(g, y, m, clip=True))
  assert clipped.min() >= -1 and clipped.max() <= 1
  np.testing.assert_array_equal(clipped[known], y[known])


def test_recovers_image_from_shifted_gradients():
  rng = np.random.default_rng(2)
  y = _smooth(rng, (2, 16, 16, 3))
  g = y + np.array([0.3, -0.2, 0.5], np.float32)
  m = np.ones((2, 16, 16, 1), np.float32)
  m[:, 4:12, 3:13] = 0
  x = blending.poisson_blend(g, y, m)
  np.testing.assert_allclose(x, y, atol=1e-5)


def test_all_known_returns_image_and_overlay():
  rng = np.random.default_rng(3)
  y = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  g = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  ones = np.ones((2, 8, 8, 1), np.float32)
  np.testing.assert_array_equal(blending.poisson_blend(g, y, ones), y)
  m = np.asarray(masks_lib.center(2, 8))
  want = np.where(m > 0.5, y, g)
  np.testing.assert_array_equal(blending.overlay(g, y, m), want)
  np.testing.assert_array_equal(blending.overlay(g, y, m[0]), want)


def test_batch_independence():
  rng = np.random.default_rng(4)
  m = _test_masks()
  y = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  g = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  together = np.asarray(blending.poisson_blend(g, y, m))
  for k in range(4):
    alone = np.asarray(blending.poisson_blend(g[k:k + 1], y[k:k + 1],
                                              m[k:k + 1]))
    np.testing.assert_allclose(together[k], alone[0], atol=1e-6)


def test_jittable():
  rng = np.random.default_rng(5)
  y = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  g = rng.uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  m = np.asarray(masks_lib.center(2, 8))
  f = jax.jit(blending.poisson_blend)
  np.testing.assert_allclose(f(g, y, m), blending.poisson_blend(g, y, m),
                             atol=1e-6)


def test_errors():
  y = np.zeros((2, 8, 8, 3), np.float32)
  m = np.ones((2, 8, 8, 1), np.float32)
  m[1] = 0
  with pytest.raises(ValueError, match='no known pixel'):
    blending.poisson_blend(y, y, m)
  with pytest.raises(ValueError, match='binary'):
    blending.poisson_blend(y, y, np.full((2, 8, 8, 1), 0.5, np.float32))
  with pytest.raises(ValueError, match='masks have shape'):
    blending.poisson_blend(y, y, np.ones((2, 4, 4, 1), np.float32))
  with pytest.raises(ValueError, match='must both be'):
    blending.poisson_blend(y, y[:1], np.ones((2, 8, 8, 1), np.float32))

"""Tests for inpaint_jax.losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import losses


def _brute_force_weights(mask, window):
  """Eq. 3 by a double loop; outside the image counts as known."""
  h, w = mask.shape
  r = window // 2
  out = np.zeros((h, w))
  for i in range(h):
    for j in range(w):
      if mask[i, j] == 0:
        continue
      missing = 0
      for di in range(-r, r + 1):
        for dj in range(-r, r + 1):
          a, b = i + di, j + dj
          if 0 <= a < h and 0 <= b < w:
            missing += 1 - mask[a, b]
      out[i, j] = missing / window**2
  return out


@pytest.mark.parametrize('h,w', [(9, 9), (12, 7), (16, 16)])
@pytest.mark.parametrize('window', [3, 7])
def test_importance_weights_brute_force(h, w, window):
  rng = np.random.default_rng(h * 100 + w + window)
  m = (rng.uniform(size=(3, h, w, 1)) > 0.3).astype(np.float32)
  m[0, :, :, 0] = 1
  m[0, :3, :4, 0] = 0  # hole touching the top-left border
  m[1, :, :, 0] = 1
  m[1, -2:, :, 0] = 0  # hole along the bottom border
  got = np.asarray(losses.importance_weights(jnp.asarray(m), window))
  assert got.shape == m.shape and got.dtype == np.float32
  for k in range(3):
    want = _brute_force_weights(m[k, :, :, 0], window)
    np.testing.assert_allclose(got[k, :, :, 0], want, atol=1e-6)
  assert np.all(got[m == 0] == 0)


def test_importance_weights_far_from_hole_is_zero():
  m = np.ones((1, 32, 32, 1), np.float32)
  m[0, 2:6, 2:6] = 0
  got = np.asarray(losses.importance_weights(m, 7))
  assert np.all(got[0, 10:, 10:] == 0)
  assert np.all(got[0, 2:6, 2:6] == 0)
  assert got[0, 6, 4, 0] > 0


def test_importance_weights_unbatched_and_errors():
  m = np.ones((8, 8, 1), np.float32)
  m[3:5, 3:5] = 0
  assert losses.importance_weights(m).shape == (8, 8, 1)
  with pytest.raises(ValueError, match='odd'):
    losses.importance_weights(m, 4)
  with pytest.raises(ValueError, match='shape'):
    losses.importance_weights(np.ones((2, 8, 8, 3)))


def test_importance_weights_jittable():
  m = np.ones((2, 8, 8, 1), np.float32)
  m[:, 3:5, 3:5] = 0
  f = jax.jit(losses.importance_weights, static_argnums=1)
  np.testing.assert_allclose(f(m, 3), losses.importance_weights(m, 3))


def test_context_loss_numpy():
  rng = np.random.default_rng(0)
  g = rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
  y = rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
  wts = rng.uniform(0, 1, (3, 8, 8, 1)).astype(np.float32)
  want = np.abs(wts * (g - y)).sum(axis=(1, 2, 3))
  got = losses.context_loss(g, y, wts)
  assert got.shape == (3,)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  with pytest.raises(ValueError):
    losses.context_loss(g, y, wts[:, :4])


def test_prior_loss():
  lam = 0.003
  mid = np.linspace(-5, 5, 11).astype(np.float32)
  want = lam * np.log(1 - 1 / (1 + np.exp(-mid.astype(np.float64))))
  np.testing.assert_allclose(losses.prior_loss(mid, lam), want, rtol=1e-5)
  ext = losses.prior_loss(np.array([[100.0], [-100.0]], np.float32), lam)
  assert ext.shape == (2,) and np.all(np.isfinite(ext))
  np.testing.assert_allclose(ext[0], -lam * 100, rtol=1e-6)
  assert -1e-30 < float(ext[1]) <= 0.0
  with pytest.raises(ValueError):
    losses.prior_loss(np.zeros((2, 2)))


def test_inpainting_loss_and_gradients():
  rng = np.random.default_rng(1)
  g = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 3)), jnp.float32)
  y = jnp.asarray(rng.uniform(-1, 1, (2, 8, 8, 3)), jnp.float32)
  m = np.ones((2, 8, 8, 1), np.float32)
  m[:, 2:6, 2:6] = 0
  wts = losses.importance_weights(m)
  logits = jnp.array([100.0, -100.0])
  loss = losses.inpainting_loss(g, y, wts, logits, 0.003)
  np.testing.assert_array_equal(loss.context, losses.context_loss(g, y, wts))
  np.testing.assert_array_equal(loss.prior, losses.prior_loss(logits, 0.003))
  np.testing.assert_allclose(loss.total, loss.context + loss.prior, rtol=1e-6)

  def f(g, logits):
    return jnp.sum(losses.inpainting_loss(g, y, wts, logits).total)

  dg, dl = jax.jit(jax.grad(f, argnums=(0, 1)))(g, logits)
  assert np.all(np.isfinite(dg)) and np.all(np.isfinite(dl))
  np.testing.assert_allclose(dl, [-0.003, 0.0], atol=1e-9)

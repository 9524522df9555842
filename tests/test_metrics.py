"""Tests for inpaint_jax.metrics."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from inpaint_jax import metrics


def _skimage_ssim(a, b):
  return structural_similarity(
      (a.astype(np.float64) + 1) / 2, (b.astype(np.float64) + 1) / 2,
      gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
      data_range=1.0, channel_axis=-1)


def test_psnr_known_values():
  a = np.zeros((2, 8, 8, 3), np.float32)
  b = a.copy()
  b[0] += 0.2  # offset 0.1 on [0, 1]: MSE 0.01 -> 20 dB
  b[1, :4] += 0.2  # half the pixels: MSE 0.005
  got = np.asarray(metrics.psnr(a, b))
  np.testing.assert_allclose(got, [20.0, 10 * np.log10(1 / 0.005)], rtol=1e-5)


def test_psnr_identical_is_inf():
  a = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)
  assert np.all(np.isposinf(metrics.psnr(a, a)))


@pytest.mark.parametrize('smooth', [False, True])
def test_ssim_matches_skimage(smooth):
  rng = np.random.default_rng(1)
  a = rng.uniform(-1, 1, (3, 24, 20, 3))
  if smooth:
    for ax in (1, 2):
      a = (a + np.roll(a, 1, ax) + np.roll(a, -1, ax)) / 3
  b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1)
  b[2] = -a[2]
  a = a.astype(np.float32)
  b = b.astype(np.float32)
  got = np.asarray(metrics.ssim(a, b))
  assert got.shape == (3,)
  want = [_skimage_ssim(a[k], b[k]) for k in range(3)]
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_ssim_identical_and_jit():
  a = np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  np.testing.assert_allclose(jax.jit(metrics.ssim)(a, a), [1.0, 1.0],
                             atol=1e-5)


def test_errors():
  a = np.zeros((1, 8, 8, 3), np.float32)
  with pytest.raises(ValueError, match='at least'):
    metrics.ssim(a, a)
  with pytest.raises(ValueError, match='same shape'):
    metrics.psnr(a, a[..., :1])


def test_metrics_inside_a_region_see_only_that_region():
  rng = np.random.default_rng(3)
  a = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  b = a.copy()
  region = np.zeros((2, 16, 16, 1), np.float32)
  region[:, 4:12, 4:12] = 1
  b[:, 4:12, 4:12] += 0.2  # errors only inside the region
  b = np.clip(b, -1, 1)
  inside = np.asarray(metrics.psnr_in(b, a, region))
  np.testing.assert_allclose(
      inside, [-10 * np.log10(np.mean(np.square(0.5 * (b[i, 4:12, 4:12]
                                                         - a[i, 4:12, 4:12]))))
               for i in range(2)], rtol=1e-5)
  assert np.all(inside < np.asarray(metrics.psnr(b, a)))  # hole only: worse
  assert np.all(np.asarray(metrics.ssim_in(a, a, region)) > 0.9999)
  assert np.all(np.asarray(metrics.ssim_in(b, a, region))
                < np.asarray(metrics.ssim(b, a)))


def test_confidence_interval():
  mean, half = metrics.confidence_interval([1.0, 2.0, 3.0, 4.0])
  assert mean == 2.5
  np.testing.assert_allclose(half, 1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)
  assert np.isnan(metrics.confidence_interval([3.0])[1])

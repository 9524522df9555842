"""Tests for inpaint_jax.baselines: the classical inpainting methods."""

import numpy as np
import pytest
import threadpoolctl

from inpaint_jax.baselines import classical
from inpaint_jax.baselines import opencv
from inpaint_jax.evaluation import evaluate
from inpaint_jax import masks as masks_lib
from inpaint_jax.baselines import patchmatch
def _smooth_images(n=2, size=32):
  yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0)
  image = np.stack([0.8 * yy - 0.4, 0.5 * xx - 0.2, 0.3 * (xx + yy) - 0.3],
                   axis=-1)
  return np.stack([image, image[::-1]]).astype(np.float32)[:n]


def test_tv_recovers_a_smooth_image_from_half_its_pixels():
  images = _smooth_images()
  rng = np.random.default_rng(0)
  masks = (rng.random(images.shape[:3] + (1,)) > 0.5).astype(np.float32)
  filled = np.asarray(classical.total_variation_inpaint(images * masks,
                                                        masks))
  known = np.broadcast_to(masks > 0.5, images.shape)
  np.testing.assert_array_equal(filled[known], images[known])
  # TV prefers no monotone fill to another, so a pixel deep in a run of
  # missing ones may be a little off the ramp; on average it is on it.
  error = np.abs(filled - images)
  assert error.mean() < 0.002 and error.max() < 0.08, (error.mean(),
                                                       error.max())


def test_tv_plugs_into_the_evaluation_and_beats_the_mean_fill():
  images = _smooth_images()
  masks = np.asarray(masks_lib.center(len(images), 32))
  result = evaluate.evaluate(classical.tv_method(iterations=300), images,
                             ['a', 'b'], masks, show_progress=False)
  assert result.method == 'tv'
  assert np.all(result.metrics['psnr'] > result.metrics['psnr_mean_fill'])


def test_lr_recovers_a_low_rank_image_from_half_its_pixels():
  rng = np.random.default_rng(1)
  low = np.einsum('nik,nkj->nij', rng.normal(size=(2, 32, 2)),
                  rng.normal(size=(2, 2, 32)))
  low = 0.8 * low / np.abs(low).max()
  images = np.stack([low, 0.5 * low, -low], axis=-1).astype(np.float32)
  masks = (rng.random((2, 32, 32, 1)) > 0.5).astype(np.float32)
  filled = np.asarray(classical.low_rank_inpaint(images * masks, masks))
  known = np.broadcast_to(masks > 0.5, images.shape)
  np.testing.assert_array_equal(filled[known], images[known])
  # A row or column with few known entries is less determined: a handful of
  # entries may be off; nearly all are close.
  error = np.abs(filled - images)
  assert error.mean() < 0.002 and np.percentile(error, 99) < 0.04, (
      error.mean(), np.percentile(error, 99))


def test_lr_runs_its_svds_on_one_blas_thread(monkeypatch):
  # OpenBLAS threads spin against XLA's: every BLAS loaded once the call has
  # run (jaxlib's LAPACK is SciPy's OpenBLAS) is limited to one thread while
  # the jitted soft-impute runs, and given back its threads after.
  seen = []

  def soft_impute(images, masks, iterations, final_threshold):
    del masks, iterations, final_threshold
    seen.append({lib['filepath']: lib['num_threads']
                 for lib in threadpoolctl.threadpool_info()
                 if lib['user_api'] == 'blas'})
    return images

  monkeypatch.setattr(classical, '_soft_impute', soft_impute)
  before = {lib['filepath']: lib['num_threads']
            for lib in threadpoolctl.threadpool_info()}
  classical.low_rank_inpaint(np.zeros((1, 4, 4, 3), np.float32),
                             np.ones((1, 4, 4, 1), np.float32))
  after = {lib['filepath']: lib['num_threads']
           for lib in threadpoolctl.threadpool_info()
           if lib['user_api'] == 'blas'}
  assert seen and set(seen[0]) >= set(after), (seen, after)
  assert set(seen[0].values()) == {1}, seen
  assert all(after[path] == n for path, n in before.items() if path in after)


def test_nn_finds_a_planted_exact_match():
  rng = np.random.default_rng(2)
  candidates = rng.integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
  images = candidates[[7, 31]].astype(np.float32) / 127.5 - 1.0
  masks = np.asarray(masks_lib.center(2, 16))
  filled, index = classical.nearest_neighbour_inpaint(
      images * masks, masks, candidates, chunk=16)
  np.testing.assert_array_equal(index, [7, 31])
  np.testing.assert_allclose(filled, images, atol=1e-6)


def _periodic_textures(n, size=64, period=8, seed=0):
  """(n, size, size, 3) textures of period `period` in y and x, random phase
  and colours; every `period` - 1 wide patch tells its phase."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size]
  images = []
  for _ in range(n):
    phase_y, phase_x = rng.integers(0, period, 2)
    a = 2 * np.pi * (yy + phase_y) / period
    b = 2 * np.pi * (xx + phase_x) / period
    colour = rng.uniform(-0.3, 0.3, (3, 3))
    images.append(np.stack([c[0] * np.sin(b) + c[1] * np.cos(a)
                            + c[2] * np.sin(a + b) for c in colour], -1))
  return np.stack(images).astype(np.float32)


def test_pm_fills_a_hole_in_a_periodic_texture_nearly_exactly():
  images = _periodic_textures(3)
  masks = np.ones((3, 64, 64, 1), np.float32)
  masks[:, 24:40, 24:40] = 0.0
  filled = patchmatch.patchmatch_inpaint(images * masks, masks, seed=1)
  assert filled.shape == images.shape and filled.dtype == np.float32
  known = np.broadcast_to(masks > 0.5, images.shape)
  np.testing.assert_array_equal(filled[known], images[known])
  error = np.abs(filled - images)[:, 24:40, 24:40]
  assert error.mean() < 0.02 and error.max() < 0.1, (error.mean(),
                                                     error.max())
  again = patchmatch.patchmatch_inpaint(images * masks, masks, seed=1)
  np.testing.assert_array_equal(again, filled)


def test_pm_plugs_into_the_evaluation_and_beats_the_mean_fill():
  images = _periodic_textures(2, size=32, seed=3)
  masks = np.asarray(masks_lib.center(len(images), 32))
  result = evaluate.evaluate(classical.pm_method(iterations=2), images,
                             ['a', 'b'], masks, show_progress=False)
  assert result.method == 'pm'
  assert np.all(result.metrics['psnr'] > result.metrics['psnr_mean_fill'])


@pytest.mark.parametrize('algorithm', opencv.ALGORITHMS)
def test_opencv_fills_a_smooth_hole_and_keeps_the_known_pixels(algorithm):
  images = _smooth_images()
  masks = np.asarray(masks_lib.center(len(images), 32))
  filled = opencv.opencv_inpaint(images, masks, algorithm)
  known = np.broadcast_to(masks > 0.5, images.shape)
  np.testing.assert_array_equal(filled[known], images[known])
  result = evaluate.evaluate(opencv.opencv_method(algorithm), images,
                             ['a', 'b'], masks, show_progress=False)
  assert result.method == f'opencv_{algorithm}'
  assert result.summary['algorithm'] == algorithm
  assert np.all(result.metrics['psnr'] > result.metrics['psnr_mean_fill'])


def test_opencv_missing_or_a_bad_algorithm_is_one_clear_error(monkeypatch):
  images = _smooth_images()
  masks = np.asarray(masks_lib.center(len(images), 32))
  with pytest.raises(ValueError, match='one of'):
    opencv.opencv_inpaint(images, masks, 'fast')
  monkeypatch.setattr(opencv, 'available', lambda: False)
  with pytest.raises(ValueError, match=r"pip install -e '\.\[opencv\]'"):
    opencv.opencv_method('telea')

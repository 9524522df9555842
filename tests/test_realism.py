"""Tests for inpaint_jax.realism (MS-SWD)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.ndimage

from inpaint_jax import realism
from inpaint_jax.errors import InputError

# Small settings: 32x32 images, levels 32, 16, 8.
SMALL = dict(patches_per_image=32, directions=64, repeats=2, min_resolution=8)


def _images(seed: int, n: int = 12, size: int = 32) -> np.ndarray:
  """Structured test images in [-0.6, 0.6]: smooth noise plus sharp boxes."""
  rng = np.random.default_rng(seed)
  x = scipy.ndimage.gaussian_filter(rng.normal(0, 1, (n, size, size, 3)),
                                    (0, 2, 2, 0))
  x /= np.abs(x).max()
  for k in range(n):
    for _ in range(3):
      r, c = rng.integers(0, size - 6, 2)
      x[k, r:r + rng.integers(3, 9), c:c + rng.integers(3, 9)] = (
          rng.uniform(-1, 1, 3))
  return (0.6 * x).astype(np.float32)


# A plain NumPy (float64) reference, written after the reference code's
# (tkarras/progressive_growing_of_gans metrics/sliced_wasserstein.py):
# scipy 2-D convolution with mirrored borders for the pyramid.

_KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def _np_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
  def conv(x, gain):
    return scipy.ndimage.convolve(x, _KERNEL[None, :, :, None] * gain,
                                  mode='mirror')
  pyramid = [images.astype(np.float64)]
  for _ in range(levels - 1):
    pyramid.append(conv(pyramid[-1], 1)[:, ::2, ::2])
    n, h, w, c = pyramid[-1].shape
    up = np.zeros((n, 2 * h, 2 * w, c))
    up[:, ::2, ::2] = pyramid[-1]
    pyramid[-2] = pyramid[-2] - conv(up, 4)
  return pyramid


def _np_descriptors(level, positions):
  out = []
  for k, image_positions in enumerate(positions):
    for r, c in image_positions:
      out.append(level[k, r - 3:r + 4, c - 3:c + 4].reshape(-1))
  return np.stack(out)


def _np_normalize(sets):
  views = [d.reshape(len(d), 49, 3) for d in sets]
  union = np.concatenate(views)
  return [((v - union.mean((0, 1))) / union.std((0, 1))).reshape(len(v), -1)
          for v in views]


def _np_ms_swd(a, b, plan, normalize):
  levels = len(plan.directions)
  out = {}
  for lod, (la, lb) in enumerate(zip(_np_pyramid(a, levels),
                                     _np_pyramid(b, levels))):
    da = _np_descriptors(la, np.asarray(plan.positions_a[lod]))
    db = _np_descriptors(lb, np.asarray(plan.positions_b[lod]))
    if normalize == 'joint':
      da, db = _np_normalize([da, db])
    else:
      (da,), (db,) = _np_normalize([da]), _np_normalize([db])
    dists = [np.mean(np.abs(np.sort(da @ d) - np.sort(db @ d)))
             for d in np.asarray(plan.directions[lod], np.float64)]
    out[f'swd_{a.shape[1] >> lod}'] = 1e3 * np.mean(dists)
  out['ms_swd'] = np.mean(list(out.values()))
  return out


@pytest.mark.parametrize('normalize', realism.NORMALIZATIONS)
@pytest.mark.parametrize('paired', [False, True])
def test_matches_numpy_reference(normalize, paired):
  a, b = _images(0, n=4), _images(1, n=4)
  plan = realism.sampling_plan(jax.random.PRNGKey(3), 4, 4, 32,
                               paired=paired, **SMALL)
  got = realism.ms_swd_with_plan(a, b, plan, normalize=normalize)
  want = _np_ms_swd(a, b, plan, normalize)
  assert list(got) == ['swd_32', 'swd_16', 'swd_8', 'ms_swd']
  assert all(isinstance(v, float) for v in got.values())
  np.testing.assert_allclose([got[k] for k in want], list(want.values()),
                             rtol=1e-4)
  # ms_swd draws its plan the same way from its key.
  assert realism.ms_swd(a, b, jax.random.PRNGKey(3), paired=paired,
                        normalize=normalize, **SMALL) == got


def test_pyramid_matches_scipy_and_reconstructs():
  a = _images(2, n=2)
  got = realism.laplacian_pyramid(a, 3)
  want = _np_pyramid(a, 3)
  assert [g.shape for g in got] == [(2, 32, 32, 3), (2, 16, 16, 3),
                                    (2, 8, 8, 3)]
  for g, w in zip(got, want):
    np.testing.assert_allclose(g, w, atol=1e-5)
  # Adding the bands back onto the up-sampled low-pass gives the image.
  image = got[-1]
  for band in got[-2::-1]:
    image = realism._pyr_up(image) + band
  np.testing.assert_allclose(image, a, atol=1e-5)


def test_sort_rows_numpy_and_xla_agree():
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 300))
  np.testing.assert_array_equal(
      jax.jit(lambda v: realism.sort_rows(v, use_numpy=True))(x),
      realism.sort_rows(x, use_numpy=False))


@pytest.mark.parametrize('normalize', realism.NORMALIZATIONS)
def test_identical_sets(normalize):
  a = _images(0)
  key = jax.random.PRNGKey(0)
  paired = realism.ms_swd(a, a.copy(), key, paired=True, normalize=normalize,
                          **SMALL)
  assert set(paired.values()) == {0.0}
  # Unpaired, only the sampling floor remains: far below another set's.
  floor = realism.ms_swd(a, a, key, normalize=normalize, **SMALL)['ms_swd']
  noise = np.random.default_rng(5).uniform(-1, 1, a.shape).astype(np.float32)
  other = realism.ms_swd(a, noise, key, normalize=normalize,
                         **SMALL)['ms_swd']
  assert 0 < floor < other / 2


def _shift(a, step):
  return a + np.float32(0.15 * step) * np.float32([1, 0.5, -1])


def _blur(a, step):
  return scipy.ndimage.gaussian_filter(a, (0, 0.6 * step, 0.6 * step, 0))


@pytest.mark.parametrize('paired', [False, True])
@pytest.mark.parametrize('change', [_shift, _blur])
def test_growing_change_grows_distance(change, paired):
  a = _images(0, n=24)
  key = jax.random.PRNGKey(1)
  dists = [realism.ms_swd(a, change(a, step).astype(np.float32), key,
                          paired=paired, **SMALL)
           for step in (1, 2, 3)]
  scores = [d['ms_swd'] for d in dists]
  assert scores[0] < scores[1] < scores[2], scores
  if change is _blur:  # Blur removes detail: the finest band sees it most.
    assert dists[0]['swd_32'] > dists[0]['swd_8']
  else:  # A colour shift lives in the low-pass level only.
    assert dists[2]['swd_8'] > 10 * dists[2]['swd_32']


def test_per_set_normalization_is_blind_to_colour_shift():
  a = _images(0)
  key = jax.random.PRNGKey(0)
  shifted = _shift(a, 3)
  per_set = realism.ms_swd(a, shifted, key, paired=True, normalize='per_set',
                           **SMALL)
  joint = realism.ms_swd(a, shifted, key, paired=True, **SMALL)
  assert per_set['ms_swd'] < 1e-2 < joint['ms_swd']


def test_seeded():
  a, b = _images(0), _images(1)
  first = realism.ms_swd(a, b, jax.random.PRNGKey(7), **SMALL)
  assert realism.ms_swd(a, b, jax.random.PRNGKey(7), **SMALL) == first
  assert realism.ms_swd(a, b, jax.random.PRNGKey(8), **SMALL) != first


def test_batches_and_blocks_give_the_same_distance(monkeypatch):
  a, b = _images(0, n=5), _images(1, n=5)
  key = jax.random.PRNGKey(2)
  whole = realism.ms_swd(a, b, key, **SMALL)
  # 2 images per pyramid batch (the last one padded), 32 projections a block.
  monkeypatch.setattr(realism, 'IMAGE_BATCH', 2)
  monkeypatch.setattr(realism, 'PROJECTION_BLOCK', 5 * 32 * 32)
  assert realism._block_size(128, 5 * 32) == 32
  chunked = realism.ms_swd(a, b, key, **SMALL)
  np.testing.assert_allclose(list(chunked.values()), list(whole.values()),
                             rtol=1e-5)


def _nan(a):
  a = a.copy()
  a[0, 0, 0, 0] = np.nan
  return a


@pytest.mark.parametrize('images_b,kwargs,match', [
    (lambda a: a[0], {}, r'shape \(32, 32, 3\); expected \(N, S, S, 3\)'),
    (lambda a: a[..., :2], {}, 'expected'),
    (lambda a: np.concatenate([a, a[..., :1]], -1), {}, 'expected'),
    (lambda a: a[:, :, :16], {}, 'square'),
    (lambda a: a[:, :24, :24], {}, 'power of 2'),
    (lambda a: a, {'min_resolution': 64}, '>= 64'),
    (lambda a: a[:, :16, :16], {}, 'same number and size'),
    (lambda a: a[:3], {}, 'same number and size'),
    (lambda a: a[:0], {}, 'N >= 1'),
    (_nan, {}, 'NaN'),
    (lambda a: ((a + 1) * 127.5).astype(np.uint8), {}, 'from_uint8'),
    (lambda a: a, {'min_resolution': 4}, 'min_resolution=4'),
    (lambda a: a, {'min_resolution': 12}, 'power of 2'),
    (lambda a: a, {'patches_per_image': 0}, 'patches_per_image=0'),
    (lambda a: a, {'directions': 2.5}, 'directions=2.5'),
    (lambda a: a, {'normalize': 'both'}, "normalize='both'"),
])
def test_bad_inputs_refused_before_any_work(images_b, kwargs, match,
                                            monkeypatch):
  def no_work(*args, **kwargs):
    raise AssertionError('work started before the inputs were checked')
  monkeypatch.setattr(realism, 'sampling_plan', no_work)
  monkeypatch.setattr(realism, 'descriptors', no_work)
  a = _images(0, n=4)
  with pytest.raises(InputError, match=match) as error:
    realism.ms_swd(a, images_b(a), jax.random.PRNGKey(0),
                   **{**SMALL, **kwargs})
  assert '\n' not in str(error.value)


def test_plan_must_fit_the_images():
  a = _images(0, n=4)
  plan = realism.sampling_plan(jax.random.PRNGKey(0), 3, 3, 32, **SMALL)
  with pytest.raises(InputError, match='plan'):
    realism.ms_swd_with_plan(a, a, plan)
  deep = realism.sampling_plan(jax.random.PRNGKey(0), 4, 4, 32,
                               **{**SMALL, 'min_resolution': 2})
  with pytest.raises(InputError, match='plan'):
    realism.ms_swd_with_plan(a, a, deep)


def test_levels_and_keys():
  assert realism.resolutions(64) == [64, 32, 16]
  assert realism.ms_swd_levels(64) == ['swd_64', 'swd_32', 'swd_16', 'ms_swd']

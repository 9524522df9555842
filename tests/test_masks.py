"""Tests for inpaint_jax.masks."""

from __future__ import annotations

import jax
import numpy as np
from PIL import Image
import pytest
import scipy.ndimage

from inpaint_jax import masks


def _key(seed=0):
  return jax.random.PRNGKey(seed)


@pytest.mark.parametrize('kind', masks.KINDS)
def test_shape_dtype_binary(kind):
  m = masks.make(kind, _key(), 5, 32)
  assert m.shape == (5, 32, 32, 1)
  assert m.dtype == np.float32
  assert set(np.unique(np.asarray(m))) <= {0.0, 1.0}


def test_center_exact():
  m = np.asarray(masks.center(3, 64))
  np.testing.assert_array_equal(masks.missing_fraction(m), [0.25] * 3)
  assert np.all(m[:, 16:48, 16:48] == 0)
  assert m.sum() == 3 * (64 * 64 - 32 * 32)


def test_random_fraction():
  m = masks.random_pixels(_key(), 8, 64)
  frac = np.asarray(masks.missing_fraction(m))
  assert np.all(np.abs(frac - 0.8) < 0.03)
  assert masks.random_pixels(_key(), 2, 16, missing=0.3).shape == (2, 16, 16, 1)


def test_half_fraction_and_orientations():
  m = np.asarray(masks.half(_key(), 200, 16))[..., 0]
  np.testing.assert_array_equal(masks.missing_fraction(m[..., None]), 0.5)
  sides = set()
  for x in m:
    if np.all(x[:, :8] == 0):
      sides.add('left')
    elif np.all(x[:, 8:] == 0):
      sides.add('right')
    elif np.all(x[:8] == 0):
      sides.add('top')
    elif np.all(x[8:] == 0):
      sides.add('bottom')
    else:
      pytest.fail('half mask is not a half')
  assert sides == {'left', 'right', 'top', 'bottom'}


def test_pattern_fraction_and_blobs():
  m = np.asarray(masks.pattern(_key(), 16, 64))
  frac = np.asarray(masks.missing_fraction(m))
  assert abs(frac.mean() - 0.25) < 0.05
  assert np.all((frac > 0.15) & (frac < 0.35))
  rand = np.asarray(masks.random_pixels(_key(1), 16, 64, missing=0.25))
  blobs = [scipy.ndimage.label(1 - x[..., 0])[1] for x in m]
  specks = [scipy.ndimage.label(1 - x[..., 0])[1] for x in rand]
  assert max(blobs) < 40
  assert np.mean(blobs) * 10 < np.mean(specks)


@pytest.mark.parametrize('kind', ['pattern', 'random', 'half'])
def test_deterministic_and_key_dependent(kind):
  a = masks.make(kind, _key(3), 8, 32)
  b = masks.make(kind, _key(3), 8, 32)
  c = masks.make(kind, _key(4), 8, 32)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


def test_make_unknown_kind():
  with pytest.raises(ValueError, match='center'):
    masks.make('square', _key(), 1)


def test_bad_sizes():
  with pytest.raises(ValueError):
    masks.center(0)
  with pytest.raises(ValueError):
    masks.pattern(_key(), 2, 1)


def test_from_file_round_trip(tmp_path):
  m = np.asarray(masks.pattern(_key(), 1, 32))[0]
  path = tmp_path / 'mask.png'
  Image.fromarray((m[..., 0] * 255).astype(np.uint8)).convert('RGB').save(path)
  loaded = masks.from_file(path, size=32)
  assert loaded.shape == (32, 32, 1) and loaded.dtype == np.float32
  np.testing.assert_array_equal(loaded, m)
  # Nearest resize of a 2x upsampled mask gives the mask back.
  big = np.kron(m[..., 0], np.ones((2, 2)))
  Image.fromarray((big * 255).astype(np.uint8)).save(path)
  np.testing.assert_array_equal(masks.from_file(path, size=32), m)
  # 0/1-valued grey images load the same.
  Image.fromarray(m[..., 0].astype(np.uint8)).save(path)
  np.testing.assert_array_equal(masks.from_file(path, size=32), m)


def test_from_file_errors(tmp_path):
  bad = tmp_path / 'bad.png'
  bad.write_bytes(b'not an image')
  with pytest.raises(ValueError, match='Cannot read'):
    masks.from_file(bad)
  with pytest.raises(ValueError, match='Cannot read'):
    masks.from_file(tmp_path / 'missing.png')
  white = tmp_path / 'white.png'
  Image.fromarray(np.full((8, 8), 255, np.uint8)).save(white)
  with pytest.raises(ValueError, match='no missing'):
    masks.from_file(white, size=8)
  black = tmp_path / 'black.png'
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(black)
  with pytest.raises(ValueError, match='no known'):
    masks.from_file(black, size=8)


def test_missing_fraction_shapes():
  m = masks.center(2, 8)
  assert masks.missing_fraction(m).shape == (2,)
  assert masks.missing_fraction(m[0]).shape == ()
  with pytest.raises(ValueError):
    masks.missing_fraction(np.ones((2, 8, 8, 3)))

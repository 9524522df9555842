"""Tests for inpaint_jax.images: conversions, grids, PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import images


def test_to_uint8_rounds_and_clips():
  x = np.array([-2.0, -1.0, -0.999, 0.0, 0.5, 1.0, 3.0], np.float32)
  np.testing.assert_array_equal(images.to_uint8(x),
                                [0, 0, 0, 128, 191, 255, 255])
  assert images.to_uint8(x).dtype == np.uint8
  every = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(images.to_uint8(images.from_uint8(every)),
                                every)


def _constant(n, value, h=3, w=5):
  return np.full((n, h, w, 3), value, np.float32)


def test_make_grid_puts_column_j_row_i_in_place():
  columns = [_constant(2, v) for v in (-1.0, -0.5, 0.0, 0.5)]
  columns[3][1] = 0.25  # Row 1 of the last column differs.
  grid = images.make_grid(columns, pad=1, pad_value=1.0)
  assert grid.shape == (2 * 4 + 1, 4 * 6 + 1, 3) and grid.dtype == np.float32
  for j, value in enumerate((-1.0, -0.5, 0.0, 0.5)):
    top, left = 1, 1 + j * 6
    assert np.all(grid[top:top + 3, left:left + 5] == value)
  assert np.all(grid[5:8, 19:24] == 0.25)
  assert np.all(grid[0] == 1.0) and np.all(grid[:, 0] == 1.0)
  with pytest.raises(ValueError, match='equal'):
    images.make_grid([_constant(2, 0.0), _constant(3, 0.0)])


def test_image_grid_fills_rows_first():
  tiles = np.stack([np.full((2, 2, 3), i / 10, np.float32) for i in range(5)])
  grid = images.image_grid(tiles, ncols=3, pad=2, pad_value=-1.0)
  assert grid.shape == (2 * 4 + 2, 3 * 4 + 2, 3)
  assert np.all(grid[2:4, 6:8] == 0.1)    # Image 1: row 0, column 1.
  assert np.all(grid[6:8, 2:4] == 0.3)    # Image 3: row 1, column 0.
  assert np.all(grid[6:8, 10:12] == -1.0)  # The empty sixth cell.
  assert images.image_grid(np.zeros((64, 4, 4, 3)), 8).shape == (50, 50, 3)


def test_save_png_and_load_image_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  image = images.from_uint8(rng.integers(0, 256, (16, 16, 3), np.uint8))
  path = str(tmp_path / 'sub' / 'x.png')
  images.save_png(path, image)
  np.testing.assert_array_equal(images.load_image(path, size=16), image)
  with Image.open(path) as saved:
    assert saved.mode == 'RGB' and saved.size == (16, 16)


def test_save_png_mask_is_grayscale(tmp_path):
  mask = np.zeros((8, 8, 1), np.float32)
  mask[:, 4:] = 1.0
  path = str(tmp_path / 'mask.png')
  images.save_png(path, 2 * mask - 1)
  with Image.open(path) as saved:
    assert saved.mode == 'L'
    np.testing.assert_array_equal(np.asarray(saved), mask[..., 0] * 255)
  with pytest.raises(ValueError, match='H, W'):
    images.save_png(path, np.zeros((8, 8)))


@pytest.mark.parametrize('mode,value', [('L', 77), ('RGBA', (10, 20, 30, 99)),
                                        ('P', 0), ('I;16', 0), ('CMYK', 0)])
def test_load_image_any_mode_becomes_rgb(tmp_path, mode, value):
  path = tmp_path / ('x.png' if mode != 'CMYK' else 'x.jpg')
  Image.new(mode, (40, 30), value).save(path)
  loaded = images.load_image(str(path), size=8)
  assert loaded.shape == (8, 8, 3) and loaded.dtype == np.float32
  assert -1 <= loaded.min() and loaded.max() <= 1
  if mode == 'L':
    np.testing.assert_allclose(loaded, 77 / 127.5 - 1, atol=1e-6)


def test_load_image_center_crop(tmp_path):
  wide = Image.new('RGB', (30, 10), (0, 0, 0))
  wide.paste((255, 255, 255), (10, 0, 20, 10))  # The central 10x10 is white.
  wide.save(tmp_path / 'wide.png')
  assert images.load_image(str(tmp_path / 'wide.png'), size=4).min() == 1.0


def test_load_image_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='missing.png'):
    images.load_image(str(tmp_path / 'missing.png'))
  (tmp_path / 'notes.png').write_text('not an image')
  with pytest.raises(ValueError, match='notes.png'):
    images.load_image(str(tmp_path / 'notes.png'))
  good = np.asarray(Image.new('RGB', (8, 8)))
  Image.fromarray(good).save(tmp_path / 'cut.jpg')
  data = (tmp_path / 'cut.jpg').read_bytes()
  (tmp_path / 'cut.jpg').write_bytes(data[:len(data) // 3])
  with pytest.raises(ValueError, match='cut.jpg'):
    images.load_image(str(tmp_path / 'cut.jpg'))


def test_masked_for_display():
  x = np.full((1, 2, 2, 3), 0.5, np.float32)
  m = np.array([1, 0, 0, 1], np.float32).reshape(1, 2, 2, 1)
  shown = images.masked_for_display(x, m)
  assert shown.shape == x.shape
  np.testing.assert_array_equal(shown[0, :, :, 0], [[0.5, -1.0], [-1.0, 0.5]])
  gray = images.masked_for_display(x, m, fill=0.0)
  assert gray[0, 0, 1, 0] == 0.0

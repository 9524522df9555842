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


def test_masked_for_display():
  x = np.full((1, 2, 2, 3), 0.5, np.float32)
  m = np.array([1, 0, 0, 1], np.float32).reshape(1, 2, 2, 1)
  shown = images.masked_for_display(x, m)
  assert shown.shape == x.shape
  np.testing.assert_array_equal(shown[0, :, :, 0], [[0.5, -1.0], [-1.0, 0.5]])
  gray = images.masked_for_display(x, m, fill=0.0)
  assert gray[0, 0, 1, 0] == 0.0


def test_line_plot_draws_each_series(tmp_path):
  path = str(tmp_path / 'plot.png')
  images.save_line_plot(path, {'a': [(0, 1.0), (10, 2.0)], 'b': [(5, 1.5)]},
                        x_label='step', y_label='dB')
  with Image.open(path) as plot:
    pixels = np.asarray(plot.convert('RGB'))
  assert pixels.shape == (400, 640, 3)
  blue = np.all(pixels == (31, 119, 180), axis=-1)
  red = np.all(pixels == (214, 39, 40), axis=-1)
  assert blue.sum() > 100 and red.sum() > 10  # a line and a dot (+ legend)
  with pytest.raises(ValueError):
    images.save_line_plot(path, {})

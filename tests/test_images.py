"""Tests for inpaint_jax.images: conversions, files and grids."""

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import images


def test_uint8_conversion_round_trips_and_clips():
  values = np.arange(256, dtype=np.uint8)
  np.testing.assert_array_equal(images.to_uint8(images.from_uint8(values)),
                                values)
  np.testing.assert_array_equal(images.to_uint8(np.array([-3.0, 3.0])),
                                [0, 255])


def test_save_png_writes_what_open_rgb_reads(tmp_path):
  picture = np.random.default_rng(0).uniform(-1, 1, (8, 6, 3))
  images.save_png(str(tmp_path / 'sub' / 'x.png'), picture)
  read = np.asarray(images.open_rgb(str(tmp_path / 'sub' / 'x.png')))
  np.testing.assert_array_equal(read, images.to_uint8(picture))
  images.save_png(str(tmp_path / 'm.png'), np.ones((4, 4, 1)))
  assert Image.open(tmp_path / 'm.png').mode == 'L'


def test_grids_place_images_in_rows_and_columns():
  a = np.full((2, 4, 4, 3), -1.0)
  b = np.full((2, 4, 4, 3), 0.5)
  grid = images.make_grid([a, b], pad=1)
  assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
  assert grid[1, 1, 0] == -1.0 and grid[1, 6, 0] == 0.5  # row 0: a | b
  assert grid[6, 1, 0] == -1.0 and grid[6, 6, 0] == 0.5  # row 1: a | b
  plain = images.image_grid(np.zeros((5, 4, 4, 3)), ncols=2, pad=1)
  assert plain.shape == (3 * 5 + 1, 2 * 5 + 1, 3)
  assert plain[11, 6, 0] == 1.0  # the empty sixth cell stays white


def test_masked_for_display_blackens_missing_pixels():
  picture = np.full((1, 2, 2, 3), 0.3)
  mask = np.array([[[[1], [0]], [[1], [1]]]], np.float32)
  shown = images.masked_for_display(picture, mask)
  assert shown[0, 0, 1, 0] == -1.0 and shown[0, 0, 0, 0] == pytest.approx(0.3)


def test_bad_files_get_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='No image file'):
    images.open_rgb(str(tmp_path / 'missing.png'))
  (tmp_path / 'bad.png').write_text('hello')
  with pytest.raises(ValueError, match='Cannot read'):
    images.open_rgb(str(tmp_path / 'bad.png'))

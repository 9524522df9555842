"""Tests for inpaint_jax.preprocessing: crops, resizing, image files."""

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import images as images_lib
from inpaint_jax import preprocessing
from inpaint_jax.errors import InputError


def test_celeba_crop_scales_with_the_image():
  full = Image.new('RGB', (178, 218))
  full.paste((255, 255, 255), (35, 55, 143, 163))  # the central 108x108
  out = preprocessing.preprocess(full, 'celeba', 16)
  assert out.shape == (16, 16, 3) and out.min() == 255


def test_cars_bounding_box_is_cropped():
  image = Image.new('RGB', (100, 50), (0, 0, 0))
  image.paste((255, 255, 255), (50, 0, 100, 50))  # right half white
  cropped = preprocessing.preprocess(image, 'cars', 16,
                                      bbox=np.array([0.0, 0.5, 1.0, 1.0],
                                                    np.float32))
  assert cropped.shape == (16, 16, 3) and cropped.min() == 255
  # Swapped or degenerate boxes still give an image.
  assert preprocessing.preprocess(image, 'cars', 8,
                                  bbox=[1, 1, 0, 0]).shape == (8, 8, 3)


# TFDS ----------------------------------------------------------------------

def test_save_png_and_load_image_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  image = images_lib.from_uint8(rng.integers(0, 256, (16, 16, 3), np.uint8))
  path = str(tmp_path / 'sub' / 'x.png')
  images_lib.save_png(path, image)
  np.testing.assert_array_equal(preprocessing.load_image(path, size=16), image)
  with Image.open(path) as saved:
    assert saved.mode == 'RGB' and saved.size == (16, 16)


@pytest.mark.parametrize('mode,value', [('L', 77), ('RGBA', (10, 20, 30, 99)),
                                        ('P', 0), ('I;16', 0), ('CMYK', 0)])
def test_load_image_any_mode_becomes_rgb(tmp_path, mode, value):
  path = tmp_path / ('x.png' if mode != 'CMYK' else 'x.jpg')
  Image.new(mode, (40, 30), value).save(path)
  loaded = preprocessing.load_image(str(path), size=8)
  assert loaded.shape == (8, 8, 3) and loaded.dtype == np.float32
  assert -1 <= loaded.min() and loaded.max() <= 1
  if mode == 'L':
    np.testing.assert_allclose(loaded, 77 / 127.5 - 1, atol=1e-6)


def test_load_image_center_crop(tmp_path):
  wide = Image.new('RGB', (30, 10), (0, 0, 0))
  wide.paste((255, 255, 255), (10, 0, 20, 10))  # The central 10x10 is white.
  wide.save(tmp_path / 'wide.png')
  assert preprocessing.load_image(str(tmp_path / 'wide.png'),
                                   size=4).min() == 1.0


def test_load_image_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='missing.png'):
    preprocessing.load_image(str(tmp_path / 'missing.png'))
  (tmp_path / 'notes.png').write_text('not an image')
  with pytest.raises(InputError, match='notes.png'):
    preprocessing.load_image(str(tmp_path / 'notes.png'))
  good = np.asarray(Image.new('RGB', (8, 8)))
  Image.fromarray(good).save(tmp_path / 'cut.jpg')
  data = (tmp_path / 'cut.jpg').read_bytes()
  (tmp_path / 'cut.jpg').write_bytes(data[:len(data) // 3])
  with pytest.raises(InputError, match='cut.jpg'):
    preprocessing.load_image(str(tmp_path / 'cut.jpg'))

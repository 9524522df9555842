"""Tests for inpaint_jax.preprocessing: crops, resizing, image files."""

import numpy as np
import pytest
from PIL import Image

from inpaint_jax.data import images as images_lib
from inpaint_jax.data import preprocessing
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


@pytest.mark.parametrize('mode,value,ext,expected', [
    ('L', 77, 'png', (77, 77, 77)),
    ('RGBA', (10, 20, 30, 255), 'png', (10, 20, 30)),
    ('RGBA', (10, 20, 30, 0), 'png', (255, 255, 255)),  # on white
    ('P', 0, 'png', (0, 0, 0)),
    ('I;16', 0, 'png', (0, 0, 0)),
    ('I;16', 32768, 'png', (128, 128, 128)),  # not clipped to white
    ('I;16', 65535, 'tif', (255, 255, 255)),
    ('I;16B', 2570, 'tif', (10, 10, 10)),
    ('F', 0.5, 'tif', (128, 128, 128)),
    ('CMYK', 0, 'jpg', (255, 255, 255)),
    ('CMYK', (0, 255, 255, 0), 'tif', (255, 0, 0)),
])
def test_load_image_any_mode_becomes_rgb(tmp_path, mode, value, ext,
                                         expected):
  path = tmp_path / f'x.{ext}'
  Image.new(mode, (40, 30), value).save(path)
  loaded = preprocessing.load_image(str(path), size=8)
  assert loaded.shape == (8, 8, 3) and loaded.dtype == np.float32
  np.testing.assert_allclose(
      loaded, np.broadcast_to(np.float32(expected) / 127.5 - 1, (8, 8, 3)),
      atol=1e-6)


def test_preprocess_scales_a_16_bit_image_in_memory():
  grey = Image.new('I;16', (20, 20), 32768)
  np.testing.assert_array_equal(preprocessing.preprocess(grey, 'center', 4),
                                np.full((4, 4, 3), 128, np.uint8))
  with pytest.raises(InputError, match='8-bit RGB'):
    preprocessing.preprocess(Image.new('F', (4, 4), 3.0), 'center', 4)


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
  Image.new('F', (8, 8), 300.0).save(tmp_path / 'float.tif')
  with pytest.raises(InputError, match=r'float.tif.*convert the file'):
    preprocessing.load_image(str(tmp_path / 'float.tif'))


def test_load_image_refuses_too_many_pixels(tmp_path, monkeypatch):
  Image.new('RGB', (30, 20)).save(tmp_path / 'big.jpg')
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 500)
  with pytest.raises(InputError, match=r'big.jpg.* 600 pixels.*resize'):
    preprocessing.load_image(str(tmp_path / 'big.jpg'))

"""Tests for inpaint_jax.images: conversions, grids, PNG files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from inpaint_jax import masks
from inpaint_jax.data import images
from inpaint_jax.errors import InputError, MissingInputError
from tests.conftest import png_claiming, truncated, upright_and_rotated


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


# Reading every mode -------------------------------------------------------


def _png16(path, values, colour_type):
  """Writes a 16-bit PNG by hand (Pillow writes 16-bit grey only)."""
  import struct
  import zlib
  h, w = values.shape[:2]
  rows = b''.join(b'\x00' + values[y].astype('>u2').tobytes()
                  for y in range(h))

  def chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

  header = struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0)
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
                   + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


# 16-bit grey: 0, 2570 (= 10 * 257), 32768 (~ half) and 65535.
_GREY16 = np.array([[0, 2570, 32768, 65535]], np.uint16)
_GREY16_AS_8 = [0, 10, 128, 255]


def _palette_image():
  image = Image.new('P', (3, 1))
  image.putpalette([0, 0, 0, 10, 20, 30, 200, 100, 50] + [0] * 759)
  image.putdata([0, 1, 2])
  return image


def _lab_red():
  from PIL import ImageCms
  to_lab = ImageCms.buildTransform(ImageCms.createProfile('sRGB'),
                                   ImageCms.createProfile('LAB'), 'RGB',
                                   'LAB')
  return ImageCms.applyTransform(Image.new('RGB', (2, 1), (255, 0, 0)),
                                 to_lab)


def _saved(make, ext, **save_kwargs):
  def build(path):
    path = path.with_suffix(ext)
    make().save(path, **save_kwargs)
    return path
  return build


def _raw16(values, colour_type):
  def build(path):
    path = path.with_suffix('.png')
    _png16(path, values, colour_type)
    return path
  return build


def _grey16(mode, ext):
  dtype = '>u2' if mode == 'I;16B' else '<u2'
  return _saved(lambda: Image.frombytes(mode, (4, 1),
                                        _GREY16.astype(dtype).tobytes()), ext)


# (case, how to write the file, the expected RGB row, tolerance). White
# stands for transparent: it is composited on white.
_MODE_CASES = [
    ('1', _saved(lambda: Image.fromarray(np.array([[0, 1]], bool)), '.png'),
     [[0] * 3, [255] * 3], 0),
    ('L', _saved(lambda: Image.fromarray(np.array([[0, 77, 255]], np.uint8)),
                 '.png'), [[0] * 3, [77] * 3, [255] * 3], 0),
    ('L with a transparent grey',
     _saved(lambda: Image.fromarray(np.array([[9, 77]], np.uint8)), '.png',
            transparency=9), [[255] * 3, [77] * 3], 0),
    ('LA', _saved(lambda: Image.fromarray(
        np.array([[[100, 255], [100, 0], [100, 128]]], np.uint8), 'LA'),
                  '.png'),
     [[100] * 3, [255] * 3, [177] * 3], 0),  # 255 - 155 * 128 / 255
    ('P', _saved(_palette_image, '.png'),
     [[0, 0, 0], [10, 20, 30], [200, 100, 50]], 0),
    ('P with a transparent index', _saved(_palette_image, '.png',
                                          transparency=1),
     [[0, 0, 0], [255, 255, 255], [200, 100, 50]], 0),
    ('P with palette alpha', _saved(_palette_image, '.png',
                                    transparency=bytes([255, 0, 128])),
     [[0, 0, 0], [255, 255, 255], [227, 177, 152]], 0),
    ('PA', _saved(lambda: _palette_image().convert('PA'), '.tif'),
     [[0, 0, 0], [10, 20, 30], [200, 100, 50]], 0),
    ('RGB', _saved(lambda: Image.fromarray(
        np.array([[[10, 20, 30], [250, 128, 0]]], np.uint8)), '.png'),
     [[10, 20, 30], [250, 128, 0]], 0),
    ('RGB with a transparent colour', _saved(lambda: Image.fromarray(
        np.array([[[10, 20, 30], [250, 128, 0]]], np.uint8)), '.png',
                                             transparency=(10, 20, 30)),
     [[255, 255, 255], [250, 128, 0]], 0),
    ('RGBA', _saved(lambda: Image.fromarray(np.array(
        [[[10, 20, 30, 255], [10, 20, 30, 0], [0, 100, 200, 128]]],
        np.uint8)), '.png'),
     [[10, 20, 30], [255, 255, 255], [127, 177, 227]], 0),
    ('CMYK JPEG', _saved(lambda: Image.new('CMYK', (8, 8), (0, 255, 255, 0)),
                         '.jpg', quality=100),
     [[255, 0, 0]], 2),
    ('CMYK TIFF', _saved(lambda: Image.new('CMYK', (2, 1), (0, 0, 0, 128)),
                         '.tif'), [[127, 127, 127]], 0),
    ('YCbCr', _saved(lambda: Image.new('RGB', (2, 1), (255, 0, 0)).convert(
        'YCbCr'), '.tif'), [[255, 0, 0]], 2),
    ('LAB', _saved(_lab_red, '.tif'), [[255, 0, 0]], 6),
    ('I;16 PNG', _grey16('I;16', '.png'), _GREY16_AS_8, 0),
    ('I;16 TIFF', _grey16('I;16', '.tif'), _GREY16_AS_8, 0),
    ('I;16B PNG', _grey16('I;16B', '.png'), _GREY16_AS_8, 0),
    ('I;16B TIFF', _grey16('I;16B', '.tif'), _GREY16_AS_8, 0),
    ('I;16L TIFF', _grey16('I;16L', '.tif'), _GREY16_AS_8, 0),
    ('16-bit grey PNG written by hand', _raw16(_GREY16, 0), _GREY16_AS_8, 0),
    ('16-bit RGB PNG',
     _raw16(np.array([[[65535, 32768, 1000]]], np.uint16), 2),
     [[255, 128, 3]], 1),
    ('16-bit grey + alpha PNG',
     _raw16(np.array([[[32768, 65535], [32768, 0]]], np.uint16), 4),
     [[128] * 3, [255] * 3], 1),
    ('I (32-bit integers in 0..65535)', _saved(lambda: Image.fromarray(
        _GREY16.astype(np.int32)), '.tif'), _GREY16_AS_8, 0),
    ('F (floats in [0, 1])', _saved(lambda: Image.fromarray(
        np.array([[0.0, 0.2, 0.5, 1.0]], np.float32)), '.tif'),
     [0, 51, 128, 255], 0),
]


@pytest.mark.parametrize('build,expected,tolerance',
                         [c[1:] for c in _MODE_CASES],
                         ids=[c[0] for c in _MODE_CASES])
def test_open_rgb_reads_every_mode_with_the_right_pixels(tmp_path, build,
                                                         expected, tolerance):
  path = build(tmp_path / 'image')
  loaded = np.asarray(images.open_rgb(str(path)), np.int16)
  assert loaded.dtype == np.int16 and loaded.shape[-1] == 3
  expected = np.asarray(expected, np.int16)
  if expected.ndim == 1:  # grey levels
    expected = np.repeat(expected[:, None], 3, axis=1)
  row = loaded[0, :len(expected)]
  assert np.abs(row - expected).max() <= tolerance, row


@pytest.mark.parametrize('mode,pixel,expected', [
    ('I;16N', 32768, (128, 128, 128)),   # Pillow cannot save I;16N.
    ('La', (100, 128), (227, 227, 227)),  # premultiplied: 100 + 127
    ('RGBa', (50, 0, 100, 128), (177, 127, 227)),
    ('HSV', (0, 255, 255), (255, 0, 0)),
    ('RGBX', (1, 2, 3, 0), (1, 2, 3)),
])
def test_to_rgb_of_modes_only_found_in_memory(mode, pixel, expected):
  image = (Image.frombytes(mode, (1, 1), np.uint16(pixel).tobytes())
           if mode == 'I;16N' else Image.new(mode, (1, 1), pixel))
  converted = images.to_rgb(image)
  assert converted.mode == 'RGB'
  np.testing.assert_allclose(converted.getpixel((0, 0)), expected, atol=1)


def test_to_rgb_of_a_palette_with_alpha():
  image = Image.new('P', (2, 1))
  image.putpalette([10, 20, 30, 0, 200, 100, 50, 255] + [0] * 1016, 'RGBA')
  image.putdata([0, 1])
  np.testing.assert_array_equal(np.asarray(images.to_rgb(image)),
                                [[[255, 255, 255], [200, 100, 50]]])


@pytest.mark.parametrize('values,match', [
    (np.array([[-1, 5]], np.int32), r'values -1\.\.5, outside'),
    (np.array([[0, 70000]], np.int32), r'values 0\.\.70000, outside'),
    (np.array([[0.0, 2.0]], np.float32), r'values 0\.\.2, outside \[0, 1\]'),
    (np.array([[-0.5, 0.5]], np.float32), r'outside \[0, 1\]'),
    (np.array([[0.0, np.nan]], np.float32), 'NaN or infinite'),
])
def test_integer_and_float_images_without_a_known_scale_are_refused(
    tmp_path, values, match):
  path = tmp_path / 'odd.tif'
  Image.fromarray(values).save(path)
  with pytest.raises(InputError, match=match) as error:
    images.open_rgb(str(path))
  message = str(error.value)
  assert 'odd.tif' in message and 'convert the file to 8-bit RGB' in message
  assert '\n' not in message


@pytest.mark.parametrize('side', [11, 20])  # over the limit, over twice it
def test_too_many_pixels_is_refused_before_decoding(tmp_path, monkeypatch,
                                                    side):
  path = tmp_path / 'big.png'
  Image.new('RGB', (side, 10)).save(path)
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
  decoded = []
  monkeypatch.setattr(ImageFile.ImageFile, 'load',
                      lambda self: decoded.append(self))
  with pytest.raises(InputError) as error:
    images.open_rgb(str(path))
  message = str(error.value)
  assert f'{side * 10} pixels' in message and '100-pixel limit' in message
  assert 'big.png' in message and 'resize the file' in message
  assert '\n' not in message and not decoded
  monkeypatch.undo()
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 10 * side)  # just fits
  assert images.open_rgb(str(path)).size == (side, 10)


# read_image: the one guarded reader of photos, mask files and uploads -------


def _upright_photo(height=12, width=20):
  """uint8 (H, W, 3): left half white, right half dark red."""
  photo = np.zeros((height, width, 3), np.uint8)
  photo[..., 0] = 120
  photo[:, :width // 2] = 255
  return photo


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_exif_rotated_photos_and_masks_are_read_upright(tmp_path, fmt):
  photo = _upright_photo()
  path = tmp_path / f'phone.{fmt.lower()}'
  path.write_bytes(upright_and_rotated(photo, fmt))
  loaded = np.asarray(images.open_rgb(str(path)), np.int16)
  assert loaded.shape == photo.shape
  assert np.abs(loaded - photo).max() <= 32  # JPEG's blur at the edge
  assert images.image_size(str(path)) == (20, 12)
  assert images.read_image(path.read_bytes()).size == (20, 12)  # upload
  mask = np.full((12, 20), 255, np.uint8)
  mask[3:9, 12:18] = 0
  path.write_bytes(upright_and_rotated(mask, fmt))
  known = masks.read_known(path)
  np.testing.assert_array_equal(known, mask > 127)


@pytest.mark.parametrize('fmt', ['JPEG', 'PNG'])
def test_truncated_photos_and_masks_are_refused_in_one_line(tmp_path, fmt):
  buffer = io.BytesIO()
  Image.fromarray(_upright_photo(64, 64)).save(buffer, format=fmt)
  path = tmp_path / f'cut.{fmt.lower()}'
  path.write_bytes(truncated(buffer.getvalue()))
  for read in (images.open_rgb, masks.read_known,
               lambda p: masks.from_file(p, 16)):
    with pytest.raises(InputError) as error:
      read(str(path))
    message = str(error.value)
    assert 'cut.' in message and 'truncated or damaged' in message
    assert 'again' in message and '\n' not in message
  with pytest.raises(InputError, match='truncated or damaged'):
    images.read_image(truncated(buffer.getvalue()), 'upload')


def test_decompression_bombs_are_refused_from_the_header(tmp_path,
                                                         monkeypatch):
  decoded = []
  monkeypatch.setattr(ImageFile.ImageFile, 'load',
                      lambda self: decoded.append(self))
  path = tmp_path / 'bomb.png'
  path.write_bytes(png_claiming(20000, 20000))  # 400 megapixels
  for read in (masks.read_known, lambda p: masks.from_file(p, 16),
               images.open_rgb, lambda p: images.image_size(p)):
    with pytest.raises(InputError) as error:
      read(str(path))
    message = str(error.value)
    assert 'bomb.png' in message and '400,000,000 pixels' in message
    assert f'{images.MAX_PIXELS:,}-pixel limit' in message
    assert 'resize the file' in message and '\n' not in message
  # Under Pillow's limit, over the one of the call: also before decoding.
  with pytest.raises(InputError, match=r'The upload has 3000x2000 = '
                     r'6,000,000 pixels, more than the 1,000,000-pixel'):
    images.read_image(png_claiming(3000, 2000), 'upload', max_pixels=10**6)
  assert not decoded


def test_read_image_refuses_what_is_not_an_image_file(tmp_path):
  (tmp_path / 'notes.png').write_text('not an image')
  with pytest.raises(InputError, match=r"Cannot read the mask image '.*"
                     r"notes.png': it is not an image file"):
    images.read_image(tmp_path / 'notes.png', 'mask image', mode='grey')
  with pytest.raises(InputError, match='is a folder'):
    images.read_image(tmp_path, 'photo')
  with pytest.raises(MissingInputError, match='no such file'):
    images.image_size(tmp_path / 'gone.jpg', 'photo')


@pytest.mark.parametrize('mode,pixels,expected', [
    ('1', np.array([[0, 1]], bool), [0, 255]),
    ('RGBA', np.array([[[0, 0, 0, 0], [200, 200, 200, 255]]], np.uint8),
     [0, 200]),  # alpha ignored, as masks have always been read
    ('I;16', np.array([[0, 40000]], np.uint16), [0, 40000]),  # kept
])
def test_read_image_grey_keeps_the_mask_rules(mode, pixels, expected):
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  grey = images.read_image(buffer.getvalue(), 'mask', mode='grey')
  np.testing.assert_array_equal(np.asarray(grey)[0], expected)

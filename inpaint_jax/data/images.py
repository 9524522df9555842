"""Image files and picture grids: [-1, 1] float arrays <-> PNG/JPEG files.

Images are float32 (H, W, 3) or (N, H, W, 3) arrays in [-1, 1]
(uint8 / 127.5 - 1); masks are (..., H, W, 1) with 1 = known pixel.

Every image a user hands in (photos, mask files, uploads) is read by
`read_image` (`image_size`, `open_rgb`: the same guards): pixel limit checked
from the header, EXIF orientation applied, truncated or damaged files refused,
each failure one InputError line. In RGB (`to_rgb`) every mode Pillow opens
becomes 8-bit RGB: 16-bit grey is scaled by its bit depth, transparent pixels
are composited on white, and what has no unambiguous 8-bit reading is
refused with an InputError.
"""

from __future__ import annotations

import io
import os
import re
import struct
from typing import Sequence, Union
import warnings
import zlib

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from inpaint_jax.errors import InputError, MissingInputError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
# Grey modes of 16 bits per pixel (Pillow's 16-bit PNG and TIFF grey).
_SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N')
# Modes with an alpha channel (La and RGBa: premultiplied).
_ALPHA_MODES = ('LA', 'La', 'PA', 'RGBA', 'RGBa')
_TO_8_BIT = 'convert the file to 8-bit RGB (e.g. a PNG or JPEG).'
# Grey modes a mask file is read in as they are (any other: converted to L).
_GREY_MODES = ('L', 'I', 'I;16', 'F')
# The most pixels an image handed in may have: a 48-megapixel phone photo
# fits, a decompression bomb does not (PIL.Image.MAX_IMAGE_PIXELS applies
# too where it is lower).
MAX_PIXELS = 50_000_000
# A file path, or the bytes of an uploaded file.
ImageSource = Union[str, os.PathLike, bytes]


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats (any shape) -> uint8 in [0, 255], rounded and clipped."""
  scaled = (np.asarray(images, np.float32) + 1.0) * 127.5
  return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 in [0, 255] -> float32 in [-1, 1]."""
  return np.asarray(images, np.float32) / 127.5 - 1.0


def _describe(name: str | None) -> str:
  return 'The image' if name is None else f'The image {name!r}'


def _rounded_uint8(values: np.ndarray) -> np.ndarray:
  return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _grey_to_rgb(grey: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
  """(H, W) uint8 grey and optional (H, W) 0..255 alpha -> RGB on white."""
  return _composite_on_white(np.repeat(grey[..., None], 3, axis=-1), alpha)


def _composite_on_white(rgb: np.ndarray,
                        alpha: np.ndarray | None) -> Image.Image:
  """(H, W, 3) 0..255 colours over white with (H, W) 0..255 opacity."""
  if alpha is not None:
    opacity = np.asarray(alpha, np.float64)[..., None] / 255.0
    rgb = 255.0 - (255.0 - np.asarray(rgb, np.float64)) * opacity
  return Image.fromarray(_rounded_uint8(rgb), 'RGB')


def _high_bit_depth_to_rgb(image: Image.Image, what: str) -> Image.Image:
  """Grey I;16* (0..65535) and I (32-bit, read as 16-bit) -> 8-bit RGB."""
  values = np.asarray(image).astype(np.int64)
  if image.mode == 'I' and values.size and (values.min() < 0 or
                                            values.max() > 65535):
    raise InputError(
        f'{what} is a 32-bit integer image with values {values.min()}..'
        f'{values.max()}, outside the 16-bit range 0..65535, so its'
        f' brightness scale is unknown; {_TO_8_BIT}')
  key = image.info.get('transparency')
  alpha = (np.where(values == key, 0, 255)
           if isinstance(key, int) and not isinstance(key, bool) else None)
  return _grey_to_rgb(_rounded_uint8(values / 257.0), alpha)


def _float_to_rgb(image: Image.Image, what: str) -> Image.Image:
  """F (32-bit float) in [0, 1] -> 8-bit RGB (x 255)."""
  values = np.asarray(image).astype(np.float64)
  if not np.all(np.isfinite(values)):
    raise InputError(f'{what} is a floating-point image with NaN or infinite'
                     f' values; {_TO_8_BIT}')
  if values.size and (values.min() < 0.0 or values.max() > 1.0):
    raise InputError(
        f'{what} is a floating-point image with values {values.min():g}..'
        f'{values.max():g}, outside [0, 1], so its brightness scale is'
        f' unknown; {_TO_8_BIT}')
  return _grey_to_rgb(_rounded_uint8(values * 255.0), None)


def to_rgb(image: Image.Image, name: str | None = None) -> Image.Image:
  """Any PIL image -> 8-bit RGB PIL image, with the pixels a viewer shows.

  * 1, L, P, RGB, RGBX, CMYK, YCbCr, LAB, HSV: Pillow's conversion.
  * 16-bit grey (I;16, I;16L, I;16B, I;16N): value / 257 (65535 -> 255,
    32768 -> 128), not Pillow's conversion, which clips everything above 255
    to white. 16-bit colour PNGs open as 8-bit RGB(A) already.
  * I (32-bit integers, e.g. a 16-bit PNG in older Pillow): read as 16-bit
    (value / 257) when every value lies in 0..65535; else refused.
  * F (32-bit float): value * 255 when every value lies in [0, 1]; else
    (other ranges, NaN, infinity) refused.
  * Transparency (LA, La, PA, RGBA, RGBa, and P, L, RGB or 16-bit grey with a
    transparent colour, or P with palette alpha): composited on white, as a
    viewer shows it on a white page; a fully transparent pixel becomes white
    whatever colour it hides. (Alpha is not dropped: that would show colours
    the file hides, often black.)

  Args:
    image: the PIL image (any size and mode).
    name: the file, named in error messages.

  Raises:
    InputError: a mode or value range with no unambiguous 8-bit reading; the
      message says to convert the file to 8-bit RGB.
  """
  what = _describe(name)
  mode = image.mode
  if mode in _SIXTEEN_BIT_MODES or mode == 'I':
    return _high_bit_depth_to_rgb(image, what)
  if mode == 'F':
    return _float_to_rgb(image, what)
  palette_alpha = (mode == 'P' and image.palette is not None
                   and image.palette.mode == 'RGBA')
  try:
    if mode in _ALPHA_MODES or palette_alpha or 'transparency' in image.info:
      if mode == 'La':
        image = image.convert('LA')
      rgba = np.asarray(image.convert('RGBA'))
      return _composite_on_white(rgba[..., :3], rgba[..., 3])
    return image.convert('RGB')
  except ValueError as e:  # Pillow: "conversion from X to Y not supported".
    if isinstance(e, InputError):
      raise
    raise InputError(f'{what} has the mode {mode!r}, which cannot be'
                     f' converted to RGB ({e}); {_TO_8_BIT}') from None


def _source_name(source: ImageSource) -> str | None:
  return None if isinstance(source, bytes) else os.fspath(source)


def _refusal(source: ImageSource, what: str, problem: str,
             fix: str) -> InputError:
  """The one-line error naming the file (or the upload), problem and fix."""
  name = _source_name(source)
  if name is None:
    return InputError(f'The {what} cannot be read as an image: {problem};'
                      f' {fix}')
  return InputError(f'Cannot read the {what} {name!r}: {problem}; {fix}')


def _limit(max_pixels: int) -> int:
  """`max_pixels`, or Pillow's own bomb limit where that is lower."""
  pillow = Image.MAX_IMAGE_PIXELS
  return max_pixels if pillow is None else min(max_pixels, int(pillow))


def _too_many_pixels(source: ImageSource, what: str, pixels: str,
                     limit: int) -> InputError:
  name = _source_name(source)
  subject = f'The {what}' + ('' if name is None else f' {name!r}')
  return InputError(
      f'{subject} has {pixels}, more than the {limit:,}-pixel limit (a guard'
      ' against decompression bombs); resize the file (e.g. to 2000 pixels'
      ' wide) first.')


def _pillow_error(error: Exception) -> str:
  """`Class: message` of a Pillow error, on one short line."""
  text = ' '.join(str(error).split())
  if isinstance(error, UnidentifiedImageError) or not text:
    return error.__class__.__name__  # Its message only repeats the file.
  return f'{error.__class__.__name__}: {text[:100]}'


# What Pillow raises for a file of a known format with cut or broken data.
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError, struct.error,
            zlib.error)


def _damaged(source: ImageSource, what: str, error: Exception) -> InputError:
  return _refusal(source, what,
                  f'it is truncated or damaged ({_pillow_error(error)})',
                  'save, copy or download the file again.')


def _decode(source: ImageSource, what: str, max_pixels: int,
            decode: bool) -> Image.Image | tuple[int, int]:
  """The guarded core of `read_image` and `image_size` (see them)."""
  name = _source_name(source)
  if name is not None and not os.path.isfile(name):
    if os.path.isdir(name):
      raise _refusal(source, what, 'it is a folder',
                     'give the path of an image file.')
    raise MissingInputError(f'Cannot read the {what} {name!r}: there is no'
                            ' such file; check the path.')
  limit = _limit(max_pixels)
  try:
    with warnings.catch_warnings():
      # Pillow warns above MAX_IMAGE_PIXELS (and raises above twice that)
      # while reading the header: both are refused, before any decoding.
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      opened = Image.open(io.BytesIO(source) if name is None else name)
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    found = re.search(r'\((\d+) pixels\)', str(e))
    pixels = f'{int(found.group(1)):,} pixels' if found else 'too many pixels'
    raise _too_many_pixels(source, what, pixels, limit) from None
  except PermissionError:
    raise _refusal(source, what, 'permission denied',
                   'make the file readable (chmod) first.') from None
  except UnidentifiedImageError as e:
    raise _refusal(source, what, f'it is not an image file Pillow can read'
                   f' ({_pillow_error(e)})', 'use a JPEG or PNG file.'
                   ) from None
  except _DAMAGED as e:  # A known format whose header is cut or broken.
    raise _damaged(source, what, e) from None
  with opened as image:
    width, height = image.size
    if width * height > limit:
      raise _too_many_pixels(source, what,
                             f'{width}x{height} = {width * height:,} pixels',
                             limit)
    try:
      if not decode:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        return (height, width) if orientation in (5, 6, 7, 8) else (width,
                                                                   height)
      image.load()  # Truncated or damaged data fails here, never silently.
      ImageOps.exif_transpose(image, in_place=True)
      return image
    except Image.DecompressionBombError:  # A frame larger than the header.
      raise _too_many_pixels(source, what, 'too many pixels', limit) from None
    except _DAMAGED as e:
      raise _damaged(source, what, e) from None


def read_image(source: ImageSource, what: str = 'image', *,
               mode: str | None = 'RGB',
               max_pixels: int = MAX_PIXELS) -> Image.Image:
  """The one reader of images handed in: photos, mask files, uploads.

  Guards, each failure an InputError of one line naming the file (or, for
  bytes, `what`) and the fix: a missing path (MissingInputError) or a folder;
  a file Pillow cannot identify; more than `max_pixels` pixels (or Pillow's
  PIL.Image.MAX_IMAGE_PIXELS where lower), refused from the header before
  any decoding; truncated or damaged data (never decoded leniently:
  ImageFile.LOAD_TRUNCATED_IMAGES is not set). The EXIF orientation is
  applied (`ImageOps.exif_transpose`), so a phone photo is upright as a
  viewer shows it, and a mask drawn on it has the same orientation.

  Args:
    source: a file path, or the bytes of an uploaded file.
    what: what the image is, for messages, e.g. 'photo' or 'mask image'.
    mode: 'RGB': 8-bit RGB as `to_rgb` (grey, palette, 16-bit, float;
      transparency on white). 'grey': grey levels as mask files are read,
      i.e. L, I, I;16 and F as they are and any other mode converted to L
      (alpha ignored). None: as decoded.
    max_pixels: the largest width x height taken.

  Returns:
    The decoded, upright PIL image.
  """
  if mode not in ('RGB', 'grey', None):
    raise ValueError(f"mode={mode!r}; use 'RGB', 'grey' or None.")
  image = _decode(source, what, max_pixels, decode=True)
  if mode == 'RGB':
    return to_rgb(image, _source_name(source))
  if mode == 'grey' and image.mode not in _GREY_MODES:
    try:
      return image.convert('L')
    except ValueError:  # Pillow: "conversion from X to L not supported".
      raise _refusal(source, what, f'its mode {image.mode!r} has no grey'
                     ' levels', 'save it as an 8-bit grey or RGB PNG.'
                     ) from None
  return image


def image_size(source: ImageSource, what: str = 'image', *,
               max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
  """(width, height) of an image as `read_image` gives it (EXIF-upright).

  Read from the header (JPEG) where it can be, else by decoding (a PNG's
  EXIF block may follow its pixels); the same guards and errors as
  `read_image`.
  """
  return _decode(source, what, max_pixels, decode=False)


def open_rgb(path: str | os.PathLike, what: str = 'image') -> Image.Image:
  """An image file as an upright 8-bit RGB PIL image: `read_image(path)`."""
  return read_image(path, what)


def save_png(path: str, image: np.ndarray) -> None:
  """Writes one image in [-1, 1] as PNG, making missing folders.

  (H, W, 3) is written as RGB, (H, W, 1) (e.g. a mask in [-1, 1]; a {0, 1}
  mask m is best written as 2 * m - 1) as 8-bit grayscale. Values are rounded
  and clipped as in `to_uint8`.
  """
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f'save_png needs (H, W, 1|3), got {image.shape}.')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  pixels = to_uint8(image)
  if pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  Image.fromarray(pixels).save(path, format='PNG')


def image_grid(images: np.ndarray, ncols: int, pad: int = 2,
               pad_value: float = 1.0) -> np.ndarray:
  """A plain grid, e.g. 8x8 samples: (N, H, W, C) in [-1, 1] -> one image.

  The result is float32 (rows*(H+pad)+pad, ncols*(W+pad)+pad, C) with
  rows = ceil(N / ncols). Images fill the grid row by row; padding and empty
  cells are `pad_value` (1.0 = white).
  """
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or ncols < 1:
    raise ValueError(f'image_grid needs (N, H, W, C) images and ncols >= 1,'
                     f' got {images.shape} and ncols={ncols}.')
  n, h, w, c = images.shape
  rows = -(-n // ncols)
  grid = np.full((rows * (h + pad) + pad, ncols * (w + pad) + pad, c),
                 pad_value, np.float32)
  for i in range(n):
    r, col = divmod(i, ncols)
    top, left = pad + r * (h + pad), pad + col * (w + pad)
    grid[top:top + h, left:left + w] = images[i]
  return grid


def make_grid(columns: Sequence[np.ndarray], pad: int = 2,
              pad_value: float = 1.0) -> np.ndarray:
  """Side-by-side comparison: the cell in row i, column j is columns[j][i].

  E.g. make_grid([masked, generated, blended, original]) gives N rows, one
  per image, each showing those four pictures left to right. All arrays are
  (N, H, W, C) in [-1, 1]; the result is float32
  (N*(H+pad)+pad, K*(W+pad)+pad, C) for K columns, padding `pad_value`.
  """
  shapes = {np.shape(c) for c in columns}
  if len(shapes) != 1 or len(next(iter(shapes))) != 4:
    raise ValueError(f'make_grid needs equal (N, H, W, C) arrays, got'
                     f' {[np.shape(c) for c in columns]}.')
  stacked = np.stack([np.asarray(c, np.float32) for c in columns], axis=1)
  n, k = stacked.shape[:2]
  return image_grid(stacked.reshape((n * k,) + stacked.shape[2:]), k, pad,
                    pad_value)


def masked_for_display(images: np.ndarray, masks: np.ndarray,
                       fill: float = -1.0) -> np.ndarray:
  """Images with the missing pixels painted `fill`, for display in grids.

  images (N, H, W, C) in [-1, 1], masks (N, H, W, 1) (or broadcastable) with
  1 = known, 0 = missing. fill=-1.0 paints them black (0.0 would be mid
  gray). Returns float32 of the images' shape.
  """
  masks = np.asarray(masks, np.float32)
  return np.asarray(images, np.float32) * masks + fill * (1.0 - masks)

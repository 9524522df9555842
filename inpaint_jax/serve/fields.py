"""A request's fields decoded and checked, and PNGs for the replies.

Every check raises `errors.InputError` with a one-line message saying what
is wrong and how to fix it (the page shows it as is).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import jax
import numpy as np
from PIL import Image

from inpaint_jax import masks as masks_lib
from inpaint_jax.data import images as images_lib
from inpaint_jax.data import preprocessing
from inpaint_jax.errors import InputError

CROPS = ('center', 'celeba')  # What fullsize.model_view takes.
MAX_PIXELS = 25_000_000  # An uploaded photo's limit (a 5000 x 5000 image).
# How error lines name the two uploads (their request fields).
_PHOTO = 'uploaded photo ("image")'
_MASK = 'uploaded mask ("mask")'


# Images and masks in, PNGs out ---------------------------------------------


def png_bytes(pixels: np.ndarray) -> bytes:
  """uint8 (H, W, 3) RGB or (H, W) grey -> PNG file bytes."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def data_url(png: bytes) -> str:
  """PNG bytes -> a 'data:image/png;base64,...' URL for an <img> src."""
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def decode_data_url(value: Any, what: str) -> bytes:
  """The bytes of a 'data:...;base64,...' URL (or of plain base64 text)."""
  if not isinstance(value, str) or not value:
    raise InputError(f'No {what} was sent: upload an image file (or pick a'
                     ' test image) first.')
  text = value.split(',', 1)[1] if value.startswith('data:') else value
  try:
    return base64.b64decode(text, validate=True)
  except (binascii.Error, ValueError):
    raise InputError(f'The {what} is not valid base64 data; send it as a'
                     ' data: URL (what FileReader.readAsDataURL gives).'
                     ) from None


def decode_photo(data: bytes) -> np.ndarray:
  """Uploaded image file bytes -> uint8 (H, W, 3) RGB as a browser shows it.

  Read by `images.read_image` (at most MAX_PIXELS pixels; bombs, damaged
  and truncated files refused in one line): EXIF orientation is applied
  (browsers do, so the mask drawn on the page has the same orientation);
  modes and transparency as `images.to_rgb`.
  """
  image = images_lib.read_image(data, _PHOTO, max_pixels=MAX_PIXELS)
  return np.asarray(image, np.uint8)


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
  """A mask PNG (white = known, black = hole) -> (H, W) bool, True = known.

  Read by `images.read_image` as mask files are (grey levels, EXIF
  orientation applied); a pixel is known if its grey level is above half the
  image's brightest (as `masks.from_file`). The mask must be drawn at the
  photo's size `shape` (H, W) and have both a hole and known pixels.
  """
  image = images_lib.read_image(data, _MASK, mode='grey',
                                max_pixels=MAX_PIXELS)
  grey = np.asarray(image, np.float32)
  if grey.shape != tuple(shape):
    raise InputError(
        f'The mask is {grey.shape[1]}x{grey.shape[0]} pixels but the photo'
        f' is {shape[1]}x{shape[0]}; draw the mask on this photo (press'
        ' Clear and draw again).')
  known = 2.0 * grey > grey.max()
  if known.all():
    raise InputError('The mask has no hole: paint the part to fill in with'
                     ' the brush, or choose a mask kind.')
  if not known.any():
    raise InputError('The mask covers the whole photo: nothing is left to'
                     ' condition on; leave some of it unpainted.')
  return known


def masked_view(view: np.ndarray, view_mask: np.ndarray) -> np.ndarray:
  """uint8 (S, S, 3) of the view (S, S, 3) in [-1, 1], the hole black."""
  return images_lib.to_uint8(
      images_lib.masked_for_display(view, view_mask))


# Settings ------------------------------------------------------------------


def shown(value: Any, most: int = 40) -> str:
  """repr(value) cut to `most` characters, for an error line."""
  text = repr(value)
  return text if len(text) <= most else text[:most - 3] + '...'


def _number(value: Any, name: str) -> float:
  if isinstance(value, bool) or value is None:
    number = math.nan
  elif isinstance(value, (int, float)):
    try:
      number = float(value)
    except OverflowError:  # An int past 1e308.
      number = math.inf
  elif isinstance(value, str):
    try:
      number = float(value.strip())
    except ValueError:
      number = math.nan
  else:
    number = math.nan
  if not math.isfinite(number):
    raise InputError(f'{name}={shown(value)} is not a number; type a'
                     ' number.')
  return number


def whole_number(value: Any, name: str, lo: int, hi: int) -> int:
  """`value` (a JSON number or numeric text) as an int in [lo, hi]."""
  number = _number(value, name)
  if number != int(number) or not lo <= number <= hi:
    raise InputError(f'{name}={shown(value)} is out of range: use a whole'
                     f' number from {lo} to {hi}.')
  return int(number)


def nonnegative_number(value: Any, name: str) -> float:
  """`value` (a JSON number or numeric text) as a finite float >= 0."""
  number = _number(value, name)
  if number < 0:
    raise InputError(f'{name}={shown(value)} is negative: use a number >= 0'
                     ' (the paper: 0.003).')
  return number


def crop_name(crop: Any) -> str:
  """`crop` if it is one of CROPS (the views `fullsize.model_view` takes)."""
  if crop not in CROPS:
    raise InputError(f'crop={shown(crop)} is unknown: use one of {CROPS}.')
  return crop


def kind_mask(kind: Any, seed: int, size: int) -> np.ndarray:
  """(size, size, 1) float32 mask of a kind, keyed as zsearch_method does."""
  if kind not in masks_lib.KINDS:
    raise InputError(f'Unknown mask kind {shown(kind)}; use one of'
                     f' {masks_lib.KINDS}.')
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  return np.asarray(masks_lib.make(kind, mask_key, 1, size)[0], np.float32)


def view_box(width: int, height: int, crop: str) -> tuple[int, int, int]:
  """(left, top, side): the square of a W x H photo the model view shows."""
  return tuple(int(v) for v in preprocessing.crop_box(width, height, crop))

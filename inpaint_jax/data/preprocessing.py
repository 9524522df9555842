"""Sec. 4.1's preprocessing: any image -> a square RGB image of the model size.

Crops (the `crop` argument of `preprocess`):
  celeba: the central square of side round(min(h, w) * 108/178): the usual
    108x108 crop of the 178x218 aligned faces, 54x54 for the half-size
    89x109 shared copies; then resize.
  svhn:   resize the 32x32 digits (no crop).
  cars:   crop to the bounding box when one is known (TFDS cars196 has one,
    the shared folders do not), then the central square of side min(h, w),
    then resize. Cropping to the box first keeps the car, not the parking lot,
    in the frame; the square crop then keeps the aspect ratio undistorted.
  center: the central square of side min(h, w), then resize (your own images).
Resizing uses PIL's bicubic filter, which antialiases when shrinking (PIL
widens the kernel by the scale factor), so downscaled images do not alias.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image

from inpaint_jax.errors import InputError
from inpaint_jax.data.images import from_uint8, open_rgb, to_rgb

DATASETS = ('celeba', 'svhn', 'cars')
CROPS = DATASETS + ('center',)


# The crops of `preprocess` that cut one square out of the image (`crop_box`).
SQUARE_CROPS = ('center', 'celeba', 'cars')


def crop_box(width: int, height: int, crop: str) -> tuple[int, int, int]:
  """The square that `preprocess` cuts out of a width x height image.

  Args:
    width, height: the image size in pixels (>= 1).
    crop: 'center' (and 'cars' without a bounding box): the central square
      of side min(width, height); 'celeba': the central square of side
      round(min(width, height) * 108 / 178), at least 1.

  Returns:
    (left, top, side): the square's top-left pixel and side in pixels; it
    spans columns [left, left + side) and rows [top, top + side).
  """
  if crop not in SQUARE_CROPS:
    raise InputError(f'crop {crop!r} does not cut a square out of the image;'
                     f' use one of {SQUARE_CROPS}.')
  width, height = int(width), int(height)
  if width < 1 or height < 1:
    raise InputError(f'The image is {width}x{height} pixels; give an image of'
                     ' at least 1x1.')
  short = min(width, height)
  side = max(1, round(short * 108 / 178)) if crop == 'celeba' else short
  return (width - side) // 2, (height - side) // 2, side


def _crop_to_box(image: Image.Image, bbox: Sequence[float]) -> Image.Image:
  """Crops to a normalised [ymin, xmin, ymax, xmax] box (at least 1 pixel)."""
  w, h = image.size
  y0, x0, y1, x1 = np.clip(np.asarray(bbox, np.float64).reshape(4), 0.0, 1.0)
  y0, y1 = sorted((y0, y1))
  x0, x1 = sorted((x0, x1))
  left, top = min(int(x0 * w), w - 1), min(int(y0 * h), h - 1)
  right = max(int(math.ceil(x1 * w)), left + 1)
  bottom = max(int(math.ceil(y1 * h)), top + 1)
  return image.crop((left, top, right, bottom))


def preprocess(image: Image.Image, crop: str, size: int = 64,
               bbox: Sequence[float] | None = None) -> np.ndarray:
  """One PIL image (any mode, any size) -> (size, size, 3) uint8 RGB.

  Args:
    image: the PIL image; converted to 8-bit RGB with `images.to_rgb`
      (16-bit grey scaled by its bit depth, transparency on white).
    crop: one of CROPS ('celeba', 'svhn', 'cars', 'center'); see the module
      docstring.
    size: output side in pixels.
    bbox: optional [ymin, xmin, ymax, xmax] in [0, 1] (TFDS cars196 'bbox'),
      cropped to before the crop of `crop`.

  Returns:
    (size, size, 3) uint8 array in [0, 255].
  """
  if crop not in CROPS:
    raise InputError(f'Unknown crop {crop!r}; use one of {CROPS}.')
  image = to_rgb(image)
  if bbox is not None:
    image = _crop_to_box(image, bbox)
  if crop in SQUARE_CROPS:
    left, top, side = crop_box(*image.size, crop)
    image = image.crop((left, top, left + side, top + side))
  image = image.resize((size, size), Image.BICUBIC)
  return np.asarray(image, np.uint8)


def load_image(path: str, size: int = 64, crop: str = 'center') -> np.ndarray:
  """One image file (any mode) -> (size, size, 3) float32 RGB in [-1, 1].

  `crop` is one of CROPS ('center' = central square). The file is read with
  `images.open_rgb` (modes and transparency: see `images.to_rgb`). Raises
  MissingInputError for a missing file, InputError for one that is not a
  readable image, is too large, or has no unambiguous 8-bit reading.
  """
  return from_uint8(preprocess(open_rgb(path), crop, size))

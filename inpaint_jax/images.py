"""Image files and picture grids: [-1, 1] float arrays <-> PNG/JPEG files."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def to_uint8(images: np.ndarray) -> np.ndarray:
  """[-1, 1] floats (any shape) -> uint8 in [0, 255], rounded and clipped."""
  scaled = (np.asarray(images, np.float32) + 1.0) * 127.5
  return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def from_uint8(images: np.ndarray) -> np.ndarray:
  """uint8 in [0, 255] -> float32 in [-1, 1]."""
  return np.asarray(images, np.float32) / 127.5 - 1.0


def open_rgb(path: str) -> Image.Image:
  """Opens an image file as RGB, with one-line errors for bad files."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No image file at {path!r}.')
  try:
    with Image.open(path) as image:
      return image.convert('RGB')
  except (UnidentifiedImageError, OSError) as e:
    raise ValueError(f'Cannot read {path!r} as an image ({e.__class__.__name__});'
                     ' use a JPEG or PNG file.') from None


def save_png(path: str, image: np.ndarray) -> None:
  """Writes one (H, W, 3) or (H, W, 1) image in [-1, 1] as PNG (dirs made)."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] not in (1, 3):
    raise ValueError(f'save_png needs (H, W, 1|3), got {image.shape}.')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  pixels = to_uint8(image)
  Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path)


def image_grid(images: np.ndarray, ncols: int, pad: int = 2,
               pad_value: float = 1.0) -> np.ndarray:
  """(N, H, W, C) -> one (rows*(H+pad)+pad, ncols*(W+pad)+pad, C) image.

  Images fill the grid row by row; empty cells keep `pad_value` (white).
  """
  images = np.asarray(images, np.float32)
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
  """Side-by-side comparison: column j shows columns[j][i] in row i.

  E.g. make_grid([masked, generated, blended, original]) gives one row per
  image with those four pictures left to right. All arrays (N, H, W, C).
  """
  stacked = np.stack([np.asarray(c, np.float32) for c in columns], axis=1)
  n, k = stacked.shape[:2]
  return image_grid(stacked.reshape((n * k,) + stacked.shape[2:]), k, pad,
                    pad_value)


def masked_for_display(images: np.ndarray, masks: np.ndarray,
                       fill: float = -1.0) -> np.ndarray:
  """Images with missing pixels (mask 0) painted `fill` (black), as in the paper."""
  masks = np.asarray(masks, np.float32)
  return np.asarray(images, np.float32) * masks + fill * (1.0 - masks)

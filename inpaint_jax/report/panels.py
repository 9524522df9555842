"""Picture grids with labels, drawn with Pillow: the panels of the figures.

`labelled_grid` lays (N, H, W, C) image arrays in [-1, 1] out as columns
under short labels (and optional notes under each picture); `stack_panels`
puts such grids one above the other under their titles; `error_image` turns
a result and its original into an amplified grey error picture. Images are
shown SCALE times their size (nearest neighbour), in Pillow's default font
on white.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inpaint_jax.data import images as image_io

SCALE = 2  # images are drawn this many times their size
PAD = 4
LINE = 13  # pixels per line of Pillow's default font
ERROR_GAIN = 4.0  # Fig. 12's error images: |error| times this


def _font() -> ImageFont.ImageFont:
  return ImageFont.load_default()


def _wrap(text: str, width: int) -> list[str]:
  """`text` in lines of at most `width` pixels (words never split)."""
  font, lines = _font(), []
  for paragraph in str(text).split('\n'):
    line = ''
    for word in paragraph.split(' '):
      candidate = f'{line} {word}' if line else word
      if line and font.getlength(candidate) > width:
        lines.append(line)
        line = word
      else:
        line = candidate
    lines.append(line)
  return lines


def _to_pixels(image: np.ndarray, scale: int) -> np.ndarray:
  """(H, W, C) in [-1, 1] -> (H*scale, W*scale, 3) uint8."""
  pixels = image_io.to_uint8(image)
  if pixels.shape[-1] == 1:
    pixels = np.repeat(pixels, 3, axis=-1)
  return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def labelled_grid(columns: Sequence[np.ndarray], labels: Sequence[str], *,
                  cell_labels: Sequence[Sequence[str]] | None = None,
                  scale: int = SCALE, pad: int = PAD) -> Image.Image:
  """A comparison grid with a label over each column, as an RGB image.

  Args:
    columns: K arrays (N, H, W, C) in [-1, 1] (C = 3, or 1 for grey); row i,
      column j shows columns[j][i].
    labels: K short column labels (wrapped to the column's width).
    cell_labels: optional N lists of K strings printed under each picture
      ('' for none), e.g. its PSNR.
    scale: each picture is shown `scale` times its size (nearest neighbour).
    pad: white space between pictures, in pixels.

  Returns:
    A PIL RGB image on white.
  """
  columns = [np.asarray(c, np.float32) for c in columns]
  if len(columns) != len(labels) or not columns:
    raise ValueError(f'{len(columns)} columns but {len(labels)} labels.')
  n, h, w = columns[0].shape[:3]
  cell_w, cell_h = w * scale, h * scale
  header = [_wrap(label, cell_w) for label in labels]
  header_h = LINE * max(len(lines) for lines in header)
  notes = [[_wrap(text, cell_w) for text in row] for row in cell_labels or []]
  note_h = LINE * max([len(lines) for row in notes for lines in row if
                       any(lines)] or [0])
  row_h = cell_h + note_h + pad
  canvas = Image.new('RGB', (pad + len(columns) * (cell_w + pad),
                             pad + header_h + pad + n * row_h), 'white')
  draw = ImageDraw.Draw(canvas)
  for j, lines in enumerate(header):
    _draw_lines(draw, lines, pad + j * (cell_w + pad), pad)
  for i in range(n):
    top = 2 * pad + header_h + i * row_h
    for j, column in enumerate(columns):
      left = pad + j * (cell_w + pad)
      canvas.paste(Image.fromarray(_to_pixels(column[i], scale)), (left, top))
      if notes:
        _draw_lines(draw, notes[i][j], left, top + cell_h)
  return canvas


def _draw_lines(draw, lines, left, top, fill='black'):
  for k, line in enumerate(lines):
    draw.text((left, top + k * LINE), line, fill=fill, font=_font())


def stack_panels(panels: Sequence[tuple[str, Image.Image]],
                 pad: int = PAD) -> Image.Image:
  """Panels one above the other, each under its title, on white."""
  width = max(p.width for _, p in panels) + 2 * pad
  titles = [_wrap(title, width - 2 * pad) for title, _ in panels]
  height = pad + sum(LINE * len(t) + p.height + pad
                     for t, (_, p) in zip(titles, panels))
  canvas = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(canvas)
  top = pad
  for lines, (_, panel) in zip(titles, panels):
    _draw_lines(draw, lines, pad, top)
    top += LINE * len(lines)
    canvas.paste(panel, (pad, top))
    top += panel.height + pad
  return canvas


def save(image: Image.Image, path: str) -> str:
  """Writes `image` as the PNG `path` (folders made); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  image.save(path, format='PNG')
  return path


def error_image(result: np.ndarray, original: np.ndarray,
                gain: float = ERROR_GAIN) -> np.ndarray:
  """|result - original| (mean over channels, on [0, 1]) times `gain`,
  clipped, as grey images in [-1, 1] (black: no error).

  result, original: (N, H, W, C) in [-1, 1]. Returns (N, H, W, 3).
  """
  error = np.mean(np.abs(np.asarray(result) - np.asarray(original)) / 2.0,
                  axis=-1, keepdims=True)
  grey = np.clip(gain * error, 0.0, 1.0) * 2.0 - 1.0
  return np.repeat(grey, 3, axis=-1).astype(np.float32)

"""Your own photos at their own size: the model's view and the paste back.

The DCGAN sees a small square (size x size, e.g. 64x64) cut out of the photo
by `preprocessing.preprocess`: the square `preprocessing.crop_box` gives
(left, top, side), shrunk (or enlarged) to size x size. This module maps
between the photo and that view:

  model_view:  photo (H, W, 3) uint8 -> the view the model inpaints, and box.
  view_mask:   a known mask at photo resolution -> the view's mask,
               conservatively (a view pixel is known only if every photo
               pixel under it is).
  full_mask:   a view mask -> photo resolution (nearest neighbour in the box,
               known outside it).
  paste_back:  G(z_hat) of the view -> upsampled into the box and
               Poisson-blended (Eq. 6) at full resolution against the photo's
               known pixels, which come back bit for bit.

A view pixel (i, j) covers the photo pixels of rows [i * side / size,
(i + 1) * side / size) and the same columns (offset by the box); "under it"
are the photo pixels that overlap that area. So the hole of
`full_mask(view_mask(known, box, size), box, shape)` always covers the hole
of `known`.

`evaluation.own_photos` uses them for the photos of an
`experiments.inpaint --images` run.
"""

from __future__ import annotations

from typing import Sequence
import warnings

import numpy as np
from PIL import Image

from inpaint_jax import blending
from inpaint_jax.data import images as image_io
from inpaint_jax.data import preprocessing
from inpaint_jax.errors import InputError

Box = tuple[int, int, int]  # (left, top, side) in photo pixels.

# CG settings of the full-resolution blend. It starts from the model-size
# blend upsampled, so large holes need far fewer iterations than from G; the
# tolerance is far below what changes a uint8 pixel.
DEFAULT_MAX_ITERS = 4000
DEFAULT_TOL = 1e-5


def _check_photo(photo: np.ndarray) -> np.ndarray:
  photo = np.asarray(photo)
  if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
    raise InputError(f'photo is {photo.dtype} {photo.shape}; expected an'
                     ' (H, W, 3) uint8 RGB array (e.g. np.asarray of'
                     ' images.open_rgb(path)).')
  if photo.shape[0] < 1 or photo.shape[1] < 1:
    raise InputError(f'photo has shape {photo.shape}; give at least 1x1'
                     ' pixels.')
  return photo


def _check_known(known_full: np.ndarray, shape: tuple[int, int] | None,
                 name: str = 'known_full') -> np.ndarray:
  """(H, W) or (H, W, 1) bool / {0, 1} -> (H, W) bool."""
  known = np.asarray(known_full)
  if known.ndim == 3 and known.shape[-1] == 1:
    known = known[..., 0]
  if known.ndim != 2:
    raise InputError(f'{name} has shape {np.shape(known_full)}; expected an'
                     ' (H, W) bool mask (True = known pixel).')
  if shape is not None and known.shape != tuple(shape):
    raise InputError(f'{name} is {known.shape[1]}x{known.shape[0]} but the'
                     f' photo is {shape[1]}x{shape[0]} (width x height); give'
                     ' a mask of the photo\'s size.')
  if known.dtype != bool:
    values = known.astype(np.float64)
    if not np.all((values == 0) | (values == 1)):
      raise InputError(f'{name} must be binary (1 = known, 0 = missing);'
                       ' threshold it first, e.g. mask > 0.5.')
    known = values > 0.5
  return known


def _check_box(box: Sequence[int], shape: tuple[int, int]) -> Box:
  try:
    left, top, side = (int(v) for v in box)
  except (TypeError, ValueError):
    raise InputError(f'box {box!r} is not (left, top, side); use the box'
                     ' model_view or preprocessing.crop_box gives.') from None
  h, w = shape
  if side < 1 or left < 0 or top < 0 or left + side > w or top + side > h:
    raise InputError(f'box (left={left}, top={top}, side={side}) does not lie'
                     f' in the {w}x{h} photo; use the box model_view or'
                     ' preprocessing.crop_box gives for this photo.')
  return left, top, side


def _check_view(view: np.ndarray, name: str, channels: int) -> np.ndarray:
  view = np.asarray(view, np.float32)
  if channels == 1 and view.ndim == 2:
    view = view[..., None]
  if (view.ndim != 3 or view.shape[0] != view.shape[1]
      or view.shape[-1] != channels or view.shape[0] < 1):
    raise InputError(f'{name} has shape {view.shape}; expected (size, size,'
                     f' {channels}).')
  return view


def model_view(photo: np.ndarray, crop: str = 'center',
               size: int = 64) -> tuple[np.ndarray, Box]:
  """What the model sees of a photo: exactly `preprocessing.preprocess`.

  Args:
    photo: (H, W, 3) uint8 RGB, any size.
    crop: 'center' (central square) or 'celeba' (central 108/178 square);
      see `preprocessing.crop_box`.
    size: the model's image side.

  Returns:
    (view, box): view (size, size, 3) float32 in [-1, 1]; box (left, top,
    side), the square of the photo it shows.
  """
  photo = _check_photo(photo)
  h, w = photo.shape[:2]
  box = preprocessing.crop_box(w, h, crop)
  view = preprocessing.preprocess(Image.fromarray(photo, 'RGB'), crop, size)
  return image_io.from_uint8(view), box


def _view_of_box(photo: np.ndarray, box: Box, size: int) -> np.ndarray:
  """The box of a photo resized to size x size, as `preprocess` does it."""
  left, top, side = box
  square = Image.fromarray(photo, 'RGB').crop(
      (left, top, left + side, top + side))
  return image_io.from_uint8(
      np.asarray(square.resize((size, size), Image.BICUBIC), np.uint8))


def _spans(size: int, side: int) -> tuple[np.ndarray, np.ndarray]:
  """Photo rows [lo[i], hi[i]) (box coordinates) under view row i."""
  i = np.arange(size, dtype=np.int64)
  lo = (i * side) // size
  hi = -((-(i + 1) * side) // size)  # ceil((i + 1) * side / size)
  return lo, hi


def view_mask(known_full: np.ndarray, box: Sequence[int],
              size: int = 64) -> np.ndarray:
  """A known mask at photo resolution -> the model view's mask (conservative).

  A view pixel is known only if every photo pixel under it (overlapping its
  area in the box) is known, so the view's hole covers the photo's.

  Args:
    known_full: (H, W) bool (or {0, 1}; (H, W, 1) too), True = known pixel.
    box: (left, top, side), the square the view shows (`model_view`).
    size: the model's image side.

  Returns:
    float32 (size, size, 1) in {0, 1}, 1 = known.

  Raises:
    InputError: the mask has no missing pixel, some missing pixel lies outside
      the box (the model cannot see it), or the hole covers the whole view.
  """
  known = _check_known(known_full, None)
  h, w = known.shape
  left, top, side = _check_box(box, (h, w))
  if size < 1:
    raise InputError(f'size={size} must be >= 1 (the model image side).')
  missing = ~known
  total = int(missing.sum())
  if not total:
    raise InputError('The mask has no missing pixel: nothing to inpaint;'
                     ' paint the hole black.')
  inside = missing[top:top + side, left:left + side]
  outside = total - int(inside.sum())
  if outside:
    raise InputError(
        f'{outside} missing pixels lie outside the square the model sees'
        f' (columns {left}..{left + side - 1}, rows {top}..{top + side - 1}'
        f' of the {w}x{h} photo); crop the photo so that the hole lies in its'
        ' central square, or use --crop=center.')
  counts = np.zeros((side + 1, side + 1), np.int64)
  counts[1:, 1:] = inside.astype(np.int64).cumsum(0).cumsum(1)
  lo, hi = _spans(size, side)
  under = (counts[hi][:, hi] - counts[lo][:, hi] - counts[hi][:, lo]
           + counts[lo][:, lo])
  view = (under == 0).astype(np.float32)[..., None]
  if not view.any():
    raise InputError(
        'The hole covers the whole square the model sees: nothing to'
        ' condition on; leave some known pixels around the hole.')
  return view


def full_mask(view_mask: np.ndarray, box: Sequence[int],
              photo_shape: Sequence[int]) -> np.ndarray:
  """A view mask -> photo resolution: nearest neighbour in the box.

  Photo pixel (r, c) of the box takes the view pixel under its centre,
  ((2r + 1) * size // (2 * side), likewise c); pixels outside the box are
  known.

  Args:
    view_mask: (size, size, 1) (or (size, size)) in {0, 1}, 1 = known.
    box: (left, top, side), the square the view shows (`model_view`).
    photo_shape: (H, W) or (H, W, 3), the photo's shape.

  Returns:
    (H, W) bool, True = known.
  """
  view = _check_view(view_mask, 'view_mask', 1)[..., 0] > 0.5
  h, w = (int(v) for v in tuple(photo_shape)[:2])
  left, top, side = _check_box(box, (h, w))
  size = view.shape[0]
  idx = ((2 * np.arange(side, dtype=np.int64) + 1) * size) // (2 * side)
  known = np.ones((h, w), bool)
  known[top:top + side, left:left + side] = view[idx[:, None], idx[None, :]]
  return known


def _upsample_window(view: np.ndarray, side: int, rows: tuple[int, int],
                     cols: tuple[int, int]) -> np.ndarray:
  """Rows/columns [r0, r1) x [c0, c1) of `view` resized to side x side.

  Bicubic (PIL, per channel in float), computed for the window only; the
  window may reach past the box, where the nearest edge value is repeated.

  Args:
    view: (size, size, C) float32.
    side: the side of the full resized image.
    rows, cols: the window in box coordinates (may exceed [0, side)).

  Returns:
    float32 (r1 - r0, c1 - c0, C).
  """
  size = view.shape[0]
  (r0, r1), (c0, c1) = rows, cols
  a0, a1 = max(r0, 0), min(r1, side)
  b0, b1 = max(c0, 0), min(c1, side)
  scale = size / side
  source = (b0 * scale, a0 * scale, b1 * scale, a1 * scale)
  channels = [
      np.asarray(Image.fromarray(np.ascontiguousarray(view[..., k]), 'F')
                 .resize((b1 - b0, a1 - a0), Image.BICUBIC, box=source),
                 np.float32)
      for k in range(view.shape[-1])]
  window = np.stack(channels, axis=-1)
  return np.pad(window, ((a0 - r0, r1 - a1), (b0 - c0, c1 - b1), (0, 0)),
                mode='edge')


def paste_back(photo: np.ndarray, known_full: np.ndarray,
               generated_view: np.ndarray, box: Sequence[int], *,
               blend: bool = True, max_iters: int = DEFAULT_MAX_ITERS,
               tol: float = DEFAULT_TOL) -> np.ndarray:
  """G(z_hat) of the model view, pasted into the photo's hole at full size.

  G(z_hat) is resized (bicubic) to the box's side and, with `blend`,
  Poisson-blended (Eq. 6, `blending.solve_poisson`) at full resolution
  against the photo's known pixels: the hole takes G's gradients and the
  photo's colours at its border. The solve covers only the bounding box of
  the hole plus a 1-pixel margin (the same equations as on the whole photo),
  and CG starts from the model-size blend resized, so large holes converge
  in few iterations. Without `blend` the hole takes resized G(z_hat) as is.

  Args:
    photo: (H, W, 3) uint8 RGB.
    known_full: (H, W) bool, True = known pixel; every missing pixel must lie
      in the box.
    generated_view: G(z_hat), (size, size, 3) float32 in [-1, 1].
    box: (left, top, side), the square the view shows (`model_view`).
    blend: Poisson blending; else plain overlay.
    max_iters, tol: CG iteration cap and relative residual tolerance of the
      full-resolution solve; a solve that stops short of `tol` warns
      (RuntimeWarning) with the residual reached.

  Returns:
    (H, W, 3) uint8: every known pixel equals `photo` bit for bit; missing
    ones are the blended (or overlaid) fill, rounded and clipped.

  Raises:
    InputError: bad shapes, a hole outside the box (see `view_mask`), or
      non-finite G(z_hat) (damaged model weights).
  """
  photo = _check_photo(photo)
  h, w = photo.shape[:2]
  known = _check_known(known_full, (h, w))
  generated = _check_view(generated_view, 'generated_view', 3)
  if not np.all(np.isfinite(generated)):
    raise InputError('generated_view has NaN or infinite values: the model'
                     ' weights are probably damaged (check the model'
                     ' directory or export it again).')
  size = generated.shape[0]
  left, top, side = _check_box(box, (h, w))
  if known.all():
    return photo.copy()
  coarse_mask = view_mask(known, (left, top, side), size)  # Checks the hole.
  rows, cols = np.nonzero(~known)
  r0, r1 = max(rows.min() - 1, 0), min(rows.max() + 2, h)
  c0, c1 = max(cols.min() - 1, 0), min(cols.max() + 2, w)
  window = (slice(r0, r1), slice(c0, c1))
  box_rows, box_cols = (r0 - top, r1 - top), (c0 - left, c1 - left)
  fill = _upsample_window(generated, side, box_rows, box_cols)
  if blend:
    coarse_view = _view_of_box(photo, (left, top, side), size)
    coarse = np.asarray(blending.poisson_blend(
        generated[None], coarse_view[None], coarse_mask[None]))[0]
    start = _upsample_window(coarse, side, box_rows, box_cols)
    solved, iters, residual = blending.solve_poisson(
        fill[None], image_io.from_uint8(photo[window])[None],
        known[window][None, ..., None].astype(np.float32),
        max_iters=int(max_iters), tol=float(tol), initial=start[None])
    solved, residual = np.asarray(solved)[0], np.asarray(residual)
    if not np.all(np.isfinite(solved)):
      raise FloatingPointError(
          f'Poisson blending of the {w}x{h} photo gave non-finite values'
          f' after {int(iters)} CG iterations (residual {residual}); this is'
          ' a bug: report it with the photo and mask.')
    if not np.all(residual <= tol):
      warnings.warn(
          f'Poisson blending of the {w}x{h} photo stopped after {int(iters)}'
          f' CG iterations at relative residual {float(residual.max()):.2g}'
          f' > tol {tol:g}; the fill may show seams: pass a larger max_iters'
          f' (now {max_iters}).', RuntimeWarning, stacklevel=2)
    fill = solved
  out = photo.copy()
  out[window] = np.where(known[window][..., None], photo[window],
                         image_io.to_uint8(fill))
  return out

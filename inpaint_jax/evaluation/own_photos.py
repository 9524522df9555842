"""The photos of an `experiments.inpaint --images` run, at their own size.

`photo_view_masks` reduces a mask file drawn at the photos' size to each
photo's model view; `write_fullsize` writes `<stem>_fullsize.png`, each photo
inpainted at its own size (`fullsize.paste_back`). `Photos` names the folder,
crop and mask file of the run.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np
from PIL import Image

from inpaint_jax import fullsize
from inpaint_jax import masks as masks_lib
from inpaint_jax.data import images as image_io
from inpaint_jax.data import preprocessing
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import results

FULLSIZE_SUFFIX = '_fullsize.png'


@dataclasses.dataclass(frozen=True)
class Photos:
  """The full-size photos of an own-images run (`experiments.inpaint`).

  Attributes:
    folder: the folder the photos are read from (`--images`).
    crop: 'center' or 'celeba', the crop of the model views (`--crop`).
    mask_file: optional mask image (white = known), at the model size (used
      for every photo, upsampled into each photo's box) or at a photo's own
      size (used at that size; reduced with `fullsize.view_mask` for the
      search).
  """
  folder: str
  crop: str = 'center'
  mask_file: str | None = None


def read_mask(path: str) -> np.ndarray:
  """A mask image at its own size: (H, W) bool, True = known (white).

  Read as `masks.read_known` does; it must have a known and a missing pixel.
  """
  known = masks_lib.read_known(path)
  masks_lib.check_masks(known[None, ..., None].astype(np.float32),
                        f'Mask {os.fspath(path)!r}',
                        missing_fix='paint the hole black',
                        known_fix='white marks the pixels to keep')
  return known


def _mask_size(path: str) -> tuple[int, int]:
  """(width, height) of a mask image, upright (`images.image_size`)."""
  return image_io.image_size(path, 'mask image')


def _photo_size(path: str) -> tuple[int, int]:
  """(width, height) of a photo, upright (`images.image_size`)."""
  return image_io.image_size(path, 'photo')


def _check_mask_fits(mask_size: tuple[int, int], photo_size: tuple[int, int],
                     size: int, mask_file: str, name: str) -> bool:
  """True if the mask is at the photo's size, False at the model size."""
  if mask_size == (size, size):
    return False
  if mask_size == photo_size:
    return True
  raise InputError(
      f'Mask {mask_file!r} is {mask_size[0]}x{mask_size[1]}, but the model'
      f' size is {size}x{size} and the photo {name!r} is {photo_size[0]}x'
      f'{photo_size[1]}; give a mask of one of these sizes (width x height).')


def photo_view_masks(photos: Photos, names: Sequence[str],
                     size: int) -> np.ndarray | None:
  """The search masks of a run whose mask file is at the photos' own size.

  Args:
    photos: the folder, crop and mask file of the run.
    names: the N photo file names (in `photos.folder`).
    size: the model's image side.

  Returns:
    None when there is no mask file or it is size x size (then it is used
    for every view as it is); else float32 (N, size, size, 1), 1 = known:
    the mask reduced to each photo's view with `fullsize.view_mask`.

  Raises:
    InputError: the mask is neither size x size nor the size of every photo
      (naming both sizes), or its hole does not fit a photo's view.
  """
  if photos.mask_file is None:
    return None
  mask_size = _mask_size(photos.mask_file)
  if mask_size == (size, size):
    return None
  known = None
  views = []
  for name in names:
    width, height = _photo_size(os.path.join(photos.folder, name))
    _check_mask_fits(mask_size, (width, height), size, photos.mask_file, name)
    if known is None:
      known = read_mask(photos.mask_file)
    box = preprocessing.crop_box(width, height, photos.crop)
    try:
      views.append(fullsize.view_mask(known, box, size))
    except InputError as e:
      raise InputError(f'Mask {photos.mask_file!r} on {name!r}: {e}') from None
  return np.stack(views)


def write_fullsize(directory: str, photos: Photos, names: Sequence[str],
                   generated: np.ndarray, view_masks: np.ndarray, *,
                   blend: bool = True) -> list[str]:
  """Writes `<stem>_fullsize.png`, each photo inpainted at its own size.

  Each photo is read again from `photos.folder`, G(z_hat) of its view is
  pasted back (`fullsize.paste_back`) against the photo's known pixels: those
  of the mask file when it is at the photo's size, else the view mask
  upsampled (`fullsize.full_mask`). Stems are `results.image_stems(names)`, as
  the other per-image PNGs.

  Args:
    directory: where to write (made if missing), e.g. <output_dir>/images.
    photos: the folder, crop and mask file of the run.
    names: the N photo file names.
    generated: G(z_hat) of the views, (N, size, size, 3) in [-1, 1] (an
      EvalResult's `generated`).
    view_masks: the search masks, (N, size, size, 1), 1 = known (an
      EvalResult's `masks`).
    blend: Poisson blending at full size; else plain overlay.

  Returns:
    The names of the files written.
  """
  generated = np.asarray(generated, np.float32)
  view_masks = np.asarray(view_masks, np.float32)
  if not len(generated) == len(view_masks) == len(names):
    raise InputError(f'{len(names)} names, {len(generated)} generated images'
                     f' and {len(view_masks)} masks; give one of each per'
                     ' photo.')
  size = generated.shape[1]
  mask_size = (None if photos.mask_file is None
               else _mask_size(photos.mask_file))
  full_known = None
  os.makedirs(directory, exist_ok=True)
  written = []
  for i, (name, stem) in enumerate(zip(names, results.image_stems(names))):
    photo = np.asarray(image_io.open_rgb(os.path.join(photos.folder, name),
                                         'photo'), np.uint8)
    h, w = photo.shape[:2]
    box = preprocessing.crop_box(w, h, photos.crop)
    if mask_size is not None and _check_mask_fits(
        mask_size, (w, h), size, photos.mask_file, name):
      if full_known is None:
        full_known = read_mask(photos.mask_file)
      known = full_known
    else:
      known = fullsize.full_mask(view_masks[i], box, (h, w))
    out = fullsize.paste_back(photo, known, generated[i], box, blend=blend)
    written.append(stem + FULLSIZE_SUFFIX)
    Image.fromarray(out, 'RGB').save(os.path.join(directory, written[-1]),
                                     format='PNG')
  return written

"""Evaluation results: `EvalResult`, the resume store and the report files.

`evaluate.evaluate` computes an `EvalResult`; this module keeps what it needs
to resume and writes what it found:

* the partial batch store: every finished batch is saved to
  `<output_dir>/partial/` with a fingerprint of the inputs and settings and is
  reused only under the same fingerprint, so a killed evaluation resumes
  where it stopped; every batch file (of this or other settings) is removed
  once the results are written.
* the report files (`write_all`): metrics.csv (one row per image),
  metrics.json (the summary), grid.png (masked input | G(z) | result |
  original for the first GRID_ROWS images), images/*.png and, when the method
  recorded its search, search.gif and loss_curves.csv. Report files of an
  earlier run that this one does not write (per-image PNGs of other images,
  a search.gif of a run that recorded one) are removed, so the folder only
  ever describes one run.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import hashlib
import json
import os
import re
import tempfile
from typing import Any, Sequence
import zipfile

import jax
import numpy as np

from inpaint_jax import blending
from inpaint_jax.data import images as image_io
from inpaint_jax.report import cells

GRID_ROWS = 16
PARTIAL_DIR = 'partial'
IMAGES_DIR = 'images'
# Per-image PNGs (write_images): <stem>_<kind>.png for these kinds.
IMAGE_KINDS = ('masked', 'generated', 'inpainted')
# fullsize: own_photos.write_fullsize's own photos at their own size, written
# after these; an earlier run's are removed with the others.
_PER_IMAGE_PNG = re.compile(
    rf'.+_({"|".join(IMAGE_KINDS + ("fullsize",))})\.png')
# Saved batches and their temporary files (a run killed mid-write leaves one).
_PARTIAL_FILE = re.compile(r'batch_\d+\.npz(\..+)?')
# A lock file younger than this whose owner cannot be read is being written.


@dataclasses.dataclass(frozen=True)
class EvalResult(cells.Inpaintings):
  """One method evaluated on N images (the same on every process).

  The fields of `report.cells.Inpaintings` (images, masks, names, generated,
  inpainted, metrics, summary), where `names` name the per-image PNGs (see
  `image_stems`); `metrics` are in metrics.csv column order: 'psnr', 'ssim',
  'psnr_mean_fill', the method's scores (e.g. 'loss'), 'missing_fraction'
  and, with a classifier (evaluate's `semantic`), 'correct' (1/0: the
  inpainted image shows its labelled class); `summary` is metrics.json: the
  method's settings, 'num_images', timing, 'resumed_images' and the mean of
  every metric ('mean_psnr', ...). And:

  Attributes:
    method: name of the method (methods.Method.name).
    frames: (n, F, H, W, C) the method's intermediate fills of images 0..n-1
      (its first batch), or None (not recorded, or not process 0).
    loss_curve: (n, T) the loss at every search step of the same images, or
      None.
  """
  method: str
  frames: np.ndarray | None = None
  loss_curve: np.ndarray | None = None


def run_fingerprint(variables: Any, images: np.ndarray, masks: np.ndarray,
                    settings: dict[str, Any]) -> str:
  """sha256 of the model variables, the images, the masks and `settings`.

  Saved partial results are reused only under the same fingerprint, so a
  changed image, mask, model or setting never mixes into a resumed run.

  Args:
    variables: a pytree of arrays (e.g. G and D variables), or None.
    images: (N, H, W, C) in [-1, 1]; masks: (N, H, W, 1), 1 = known.
    settings: JSON-able settings (non-JSON values are hashed as str()).
  """
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(variables):
    digest.update(np.ascontiguousarray(jax.device_get(leaf)).tobytes())
  digest.update(np.ascontiguousarray(images, np.float32).tobytes())
  digest.update(np.ascontiguousarray(masks, np.float32).tobytes())
  digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
  return digest.hexdigest()


def partial_path(output_dir: str, start: int) -> str:
  """Where the batch that starts at image `start` is saved."""
  return os.path.join(output_dir, PARTIAL_DIR, f'batch_{start:09d}.npz')


def load_partial(output_dir: str, start: int,
                 fingerprint: str) -> dict[str, np.ndarray] | None:
  """The saved arrays of the batch at `start`, if saved under `fingerprint`."""
  path = partial_path(output_dir, start)
  try:
    with np.load(path) as saved:
      if str(saved['fingerprint']) != fingerprint:
        return None
      return {k: saved[k] for k in saved.files if k != 'fingerprint'}
  except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
    return None  # absent, or cut off mid-write.


def save_partial(output_dir: str, start: int, fingerprint: str,
                 arrays: dict[str, np.ndarray]) -> None:
  """Writes one batch's arrays atomically (a kill leaves no torn file).

  They go to a temporary file of a unique name first (so that two writers
  never share one), which then replaces the batch file.
  """
  path = partial_path(output_dir, start)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + '.',
                                   suffix='.tmp', dir=os.path.dirname(path))
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, fingerprint=np.asarray(fingerprint), **arrays)
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise


def remove_partial(output_dir: str) -> None:
  """Deletes every saved batch in `<output_dir>/partial/`, then the folder.

  Batches of this run and of runs with other settings (other fingerprints,
  more images, another batch size) alike, and temporary files left by a
  run killed mid-write. Every process may call it (with one folder shared
  by several processes, each file is removed by whichever comes first);
  the folder goes once it is empty.
  """
  folder = os.path.join(output_dir, PARTIAL_DIR)
  names = os.listdir(folder) if os.path.isdir(folder) else []
  for name in names:
    if _PARTIAL_FILE.fullmatch(name):
      with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(folder, name))
  with contextlib.suppress(OSError):
    os.rmdir(folder)  # Absent, or holds files that are not ours.


def comparison_grid(result: EvalResult, rows: int = GRID_ROWS) -> np.ndarray:
  """masked input | generated | inpainted | original, for the first `rows`.

  Returns float32 (k*(H+2)+2, 4*(W+2)+2, C) in [-1, 1], k = min(rows, N),
  white padding (image_io.make_grid).
  """
  k = slice(0, rows)
  masked = image_io.masked_for_display(result.images[k], result.masks[k])
  return image_io.make_grid([masked, result.generated[k], result.inpainted[k],
                             result.images[k]])


def write_all(output_dir: str, result: EvalResult, *,
              save_images: bool = True) -> None:
  """Writes every report file, then removes the partial batches.

  Process 0 writes metrics.csv, metrics.json, search.gif and loss_curves.csv
  (if frames were recorded), grid.png and, with `save_images`, images/*.png,
  and removes those an earlier run left that this one does not write (a
  search.gif without frames, per-image PNGs of other images or of every image
  without `save_images`: see `remove_stale_images`); every process then
  removes the saved batches (`remove_partial`).
  """
  if jax.process_index() == 0:
    os.makedirs(output_dir, exist_ok=True)
    write_csv(os.path.join(output_dir, 'metrics.csv'), result.names,
              result.metrics)
    with open(os.path.join(output_dir, 'metrics.json'), 'w') as f:
      json.dump(result.summary, f, indent=2)
    if result.frames is not None:
      n = len(result.frames)
      write_search_progress(output_dir, result.images[:n], result.masks[:n],
                            result.frames, result.loss_curve)
    else:
      for name in ('search.gif', 'loss_curves.csv'):
        with contextlib.suppress(FileNotFoundError):
          os.remove(os.path.join(output_dir, name))
    image_io.save_png(os.path.join(output_dir, 'grid.png'),
                      comparison_grid(result))
    images_dir = os.path.join(output_dir, IMAGES_DIR)
    if save_images:
      write_images(images_dir, result)
    else:
      remove_stale_images(images_dir, ())
  remove_partial(output_dir)


def write_csv(path: str, names: Sequence[str],
              per_image: dict[str, np.ndarray]) -> None:
  """One row per image: its name, then every per-image value (6 digits)."""
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['image'] + list(per_image))
    for i, name in enumerate(names):
      writer.writerow([name] + [f'{float(v[i]):.6g}'
                                for v in per_image.values()])


def image_stems(names: Sequence[str]) -> list[str]:
  """The file stem of each image's PNGs: unique, and stable for a name set.

  A name's stem is its base name without the extension ('dir/a.png' -> 'a').
  Names whose stems collide (ignoring case, as some file systems do) keep
  their extension in the stem ('a.png', 'a.jpg' -> 'a_png', 'a_jpg'); names
  that still collide (the same name twice) get their index in `names` added
  ('a_png_3'). Names that collide with no other keep the plain stem.
  """
  bases = [os.path.basename(str(name)) for name in names]
  stems = [os.path.splitext(base)[0] for base in bases]

  def colliding(candidates):
    counts = collections.Counter(c.lower() for c in candidates)
    return [counts[c.lower()] > 1 for c in candidates]

  stems = [(f'{stem}_{os.path.splitext(base)[1][1:]}'
            if clash and os.path.splitext(base)[1] else stem)
           for stem, base, clash in zip(stems, bases, colliding(stems))]
  for _ in range(len(stems)):
    clashes = colliding(stems)
    if not any(clashes):
      break
    stems = [f'{stem}_{i}' if clash else stem
             for i, (stem, clash) in enumerate(zip(stems, clashes))]
  return stems


def write_images(directory: str, result: EvalResult) -> None:
  """<stem>_masked.png, <stem>_generated.png, <stem>_inpainted.png per image.

  Stems come from `image_stems` (e.g. 'a.png' -> a_inpainted.png; 'a.png'
  and 'a.jpg' together -> a_png_inpainted.png, a_jpg_inpainted.png). Per-image
  PNGs an earlier run left in `directory` that this call did not write are
  removed (`remove_stale_images`).
  """
  masked = image_io.masked_for_display(result.images, result.masks)
  written = []
  for i, stem in enumerate(image_stems(result.names)):
    for suffix, array in zip(IMAGE_KINDS, (masked, result.generated,
                                           result.inpainted)):
      written.append(f'{stem}_{suffix}.png')
      image_io.save_png(os.path.join(directory, written[-1]), array[i])
  remove_stale_images(directory, written)


def remove_stale_images(directory: str, keep: Sequence[str]) -> None:
  """Removes per-image PNGs in `directory` not named in `keep`.

  Only files named like write_images' output (*_masked.png,
  *_generated.png, *_inpainted.png) or own_photos.write_fullsize's
  (*_fullsize.png) are touched, never anything else; the
  folder is removed if that leaves it empty.
  """
  if not os.path.isdir(directory):
    return
  keep = set(keep)
  for name in os.listdir(directory):
    path = os.path.join(directory, name)
    if (name not in keep and _PER_IMAGE_PNG.fullmatch(name)
        and os.path.isfile(path)):
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
  with contextlib.suppress(OSError):
    os.rmdir(directory)  # Only if empty.


def write_search_progress(output_dir: str, images: np.ndarray,
                          masks: np.ndarray, frames: np.ndarray,
                          curves: np.ndarray) -> None:
  """search.gif (masked | G(z) | overlay, as the search goes), loss_curves.csv.

  The GIF shows the first GRID_ROWS images, the CSV every curve.

  Args:
    images: (n, H, W, C) originals in [-1, 1]; masks: (n, H, W, 1).
    frames: (n, F, H, W, C) G(z) every few steps, in [-1, 1].
    curves: (n, T) the loss at every step.
  """
  from PIL import Image
  rows = slice(0, GRID_ROWS)
  masked = image_io.masked_for_display(images, masks)[rows]
  pictures = [
      Image.fromarray(image_io.to_uint8(image_io.make_grid(
          [masked, frames[rows, f], np.asarray(blending.overlay(
              frames[rows, f], images[rows], masks[rows]))])))
      for f in range(frames.shape[1])]
  pictures[0].save(os.path.join(output_dir, 'search.gif'), save_all=True,
                   append_images=pictures[1:], duration=200, loop=0)
  with open(os.path.join(output_dir, 'loss_curves.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['step'] + [f'image_{i}' for i in range(len(curves))])
    for step in range(curves.shape[1]):
      writer.writerow([step] + [f'{v:.6g}' for v in curves[:, step]])

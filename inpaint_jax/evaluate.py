"""Inpainting a set of images end to end: masks, z-search, blending, metrics.

`inpaint_and_evaluate` is what `experiments.inpaint` calls: it runs the
search batch by batch with a progress bar, blends, scores against the
originals and writes per-image PNGs, a comparison grid, and metrics as JSON and
CSV. Results are per-image deterministic: image i gets mask i and initial
latent i whatever the batch size and the number of processes (each process
searches its `distributed.process_slice` of the images; process 0 writes).

Nothing is lost when a long evaluation is killed: every finished batch is saved
to `<output_dir>/partial/` together with a fingerprint of the inputs and
settings, and the same call run again reuses the batches whose fingerprint
matches and searches only the rest (the partial files are removed once the
results are written).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import time
import zipfile
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import blending, checkpoints, distributed, inpaint
from inpaint_jax import images as image_io
from inpaint_jax import masks as masks_lib
from inpaint_jax import metrics
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Discriminator, Generator

GRID_ROWS = 16


def mean_fill(images: jax.Array, masks: jax.Array) -> jax.Array:
  """Baseline: missing pixels set to the mean colour of the known ones.

  images (N, H, W, C) in [-1, 1], masks (N, H, W, 1), 1 = known.
  """
  known = jnp.sum(masks, axis=(1, 2), keepdims=True)
  mean = jnp.sum(images * masks, axis=(1, 2), keepdims=True) / jnp.maximum(
      known, 1.0)
  return images * masks + mean * (1.0 - masks)


def make_masks(kind: str | None, mask_file: str | None, n: int, size: int,
               key: jax.Array) -> np.ndarray:
  """(n, size, size, 1) masks: one of masks.KINDS drawn from `key`, or a file.

  Exactly one of `kind` and `mask_file` must be given.
  """
  if (kind is None) == (mask_file is None):
    raise ValueError('Give either a mask kind or a mask file, not both.')
  if mask_file is not None:
    mask = masks_lib.from_file(mask_file, size)
    return np.broadcast_to(mask[None], (n,) + mask.shape).copy()
  return np.asarray(masks_lib.make(kind, key, n, size))


def _pad_to(x: np.ndarray, n: int) -> np.ndarray:
  if len(x) == n:
    return x
  return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


PARTIAL_DIR = 'partial'


def run_fingerprint(variables: Any, images: np.ndarray, masks: np.ndarray,
                    settings: dict[str, Any]) -> str:
  """sha256 of the model variables, the images, the masks and `settings`.

  Saved partial results are reused only under the same fingerprint, so a
  changed image, mask, model or setting never mixes into a resumed run.
  """
  digest = hashlib.sha256()
  for leaf in jax.tree_util.tree_leaves(variables):
    digest.update(np.ascontiguousarray(jax.device_get(leaf)).tobytes())
  digest.update(np.ascontiguousarray(images, np.float32).tobytes())
  digest.update(np.ascontiguousarray(masks, np.float32).tobytes())
  digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
  return digest.hexdigest()


def _partial_path(output_dir: str, start: int) -> str:
  return os.path.join(output_dir, PARTIAL_DIR, f'batch_{start:09d}.npz')


def _load_partial(output_dir: str, start: int,
                  fingerprint: str) -> dict[str, np.ndarray] | None:
  """The saved results of the batch at `start`, if saved under `fingerprint`."""
  path = _partial_path(output_dir, start)
  try:
    with np.load(path) as saved:
      if str(saved['fingerprint']) != fingerprint:
        return None
      return {k: saved[k] for k in saved.files if k != 'fingerprint'}
  except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
    return None  # absent, or cut off mid-write.


def _save_partial(output_dir: str, start: int, fingerprint: str,
                  arrays: dict[str, np.ndarray]) -> None:
  """Writes one batch's results atomically (a kill leaves no torn file)."""
  path = _partial_path(output_dir, start)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  temporary = path + f'.tmp{jax.process_index()}.npz'
  np.savez(temporary, fingerprint=np.asarray(fingerprint), **arrays)
  os.replace(temporary, path)


def inpaint_and_evaluate(checkpoint: str, images: np.ndarray,
                         names: Sequence[str], output_dir: str, *,
                         mask_kind: str | None = 'center',
                         mask_file: str | None = None,
                         search_config: SearchConfig = SearchConfig(),
                         batch_size: int = 64, blend: bool = True,
                         seed: int = 0, save_images: bool = True,
                         show_progress: bool = True,
                         compute_dtype: str = 'float32') -> dict[str, Any]:
  """Inpaints `images` with the model in `checkpoint`; writes and returns results.

  Args:
    checkpoint: model directory (see checkpoints.save_model).
    images: (N, R, R, 3) float32 originals in [-1, 1]; the masked pixels are
      hidden from the search and used only for scoring.
    names: N names for the per-image files and the metrics table.
    output_dir: where PNGs, grid.png, metrics.json and metrics.csv go.
    mask_kind: one of masks.KINDS, or None when `mask_file` is given.
    mask_file: path of a mask image (white = known), used for every image.
    search_config: z-search settings (iterations, lam, learning rate, ...).
    batch_size: images per z-search call (the last batch is padded).
    blend: Poisson-blend G(z) into the hole (Eq. 6); else plain overlay.
    seed: seed for masks and initial latents.
    save_images: write per-image PNGs (the grid and metrics are always written).
    show_progress: show a tqdm progress bar.
    compute_dtype: 'float32', or 'bfloat16' for G and D's convolutions in
      the search (faster where the hardware has bf16 units; weights stay
      float32).

  Finished batches are kept in `<output_dir>/partial/` until the end, so a
  killed run called again with the same arguments resumes where it stopped.

  With several processes (see `distributed.initialize`) every process must
  call this with the same arguments: each searches its share of the images,
  the results are gathered, process 0 writes the files and all return the same
  summary.

  Returns:
    The summary dict also written to metrics.json.
  """
  from tqdm import auto as tqdm
  config, g_vars, d_vars = checkpoints.restore_model(checkpoint)
  images = np.asarray(images, np.float32)
  if len(images) != len(names):
    raise ValueError(f'{len(images)} images but {len(names)} names.')
  if len(images) == 0:
    raise ValueError('No images to inpaint.')
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[compute_dtype]
  generator = Generator(config, dtype=dtype)
  discriminator = Discriminator(config, dtype=dtype)
  mask_key, z_key = jax.random.split(jax.random.PRNGKey(seed))
  all_masks = make_masks(mask_kind, mask_file, len(images), config.resolution,
                         mask_key)
  inpaint.validate_inputs(images, all_masks, config.resolution,
                          config.channels)
  share = distributed.process_slice(len(images))
  batch_size = max(1, min(batch_size, share.stop - share.start))
  fingerprint = run_fingerprint(
      (g_vars, d_vars), images, all_masks,
      dict(model=config.to_dict(), search=dataclasses.asdict(search_config),
           batch_size=batch_size, blend=blend, seed=seed,
           compute_dtype=compute_dtype, processes=jax.process_count()))
  resumed = 0
  frames, curves = None, None
  outputs = {'generated': [np.zeros((0,) + images.shape[1:], np.float32)],
             'result': [np.zeros((0,) + images.shape[1:], np.float32)],
             'loss': [np.zeros((0,), np.float32)]}
  start_time = time.time()
  progress = tqdm.tqdm(total=share.stop - share.start, desc='inpaint',
                       unit='img', disable=not show_progress,
                       dynamic_ncols=True)
  for start in range(share.start, share.stop, batch_size):
    count = min(batch_size, share.stop - start)
    batch_masks = _pad_to(all_masks[start:start + count], batch_size)
    saved = _load_partial(output_dir, start, fingerprint)
    if saved is None:
      saved = _search_and_blend(
          generator, discriminator, g_vars, d_vars,
          _pad_to(images[start:start + count], batch_size), batch_masks,
          z_key, search_config, start, blend, count)
      _save_partial(output_dir, start, fingerprint, saved)
    else:
      resumed += count
    for name in outputs:
      outputs[name].append(saved[name])
    if 'frames' in saved and frames is None:
      frames, curves = saved['frames'], saved['loss_curve']
      frame_masks = batch_masks[:count]
    progress.update(count)
  progress.close()
  generated, results, losses = (distributed.gather_rows(np.concatenate(v))
                                for v in outputs.values())
  # The slowest process's time, so that every process returns the same.
  seconds = float(distributed.gather_rows([time.time() - start_time]).max())
  resumed_total = int(distributed.gather_rows([resumed]).sum())
  baseline = np.asarray(mean_fill(images, all_masks))

  per_image = {
      'psnr': np.asarray(metrics.psnr(results, images)),
      'ssim': np.asarray(metrics.ssim(results, images)),
      'psnr_mean_fill': np.asarray(metrics.psnr(baseline, images)),
      'loss': losses,
      'missing_fraction': np.asarray(masks_lib.missing_fraction(all_masks)),
  }
  summary = {
      'checkpoint': os.path.abspath(checkpoint),
      'model': config.to_dict(),
      'search': dataclasses.asdict(search_config),
      'mask': mask_kind or os.path.abspath(mask_file),
      'blend': blend,
      'seed': seed,
      'num_images': len(images),
      # This run's search + blending, compilation included; batches reused
      # from a killed run count neither here nor in images_per_second.
      'seconds': seconds,
      'images_per_second': (len(images) - resumed_total) / seconds,
      'device': jax.devices()[0].device_kind,
      'compute_dtype': compute_dtype,
      'resumed_images': resumed_total,
      **{f'mean_{k}': float(np.mean(v)) for k, v in per_image.items()},
  }
  if jax.process_index() != 0:
    _remove_partial(output_dir, share, batch_size)
    return summary
  os.makedirs(output_dir, exist_ok=True)
  _write_csv(os.path.join(output_dir, 'metrics.csv'), names, per_image)
  with open(os.path.join(output_dir, 'metrics.json'), 'w') as f:
    json.dump(summary, f, indent=2)

  masked = image_io.masked_for_display(images, all_masks)
  rows = slice(0, GRID_ROWS)
  if frames is not None:
    _write_search_progress(output_dir, images[share][:len(frames)],
                           frame_masks, frames, curves)
  image_io.save_png(os.path.join(output_dir, 'grid.png'), image_io.make_grid(
      [masked[rows], generated[rows], results[rows], images[rows]]))
  if save_images:
    for i, name in enumerate(names):
      stem = os.path.splitext(os.path.basename(name))[0]
      for suffix, array in (('masked', masked), ('generated', generated),
                            ('inpainted', results)):
        image_io.save_png(os.path.join(output_dir, 'images',
                                       f'{stem}_{suffix}.png'), array[i])
  _remove_partial(output_dir, share, batch_size)
  return summary


def _search_and_blend(generator, discriminator, g_vars, d_vars, batch,
                      batch_masks, z_key, search_config, start, blend,
                      count) -> dict[str, np.ndarray]:
  """z-search + blending of one (padded) batch; the first `count` rows."""
  corrupted = batch * batch_masks
  result = inpaint.search(generator, discriminator, g_vars, d_vars,
                          corrupted, batch_masks, z_key, search_config,
                          index_offset=start)
  if blend:
    final = blending.poisson_blend(result.generated, corrupted, batch_masks)
  else:
    final = blending.overlay(result.generated, corrupted, batch_masks)
  arrays = {'generated': np.asarray(result.generated)[:count],
            'result': np.asarray(jnp.clip(final, -1, 1))[:count],
            'loss': np.asarray(result.loss)[:count]}
  if result.frames is not None:
    arrays['frames'] = np.asarray(result.frames)[:count]
    arrays['loss_curve'] = np.asarray(result.loss_curve)[:count]
  return arrays


def _remove_partial(output_dir: str, share: slice, batch_size: int) -> None:
  """Deletes this process's partial files once the results are written."""
  for start in range(share.start, share.stop, batch_size):
    path = _partial_path(output_dir, start)
    if os.path.exists(path):
      os.remove(path)
  try:  # the last process to finish removes the folder.
    os.rmdir(os.path.join(output_dir, PARTIAL_DIR))
  except OSError:
    pass


def _write_search_progress(output_dir: str, images: np.ndarray,
                           masks: np.ndarray, frames: np.ndarray,
                           curves: np.ndarray) -> None:
  """search.gif (masked | G(z) | overlay, as the search goes), loss_curves.csv.

  images/masks: (n, H, W, C|1); frames: (n, F, H, W, C); curves: (n, T).
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


def _write_csv(path: str, names: Sequence[str],
               per_image: dict[str, np.ndarray]) -> None:
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(['image'] + list(per_image))
    for i, name in enumerate(names):
      writer.writerow([name] + [f'{float(v[i]):.6g}' for v in per_image.values()])

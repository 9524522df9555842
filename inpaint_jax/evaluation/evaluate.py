"""Inpainting a set of images and scoring the results.

`evaluate` runs an inpainting `methods.Method` (the paper's z-search, a
baseline, an ablation) batch by batch and scores it against the originals,
returning a `results.EvalResult`.
`inpaint_and_evaluate` (what `experiments.inpaint` calls) evaluates the
z-search of a saved model and writes the report files (`results.write_all`).

Results are per-image deterministic: image i gets mask i and initial latent i
whatever the batch size and the number of processes (each fills its
`distributed.process_slice`; process 0 writes). A killed evaluation resumes:
the same call run again fills only the batches not saved in
`<output_dir>/partial/` under the same fingerprint (see `results`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Sequence

import jax
import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax.evaluation import semantic as semantic_lib
from inpaint_jax import distributed
from inpaint_jax import inpaint
from inpaint_jax import masks as masks_lib
from inpaint_jax import methods
from inpaint_jax import metrics
from inpaint_jax import realism
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.evaluation import own_photos
from inpaint_jax.evaluation import results
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation.results import EvalResult

# What `evaluate` takes as `semantic`: (a classifier, the N true labels[,
# the masked-input classifier of the masks' kind or None]). A classifier is
# predict_fn(images (N, H, W, C) in [-1, 1]) -> (N,) ints, or the variables
# of a `semantic_lib.Classifier` with the default config.
Semantic = tuple[Any, ...]

# The key order of metrics.json (the means of the metrics follow).
_SUMMARY_ORDER = ('checkpoint', 'model', 'search', 'mask', 'blend', 'seed',
                  'num_images', 'seconds', 'images_per_second', 'device',
                  'compute_dtype', 'resumed_images')


def make_masks(kind: str | None, mask_file: str | None, n: int, size: int,
               key: jax.Array) -> np.ndarray:
  """(n, size, size, 1) masks: one of masks.KINDS drawn from `key`, or a file.

  Exactly one of `kind` and `mask_file` must be given.
  """
  if (kind is None) == (mask_file is None):
    raise InputError('Give either a mask kind or a mask file, not both.')
  if mask_file is not None:
    mask = masks_lib.from_file(mask_file, size)
    return np.broadcast_to(mask[None], (n,) + mask.shape).copy()
  return np.asarray(masks_lib.make(kind, key, n, size))


def _check_counts(images: np.ndarray, names: Sequence[str],
                  masks: np.ndarray | None = None) -> None:
  if len(images) != len(names):
    raise InputError(f'{len(images)} images but {len(names)} names; give one'
                     ' name per image.')
  if masks is not None and len(masks) != len(images):
    raise InputError(f'{len(images)} images but {len(masks)} masks.')
  if len(images) == 0:
    raise InputError('No images to inpaint.')


def evaluate(method: methods.Method, images: np.ndarray, names: Sequence[str],
             masks: np.ndarray, *, batch_size: int = 64,
             resume_dir: str | None = None,
             show_progress: bool = True,
             semantic: Semantic | None = None) -> EvalResult:
  """Inpaints `images` with `method` and scores the results.

  Args:
    method: the method (e.g. zsearch_method(...)).
    images: (N, H, W, C) float32 originals in [-1, 1]; the masked pixels are
      hidden from the method and used only for scoring.
    names: N names for the per-image files and the metrics table.
    masks: (N, H, W, 1) in {0, 1}, 1 = known pixel.
    batch_size: images per `method.fill` call (the last batch is padded).
    resume_dir: if given, finished batches are saved there and reused by a
      later call with the same method, inputs and batch size, until
      `results.write_all` (or `results.remove_partial`) removes them.
    show_progress: show a tqdm progress bar.
    semantic: optional (classifier, labels): classifier is
      predict_fn(images) -> (N,) int classes, or semantic_lib.Classifier
      variables; labels (N,) ints. Adds the per-image metric 'correct' (1 if
      the inpainted image is classified as its label, else 0; the last
      metrics.csv column) and to the summary 'semantic_accuracy'
      (inpainted), 'semantic_accuracy_originals',
      'semantic_accuracy_masked' (missing pixels at 0) and
      'semantic_accuracy_ratio' (inpainted / originals). A third element,
      the predict_fn of a classifier trained on inputs masked like these
      (`semantic_lib.for_mask`), adds 'semantic_accuracy_ceiling' and
      'semantic_accuracy_of_ceiling' (inpainted / ceiling).

  With several processes (see `distributed.initialize`) every process must
  call this with the same arguments: each fills its share of the images and
  all return the same result (but `frames` only on process 0).

  Returns:
    EvalResult; its summary holds method.settings, 'num_images', 'seconds'
    (this call's filling, compilation included), 'images_per_second' (batches
    reused from a killed run count in neither), 'device', 'resumed_images',
    the mean of every metric and the realism of the set (`realism_scores`:
    'ms_swd', 'ms_swd_mean_fill', 'ms_swd_levels').
  """
  images = np.asarray(images, np.float32)
  masks = np.asarray(masks, np.float32)
  _check_counts(images, names, masks)
  predict_fn, labels, ceiling_fn = semantic_lib.semantic_inputs(
      semantic, len(images))
  share = distributed.process_slice(len(images))
  batch_size = max(1, min(batch_size, share.stop - share.start))
  fingerprint = results.run_fingerprint(
      method.variables, images, masks,
      dict(method.settings, method=method.name, batch_size=batch_size,
           processes=jax.process_count()))
  start_time = time.time()
  outputs, first, resumed = _fill_share(method, images, masks, share,
                                        batch_size, resume_dir, fingerprint,
                                        show_progress)
  outputs = {k: distributed.gather_rows(v) for k, v in outputs.items()}
  # The slowest process's time, so that every process returns the same.
  seconds = float(distributed.gather_rows([time.time() - start_time]).max())
  resumed = int(distributed.gather_rows([resumed]).sum())
  _check_finite(method.name, names, outputs['inpainted'])
  mean_filled = np.asarray(methods.mean_fill(images, masks))
  per_image = _score(images, masks, outputs['inpainted'], mean_filled,
                     {k: outputs[k] for k in method.scores})
  summary = {
      **method.settings,
      'num_images': len(images),
      'seconds': seconds,
      'images_per_second': (len(images) - resumed) / seconds,
      'device': jax.devices()[0].device_kind,
      'resumed_images': resumed,
      **{f'mean_{k}': float(np.mean(v)) for k, v in per_image.items()},
      **realism_scores(images, outputs['inpainted'], mean_filled),
  }
  if predict_fn is not None:
    correct, accuracies = semantic_lib.semantic_scores(
        predict_fn, labels, images, masks, outputs['inpainted'], ceiling_fn)
    per_image['correct'] = correct
    summary.update(accuracies)
  return EvalResult(images=images, masks=masks, names=tuple(names),
                    generated=outputs['generated'],
                    inpainted=outputs['inpainted'], metrics=per_image,
                    summary=summary, method=method.name,
                    frames=first.get('frames'),
                    loss_curve=first.get('loss_curve'))


def _fill_share(method, images, masks, share, batch_size, resume_dir,
                fingerprint, show_progress):
  """Fills this process's share batch by batch, reusing saved batches.

  Returns:
    ({'generated', 'inpainted', *method.scores: this process's rows},
     the arrays of the batch starting at image 0 if this process has it, else
     {}, the number of images reused from saved batches).
  """
  from tqdm import auto as tqdm
  empty = np.zeros((0,) + images.shape[1:], np.float32)
  # Started with empty arrays so that a process without images gathers rows
  # of the right shape.
  outputs = {'generated': [empty], 'inpainted': [empty],
             **{k: [np.zeros((0,), np.float32)] for k in method.scores}}
  first, resumed = {}, 0
  progress = tqdm.tqdm(total=share.stop - share.start, desc='inpaint',
                       unit='img', disable=not show_progress,
                       dynamic_ncols=True)
  for start in range(share.start, share.stop, batch_size):
    count = min(batch_size, share.stop - start)
    saved = (None if resume_dir is None else
             results.load_partial(resume_dir, start, fingerprint))
    if saved is None:
      batch_masks = methods.pad_batch(masks[start:start + count],
                                      batch_size)
      batch = methods.pad_batch(images[start:start + count],
                                batch_size) * batch_masks
      saved = {k: np.asarray(v)[:count]
               for k, v in method.fill(batch, batch_masks, start).items()}
      missing = set(outputs) - set(saved)
      if missing:
        raise ValueError(f'Method {method.name!r} returned no'
                         f' {sorted(missing)}.')
      if resume_dir is not None:
        results.save_partial(resume_dir, start, fingerprint, saved)
    else:
      resumed += count
    for name in outputs:
      outputs[name].append(saved[name])
    if start == 0:
      first = saved
    progress.update(count)
  progress.close()
  return {k: np.concatenate(v) for k, v in outputs.items()}, first, resumed


def _check_finite(method: str, names: Sequence[str],
                  inpainted: np.ndarray) -> None:
  """No NaN or infinite pixel is ever scored (or reported as a PSNR)."""
  bad = np.nonzero(~np.isfinite(inpainted).all(axis=(1, 2, 3)))[0]
  if len(bad):
    raise InputError(
        f'{method} produced NaN or infinite pixels for {len(bad)} image(s),'
        f' e.g. {names[bad[0]]!r}: the model weights are probably damaged'
        ' (check the model directory or export it again).')


def realism_scores(images: np.ndarray, inpainted: np.ndarray,
                   mean_filled: np.ndarray) -> dict[str, Any]:
  """MS-SWD (x10^3) of the inpainted set and of the mean-colour fill against
  the originals: whole images, the same neighbourhoods of image k in both
  sets (`realism.ms_swd`, paired, key 0), so identical sets score 0 and
  methods are compared on the same positions.

  Args:
    images: (N, S, S, 3) originals in [-1, 1].
    inpainted: (N, S, S, 3) in [-1, 1].
    mean_filled: (N, S, S, 3) the originals with the hole in the mean colour
      of the known pixels (`methods.mean_fill`).

  Returns:
    {'ms_swd', 'ms_swd_mean_fill', 'ms_swd_levels': {'swd_<S>': ...}}, or {}
    for images MS-SWD does not take (not RGB, or a side that is not a power
    of 2 >= 16).
  """
  n, size, _, channels = images.shape
  if channels != 3 or size < 16 or size & (size - 1):
    return {}
  key = jax.random.PRNGKey(0)
  ours = realism.ms_swd(inpainted, images, key, paired=True)
  mean_fill = realism.ms_swd(mean_filled, images, key, paired=True)
  return {'ms_swd': ours['ms_swd'], 'ms_swd_mean_fill': mean_fill['ms_swd'],
          'ms_swd_levels': {k: v for k, v in ours.items() if k != 'ms_swd'}}


def _score(images, masks, inpainted, mean_filled,
           scores) -> dict[str, np.ndarray]:
  """Per-image metrics, in metrics.csv column order (see EvalResult)."""
  return {
      'psnr': np.asarray(metrics.psnr(inpainted, images)),
      'ssim': np.asarray(metrics.ssim(inpainted, images)),
      'psnr_mean_fill': np.asarray(metrics.psnr(mean_filled, images)),
      **scores,
      'missing_fraction': np.asarray(masks_lib.missing_fraction(masks)),
  }


def evaluate_checkpoint(checkpoint: str, images: np.ndarray,
                        names: Sequence[str], *,
                        mask_kind: str | None = 'center',
                        mask_file: str | None = None,
                        search_config: SearchConfig = SearchConfig(),
                        batch_size: int = 64, blend: bool = True,
                        seed: int = 0, show_progress: bool = True,
                        compute_dtype: str = 'float32',
                        resume_dir: str | None = None,
                        semantic: Semantic | None = None,
                        masks: np.ndarray | None = None,
                        encoder: Any = None) -> EvalResult:
  """`evaluate` of the z-search with the model in `checkpoint`; writes nothing.

  The arguments are those of `inpaint_and_evaluate` (resume_dir and
  semantic: see `evaluate`; a `semantic_for_split` triple gets the ceiling of
  `mask_kind` where the masks are drawn here). The summary also holds
  'checkpoint' and 'mask', in the key order of metrics.json.
  """
  config, g_vars, d_vars = checkpoints.restore_model(checkpoint)
  images = np.asarray(images, np.float32)
  _check_counts(images, names)
  given_masks = masks is not None
  if masks is None:
    mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
    masks = make_masks(mask_kind, mask_file, len(images), config.resolution,
                       mask_key)
  else:
    masks = np.asarray(masks, np.float32)
    _check_counts(images, names, masks)
  inpaint.validate_inputs(images, masks, config.resolution, config.channels)
  method = methods.zsearch_method(config, g_vars, d_vars, search_config,
                                  blend=blend, compute_dtype=compute_dtype,
                                  seed=seed, encoder=encoder)
  drawn = mask_kind if mask_file is None and not given_masks else None
  evaluated = evaluate(method, images, names, masks, batch_size=batch_size,
                       resume_dir=resume_dir, show_progress=show_progress,
                       semantic=semantic_lib.for_mask(semantic, drawn))
  summary = {'checkpoint': os.path.abspath(checkpoint),
             'mask': (os.path.abspath(mask_file) if mask_file else
                      mask_kind or 'custom'),
             **evaluated.summary}
  if encoder is not None:
    summary['encoder_dir'] = encoder.directory
  ordered = {k: summary[k] for k in _SUMMARY_ORDER}
  ordered.update(summary)
  return dataclasses.replace(evaluated, summary=ordered)


def inpaint_and_evaluate(checkpoint: str, images: np.ndarray,
                         names: Sequence[str], output_dir: str, *,
                         mask_kind: str | None = 'center',
                         mask_file: str | None = None,
                         search_config: SearchConfig = SearchConfig(),
                         batch_size: int = 64, blend: bool = True,
                         seed: int = 0, save_images: bool = True,
                         show_progress: bool = True,
                         compute_dtype: str = 'float32',
                         semantic: Semantic | None = None,
                         masks: np.ndarray | None = None,
                         photos: own_photos.Photos | None = None,
                         encoder: Any = None) -> dict[str, Any]:
  """Inpaints `images` with the model in `checkpoint`; writes the results.

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
    semantic: optional (classifier, labels) for the semantic accuracy (see
      `evaluate`): a 'correct' column in metrics.csv and
      'semantic_accuracy*' in the summary.
    masks: optional (N, R, R, 1) masks, 1 = known, used instead of drawing
      `mask_kind` or reading `mask_file` (which then only names them in the
      summary), e.g. `own_photos.photo_view_masks` of a mask at the photos'
      own size.
    photos: where `images` came from when they are your own photos
      (`own_photos.Photos`): with `save_images`, each is also written
      inpainted at its own size, images/<stem>_fullsize.png
      (`own_photos.write_fullsize`).
    encoder: optional `encoder.LoadedEncoder` trained for this model: the
      search starts from its predicted z (`methods.zsearch_method`).

  A killed run called again with the same arguments resumes where it stopped
  (finished batches are kept in `<output_dir>/partial/` until the end). With
  several processes every process must call this with the same arguments
  (see `evaluate`); process 0 writes the files, all return the same summary.

  `output_dir` is made and checked, and locked for the whole call, before
  anything else (`output_dirs.locked_output_dir`): an unusable folder, or one
  another live run is writing to, raises InputError at once. Report files an
  earlier run left there that this one does not write are removed
  (`results.write_all`).

  Returns:
    The summary dict also written to metrics.json.
  """
  # Checked and locked first: a bad folder or a second run into the same one
  # is refused before the model is restored or any search runs.
  with output_dirs.locked_output_dir(output_dir):
    evaluated = evaluate_checkpoint(
        checkpoint, images, names, mask_kind=mask_kind, mask_file=mask_file,
        search_config=search_config, batch_size=batch_size, blend=blend,
        seed=seed, show_progress=show_progress, compute_dtype=compute_dtype,
        resume_dir=output_dir, semantic=semantic, masks=masks,
        encoder=encoder)
    results.write_all(output_dir, evaluated, save_images=save_images)
    if photos is not None and save_images and jax.process_index() == 0:
      own_photos.write_fullsize(
          os.path.join(output_dir, results.IMAGES_DIR), photos,
          evaluated.names, evaluated.generated, evaluated.masks, blend=blend)
  return evaluated.summary

"""The paper's quantitative comparison (Table 1 and beyond), from one call.

`reproduce` runs every method on the same test images with the same masks
(fixed seed) per (data set, mask type), through `evaluate.evaluate`, and
scores each on the whole image and on the hole only (PSNR, SSIM: mean and a
95 % confidence interval). Every (data set, mask, method) cell keeps the usual
result folder (grid, metrics) and resumes like `experiments.inpaint`; it also
gets `arrays.npz` (`save_cell_arrays`: the images, masks, results, per-image
scores and recorded search frames that `figures` draws), and a cell whose
arrays.npz matches its fingerprint is not run again (`load_cell_row`).
`report.tables.write_tables` writes the rows as results.csv and Table 1 as
the paper prints it, with the paper's numbers beside ours, the same with
SSIM, and a full table of all methods.

Methods: 'ours' (z-search + Poisson blending), the ablations 'ours_noblend'
(Fig. 5) and 'ours_lam0' (no prior loss, Fig. 4), the Context Encoder 'ce'
(Pathak et al. 2016, `context_encoder`: one model per data set, its
prediction pasted into the hole) and the baselines 'tv', 'lr', 'nn', 'pm'
(`baselines`). Beyond the paper, run only when asked for (`EXTRA_METHODS`):
'mean_fill', the hole filled with the known pixels' mean colour, and
'ours_average', the pixel mean of 'ours' from AVERAGED_SEEDS seeds (an
estimate of the posterior mean under the model: what PSNR rewards most, see
`methods.average_method`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import json
import os
import platform
import tempfile
from typing import Any, Callable, Sequence
import zipfile

import jax
import numpy as np

from inpaint_jax.baselines import classical
from inpaint_jax import checkpoints
from inpaint_jax.evaluation import evaluate
from inpaint_jax import metrics
from inpaint_jax import methods
from inpaint_jax import refine
from inpaint_jax.baselines import context_encoder
from inpaint_jax.baselines import opencv
from inpaint_jax.data import images as image_io
from inpaint_jax.evaluation import results
from inpaint_jax.evaluation import semantic as semantic_lib
from inpaint_jax.config import SearchConfig
from inpaint_jax.report import cells
from inpaint_jax.report import tables

METHODS = ('ours', 'ours_noblend', 'ours_lam0', 'ce', 'tv', 'lr', 'nn', 'pm',
           'opencv_telea', 'opencv_ns')
EXTRA_METHODS = ('mean_fill', 'ours_average', 'ours_ilo', 'ours_finetune',
                 'ours_ilo_finetune', 'ours_ilo_average')
# Methods whose z-search is another's but for the blending: run after it in
# one call, they reuse its G(z) (`methods.reuse_generated_method`).
SAME_SEARCH = {'ours_noblend': 'ours'}
# Seeds of the z-search that 'ours_average' averages.
AVERAGED_SEEDS = 4
# The importance window of each shipped model's card (chosen on validation).
CARD_WINDOWS = {'celeba': 7, 'svhn': 15, 'cars': 15}
# Per-image numbers kept in arrays.npz ('loss' where the method has one).
KEPT_SCORES = tables.SCORES + ('loss', 'correct')
# Images whose recorded search (frames, loss curve) arrays.npz keeps.
KEPT_FRAMES = 8
# Frames of the z-search animation when --record_every is not given.
DEFAULT_FRAMES = 15


def hole_scores(result: results.EvalResult) -> dict[str, np.ndarray]:
  """Per-image PSNR and SSIM of the inpainted images on the hole only."""
  hole = 1.0 - result.masks
  return {
      'psnr_hole': np.asarray(metrics.psnr_in(result.inpainted,
                                              result.images, hole)),
      'ssim_hole': np.asarray(metrics.ssim_in(result.inpainted,
                                              result.images, hole)),
  }


def default_record_every(search_config: SearchConfig) -> int:
  """Steps between recorded frames of 'ours': about DEFAULT_FRAMES frames.

  0 (no recording) when the search stops early (`stop_tolerance` > 0), which
  SearchConfig refuses to combine with recording, or is too short.
  """
  if search_config.stop_tolerance > 0:
    return 0
  return search_config.iterations // DEFAULT_FRAMES


def method_factories(model_dir: str, search_config: SearchConfig,
                     train_images: np.ndarray | None,
                     ce_model_dir: str | None = None,
                     record_every: int = 0
                     ) -> dict[str, Callable[[], methods.Method]]:
  """name -> a function making that Method (models are loaded lazily).

  'nn' is there only with `train_images`, 'ce' only when `ce_model_dir`
  holds a Context Encoder (`context_encoder.is_model_dir`), 'opencv_telea'
  and 'opencv_ns' only where OpenCV is installed (`opencv.available`). `record_every`
  > 0 records the search of 'ours' (G(z) every that many steps, for Fig. 3b
  and search.gif; `search_config.stop_tolerance` must then be 0); the
  ablations never record.
  """

  # One restore serves every 'ours' variant of every mask (run_cell makes
  # each method anew per cell, if only to fingerprint it).
  restored = functools.cache(lambda: checkpoints.restore_model(model_dir))

  def ours(seed=0, **changes):
    config, g_vars, d_vars = restored()
    blend = changes.pop('blend', True)
    return methods.zsearch_method(
        config, g_vars, d_vars, dataclasses.replace(search_config, **changes),
        blend=blend, seed=seed)

  factories = {
      'ours': lambda: ours(record_every=record_every),
      'ours_noblend': lambda: ours(blend=False, record_every=0),
      'ours_lam0': lambda: ours(lam=0.0, record_every=0),
      'tv': classical.tv_method,
      'lr': classical.lr_method,
      'pm': classical.pm_method,
      'mean_fill': methods.mean_fill_method,
      'ours_average': lambda: methods.average_method('ours_average', [
          ours(seed=seed, record_every=0) for seed in range(AVERAGED_SEEDS)]),
      'ours_ilo_average': lambda: methods.average_method(
          'ours_ilo_average', [ours(seed=seed, record_every=0,
                                    **refine.PRESETS['ilo'])
                               for seed in range(AVERAGED_SEEDS)]),
  }
  for name, preset in refine.PRESETS.items():
    factories[f'ours_{name}'] = functools.partial(ours, record_every=0,
                                                  **preset)
  if train_images is not None:
    factories['nn'] = lambda: classical.nn_method(train_images)
  if opencv.available():
    for algorithm in opencv.ALGORITHMS:
      factories[f'opencv_{algorithm}'] = functools.partial(
          opencv.opencv_method, algorithm)
  if context_encoder.is_model_dir(ce_model_dir):
    factories['ce'] = lambda: context_encoder.context_encoder_method(
        ce_model_dir)
  return factories


def summary_row(dataset: str, kind: str, method: str,
                per_image: dict[str, np.ndarray],
                summary: dict[str, Any] | None = None) -> dict[str, Any]:
  """One row of results.csv: mean and 95 % half-width of every SCORES.

  With `summary` (evaluate.evaluate's) also 'ms_swd', the realism of the
  set (no interval: it is a distance between sets, not a per-image mean).
  With a semantic evaluation (per_image 'correct', `summary` from
  evaluate.evaluate with `semantic`) also the SEMANTIC columns: the
  classifier's accuracy on the inpainted images (with its interval), on the
  originals and on the masked input.
  """
  row = {'dataset': dataset, 'mask': kind, 'method': method,
         'images': len(per_image['psnr'])}
  for score in tables.SCORES:
    row[score], row[f'{score}_ci95'] = metrics.confidence_interval(per_image[score])
  if summary and 'ms_swd' in summary:
    row['ms_swd'] = summary['ms_swd']
  if 'correct' in per_image:
    row['semantic_accuracy'], row['semantic_accuracy_ci95'] = (
        metrics.confidence_interval(per_image['correct']))
    for key in tables.SEMANTIC[2:]:
      row[key] = summary[key]
  return row


def cell_fingerprint(method: methods.Method, name: str, images: np.ndarray,
                     masks: np.ndarray, semantic: bool = False) -> str:
  """What a cell's arrays.npz is valid for: the method's variables and
  settings (as `evaluate` fingerprints them, less the batch size, which does
  not change the results), its name in the comparison, images and masks,
  and whether its row has the semantic accuracy."""
  settings = dict(method.settings, method=method.name, comparison_name=name)
  if semantic:
    settings['semantic'] = True
  return results.run_fingerprint(method.variables, images, masks, settings)


def save_cell_arrays(folder: str, result: results.EvalResult,
                     per_image: dict[str, np.ndarray], row: dict[str, Any],
                     fingerprint: str) -> str:
  """Writes `<folder>/arrays.npz` atomically; returns its path.

  It holds 'images', 'generated', 'inpainted' ((N, H, W, C) uint8,
  `images.to_uint8` of [-1, 1]), 'masks' ((N, H, W, 1) uint8, 1 = known),
  'names', 'metric_<score>' ((N,) float32, for each of KEPT_SCORES that
  `per_image` has), when the search was recorded 'frames' ((n, F, H, W, C)
  uint8, n <= KEPT_FRAMES), 'frame_steps' ((F,) the step of each frame) and
  'loss_curve' ((n, T) float32), and as strings 'summary' (JSON: what
  metrics.json holds, the method's settings among it), 'row' (JSON: the
  summary row) and 'fingerprint'.
  """
  arrays = {
      'images': image_io.to_uint8(result.images),
      'masks': (np.asarray(result.masks) > 0.5).astype(np.uint8),
      'generated': image_io.to_uint8(result.generated),
      'inpainted': image_io.to_uint8(result.inpainted),
      'names': np.asarray([str(n) for n in result.names]),
      **{f'metric_{k}': np.asarray(per_image[k], np.float32)
         for k in KEPT_SCORES if k in per_image},
      'summary': np.asarray(json.dumps(result.summary, default=str)),
      'row': np.asarray(json.dumps(row)),
      'fingerprint': np.asarray(fingerprint),
  }
  if result.frames is not None:
    frames = np.asarray(result.frames[:KEPT_FRAMES])
    arrays['frames'] = image_io.to_uint8(frames)
    arrays['loss_curve'] = np.asarray(result.loss_curve[:KEPT_FRAMES],
                                      np.float32)
    search = result.summary.get('search', {})
    every = search.get('record_every', 1) or 1
    arrays['frame_steps'] = np.minimum(
        np.arange(frames.shape[1]) * every,
        search.get('iterations', frames.shape[1] * every))
  path = os.path.join(folder, cells.ARRAYS_FILE)
  os.makedirs(folder, exist_ok=True)
  fd, temporary = tempfile.mkstemp(prefix=cells.ARRAYS_FILE + '.',
                                   suffix='.tmp', dir=folder)
  try:
    with os.fdopen(fd, 'wb') as f:
      np.savez_compressed(f, **arrays)
    os.chmod(temporary, 0o644)  # mkstemp makes it private
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise
  return path


def load_cell_row(folder: str, fingerprint: str) -> dict[str, Any] | None:
  """The summary row saved in `<folder>/arrays.npz` under `fingerprint`.

  None when there is none, it was saved under another fingerprint (other
  settings, model, images or masks) or cannot be read.
  """
  try:
    with np.load(os.path.join(folder, cells.ARRAYS_FILE)) as saved:
      if str(saved['fingerprint']) != fingerprint:
        return None
      return json.loads(str(saved['row']))
  except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
    return None


def run_cell(dataset: str, kind: str, images: np.ndarray,
             names: Sequence[str], factories: dict[str, Callable[[], Any]],
             method_names: Sequence[str], output_dir: str,
             batch_size: int = 64, seed: int = 0,
             show_progress: bool = True,
             semantic: evaluate.Semantic | None = None
             ) -> list[dict[str, Any]]:
  """Every method on one (data set, mask) cell; one summary row each.

  With `semantic` (evaluate.evaluate's (classifier, labels[, ceiling_fn]))
  the rows also hold the SEMANTIC columns (and with a ceiling_fn, the
  classifier of inputs masked like this cell's, tables.CEILING).

  Each method's results go to `<output_dir>/<dataset>/<kind>/<method>/`
  (the report files of `results.write_all` and `save_cell_arrays`). A method
  whose arrays.npz was saved with the same fingerprint (`cell_fingerprint`)
  is not run again: its row is read back. Otherwise `evaluate.evaluate`
  runs it, resuming from its saved batches; 'ours_noblend' right after 'ours'
  ran reuses its G(z) (SAME_SEARCH: same search, only the blend differs).
  """
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = evaluate.make_masks(kind, None, len(images), images.shape[1],
                              mask_key)
  ceiling_fn = None
  if semantic is not None and len(semantic) == 3:
    # The ceiling belongs to the cell, not to a method: scored once below,
    # so rows saved before it existed are not run again.
    semantic, ceiling_fn = semantic[:2], semantic[2]
  rows = []
  searched = {}  # 'ours' -> its G(z) and scores, when it ran in this call
  for name in method_names:
    folder = os.path.join(output_dir, dataset, kind, name)
    method = factories[name]()
    fingerprint = cell_fingerprint(method, name, images, masks,
                                   semantic is not None)
    row = load_cell_row(folder, fingerprint)
    if row is None:
      reused = SAME_SEARCH.get(name) in searched
      if reused:
        method = methods.reuse_generated_method(
            method, *searched[SAME_SEARCH[name]])
      result = evaluate.evaluate(method, images, names, masks,
                                 batch_size=batch_size, resume_dir=folder,
                                 show_progress=show_progress,
                                 semantic=semantic)
      if reused:  # its 'seconds' are then the blending's alone
        result.summary['search_reused_from'] = SAME_SEARCH[name]
      results.write_all(folder, result, save_images=False)
      per_image = {**result.metrics, **hole_scores(result)}
      row = summary_row(dataset, kind, name, per_image, result.summary)
      if name in SAME_SEARCH.values():
        searched[name] = (result.generated,
                          {k: result.metrics[k] for k in method.scores})
      if jax.process_index() == 0:  # as write_all; the frames are only here
        save_cell_arrays(folder, result, per_image, row, fingerprint)
    rows.append(row)
  if ceiling_fn is not None:
    ceiling = semantic_lib.ceiling_accuracy(ceiling_fn, semantic[1], images,
                                            masks)
    for row in rows:
      if 'semantic_accuracy' in row:
        row[tables.CEILING] = ceiling
  return rows


def machine_description() -> str:
  """This machine in one line: platform, CPU count, jax version, device."""
  return (f'{platform.platform()}, {os.cpu_count()} CPUs, jax'
          f' {jax.__version__}, {jax.device_count()} x'
          f' {jax.devices()[0].device_kind}')


def model_checksum(model_dir: str) -> str | None:
  """The `variables_sha256` a model directory records (DCGAN or Context
  Encoder), or None when it has none."""
  for name in (checkpoints.CONFIG_FILE, context_encoder.CONFIG_FILE):
    try:
      with open(os.path.join(model_dir, name)) as f:
        return json.load(f).get('variables_sha256')
    except (OSError, ValueError):
      continue
  return None


def utc_now() -> str:
  """The current time, e.g. '2026-11-25 19:51 UTC'."""
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%d %H:%M UTC')

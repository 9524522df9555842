"""The paper's quantitative comparison (Table 1 and beyond), from one call.

`reproduce` runs every method on the same test images with the same masks
(fixed seed) per (data set, mask type), through `evaluate.evaluate`, and
scores each on the whole image and on the hole only (PSNR, SSIM: mean and a
95 % confidence interval). Every (data set, mask, method) cell keeps the usual
result folder (grid, metrics) and resumes like `experiments.inpaint`; it also
gets `arrays.npz` (`save_cell_arrays`: the images, masks, results, per-image
scores and recorded search frames that `figures` draws), and a cell whose
arrays.npz matches its fingerprint is not run again (`load_cell_row`).
`write_tables` writes Table 1 as the paper prints it, with the paper's
numbers beside ours, the same with SSIM, and a full table of all methods.

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
import csv
import dataclasses
import datetime
import functools
import json
import math
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
from inpaint_jax.baselines import context_encoder
from inpaint_jax.data import images as image_io
from inpaint_jax.evaluation import results
from inpaint_jax.config import SearchConfig

# Table 1 of the paper: PSNR (dB) of (Context Encoder, ours).
PAPER_TABLE1 = {
    ('celeba', 'center'): (21.3, 19.4), ('svhn', 'center'): (22.3, 19.0),
    ('cars', 'center'): (14.1, 13.5), ('celeba', 'pattern'): (19.2, 17.4),
    ('svhn', 'pattern'): (22.3, 19.8), ('cars', 'pattern'): (14.0, 14.1),
    ('celeba', 'random'): (20.6, 22.8), ('svhn', 'random'): (24.1, 33.0),
    ('cars', 'random'): (16.1, 18.9), ('celeba', 'half'): (15.5, 13.7),
    ('svhn', 'half'): (19.1, 14.6), ('cars', 'half'): (12.6, 11.1),
}
METHODS = ('ours', 'ours_noblend', 'ours_lam0', 'ce', 'tv', 'lr', 'nn', 'pm')
EXTRA_METHODS = ('mean_fill', 'ours_average')
# Seeds of the z-search that 'ours_average' averages.
AVERAGED_SEEDS = 4
# The importance window of each shipped model's card (chosen on validation).
CARD_WINDOWS = {'celeba': 7, 'svhn': 15, 'cars': 15}
SCORES = ('psnr', 'ssim', 'psnr_hole', 'ssim_hole')
# With a digit classifier (SVHN): accuracy on the inpainted images (mean and
# 95 % half-width), on the originals and on the masked input.
SEMANTIC = ('semantic_accuracy', 'semantic_accuracy_ci95',
            'semantic_accuracy_originals', 'semantic_accuracy_masked')
# What arrays.npz keeps of each cell (see `save_cell_arrays`).
ARRAYS_FILE = 'arrays.npz'
# Per-image numbers kept in arrays.npz ('loss' where the method has one).
KEPT_SCORES = SCORES + ('loss', 'correct')
# Images whose recorded search (frames, loss curve) arrays.npz keeps.
KEPT_FRAMES = 8
# Frames of the z-search animation when --record_every is not given.
DEFAULT_FRAMES = 15


def confidence_interval(values: np.ndarray) -> tuple[float, float]:
  """(mean, half-width of the normal-approximation 95 % interval)."""
  values = np.asarray(values, np.float64)
  if len(values) < 2:
    return float(np.mean(values)), float('nan')
  return (float(np.mean(values)),
          float(1.96 * np.std(values, ddof=1) / math.sqrt(len(values))))


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
  holds a Context Encoder (`context_encoder.is_model_dir`). `record_every`
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
  }
  if train_images is not None:
    factories['nn'] = lambda: classical.nn_method(train_images)
  if context_encoder.is_model_dir(ce_model_dir):
    factories['ce'] = lambda: context_encoder.context_encoder_method(
        ce_model_dir)
  return factories


def summary_row(dataset: str, kind: str, method: str,
                per_image: dict[str, np.ndarray],
                summary: dict[str, Any] | None = None) -> dict[str, Any]:
  """One row of results.csv: mean and 95 % half-width of every SCORES.

  With a semantic evaluation (per_image 'correct', `summary` from
  evaluate.evaluate with `semantic`) also the SEMANTIC columns: the
  classifier's accuracy on the inpainted images (with its interval), on the
  originals and on the masked input.
  """
  row = {'dataset': dataset, 'mask': kind, 'method': method,
         'images': len(per_image['psnr'])}
  for score in SCORES:
    row[score], row[f'{score}_ci95'] = confidence_interval(per_image[score])
  if 'correct' in per_image:
    row['semantic_accuracy'], row['semantic_accuracy_ci95'] = (
        confidence_interval(per_image['correct']))
    for key in SEMANTIC[2:]:
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
  path = os.path.join(folder, ARRAYS_FILE)
  os.makedirs(folder, exist_ok=True)
  fd, temporary = tempfile.mkstemp(prefix=ARRAYS_FILE + '.', suffix='.tmp',
                                   dir=folder)
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
    with np.load(os.path.join(folder, ARRAYS_FILE)) as saved:
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

  With `semantic` (evaluate.evaluate's (classifier, labels)) the rows also
  hold the SEMANTIC columns.

  Each method's results go to `<output_dir>/<dataset>/<kind>/<method>/`
  (the report files of `results.write_all` and `save_cell_arrays`). A method
  whose arrays.npz was saved with the same fingerprint (`cell_fingerprint`)
  is not run again: its row is read back. Otherwise `evaluate.evaluate`
  runs it, resuming from its saved batches.
  """
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = evaluate.make_masks(kind, None, len(images), images.shape[1],
                              mask_key)
  rows = []
  for name in method_names:
    folder = os.path.join(output_dir, dataset, kind, name)
    method = factories[name]()
    fingerprint = cell_fingerprint(method, name, images, masks,
                                   semantic is not None)
    row = load_cell_row(folder, fingerprint)
    if row is None:
      result = evaluate.evaluate(method, images, names, masks,
                                 batch_size=batch_size, resume_dir=folder,
                                 show_progress=show_progress,
                                 semantic=semantic)
      results.write_all(folder, result, save_images=False)
      per_image = {**result.metrics, **hole_scores(result)}
      row = summary_row(dataset, kind, name, per_image, result.summary)
      if jax.process_index() == 0:  # as write_all; the frames are only here
        save_cell_arrays(folder, result, per_image, row, fingerprint)
    rows.append(row)
  return rows


def _by_cell(rows):
  return {(r['dataset'], r['mask'], r['method']): r for r in rows}


def _in_order(rows, key):
  return list(dict.fromkeys(r[key] for r in rows))


def _mean_ci(row, score, digits=2):
  if not row:
    return '-'
  return f"{row[score]:.{digits}f} ± {row[score + '_ci95']:.{digits}f}"


def table1_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """Table 1 (PSNR, dB): the paper's CE / ours, then our CE and ours here
  (mean ± 95 % half-width; '-' where a method did not run)."""
  by_cell = _by_cell(rows)
  datasets = _in_order(rows, 'dataset')
  lines = ['| mask | ' + ' | '.join(
      f'{d}: paper CE / ours | {d}: CE here | {d}: ours here'
      for d in datasets) + ' |',
           '| --- |' + ' --- | --- | --- |' * len(datasets)]
  for kind in _in_order(rows, 'mask'):
    cells = []
    for d in datasets:
      ce, paper_ours = PAPER_TABLE1.get((d, kind), (float('nan'),) * 2)
      cells += [f'{ce} / {paper_ours}',
                _mean_ci(by_cell.get((d, kind, 'ce')), 'psnr'),
                _mean_ci(by_cell.get((d, kind, 'ours')), 'psnr')]
    lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def table1_ssim_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """Table 1 with SSIM: our CE and ours per data set (the paper gives no
  SSIM); '-' where a method did not run."""
  by_cell = _by_cell(rows)
  datasets = _in_order(rows, 'dataset')
  lines = ['| mask | ' + ' | '.join(
      f'{d}: CE here | {d}: ours here' for d in datasets) + ' |',
           '| --- |' + ' --- | --- |' * len(datasets)]
  for kind in _in_order(rows, 'mask'):
    cells = [_mean_ci(by_cell.get((d, kind, m)), 'ssim', 3)
             for d in datasets for m in ('ce', 'ours')]
    lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def table_all_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """Every row: PSNR and SSIM on the whole image and on the hole only."""
  lines = ['| data set | mask | method | PSNR | SSIM | PSNR hole | SSIM hole |',
           '| --- | --- | --- | --- | --- | --- | --- |']
  for r in rows:
    lines.append(
        f"| {r['dataset']} | {r['mask']} | {r['method']} | "
        + ' | '.join(_mean_ci(r, s, 3) for s in SCORES) + ' |')
  return '\n'.join(lines) + '\n'


def table_semantic_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """The digit classifier's accuracy per (data set, mask): on the originals,
  the masked input and each method's result (with its 95 % interval and,
  in brackets, its ratio to the originals' accuracy)."""
  rows = [r for r in rows if r.get('semantic_accuracy') is not None]
  if not rows:
    return 'No data set of this run has labels for the semantic accuracy.\n'
  method_names = _in_order(rows, 'method')
  lines = ['| data set | mask | originals | masked input | '
           + ' | '.join(method_names) + ' |',
           '| --- | --- | --- | --- |' + ' --- |' * len(method_names)]
  by_cell = _by_cell(rows)
  for dataset in _in_order(rows, 'dataset'):
    for kind in _in_order(rows, 'mask'):
      here = [by_cell.get((dataset, kind, m)) for m in method_names]
      first = next((r for r in here if r), None)
      if first is None:
        continue
      originals = first['semantic_accuracy_originals']
      cells = [f"{r['semantic_accuracy']:.3f} ± "
               f"{r['semantic_accuracy_ci95']:.3f}"
               + (f" ({r['semantic_accuracy'] / originals:.2f})"
                  if originals else '') if r else '-' for r in here]
      lines.append(f'| {dataset} | {kind} | {originals:.3f} |'
                   f" {first['semantic_accuracy_masked']:.3f} | "
                   + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


TABLES = {'table1.md': table1_markdown, 'table1_ssim.md': table1_ssim_markdown,
          'table_all.md': table_all_markdown,
          'table_semantic.md': table_semantic_markdown}


def write_tables(rows: Sequence[dict[str, Any]], output_dir: str) -> None:
  """results.csv (every row), table1.md (PSNR: paper CE / ours, then our
  CE and ours here; '-' where a method did not run), table1_ssim.md (the
  same with SSIM, CE and ours here), table_all.md (every method, PSNR
  and SSIM, whole and hole) and table_semantic.md (the digit classifier's
  accuracy, where the run has it)."""
  os.makedirs(output_dir, exist_ok=True)
  columns = ['dataset', 'mask', 'method', 'images'] + [
      c for s in SCORES for c in (s, f'{s}_ci95')] + list(SEMANTIC)
  with open(os.path.join(output_dir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, columns, restval='')
    writer.writeheader()
    writer.writerows(rows)
  for name, markdown in TABLES.items():
    with open(os.path.join(output_dir, name), 'w') as f:
      f.write(markdown(rows))


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

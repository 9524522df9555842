"""The paper's quantitative comparison (Table 1 and beyond), from one call.

`reproduce` runs every method on the same test images with the same masks
(fixed seed) per (data set, mask type), through `evaluate.evaluate`, and
scores each on the whole image and on the hole only (PSNR, SSIM: mean and a
95 % confidence interval). Every (data set, mask, method) cell keeps the usual
result folder (grid, metrics, per-image PNGs) and resumes like
`experiments.inpaint`. `write_tables` writes Table 1 as the paper prints it,
with the paper's numbers beside ours, and a full table of all methods.

Methods: 'ours' (z-search + Poisson blending), the ablations 'ours_noblend'
(Fig. 5) and 'ours_lam0' (no prior loss, Fig. 4), the Context Encoder 'ce'
(Pathak et al. 2016, `context_encoder`: one model per data set, its
prediction pasted into the hole) and the baselines 'tv', 'lr', 'nn', 'pm'
(`baselines`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import Any, Callable, Sequence

import jax
import numpy as np

from inpaint_jax import baselines, checkpoints, evaluate, metrics, methods
from inpaint_jax import context_encoder
from inpaint_jax import results
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
# The importance window of each shipped model's card (chosen on validation).
CARD_WINDOWS = {'celeba': 7, 'svhn': 15, 'cars': 15}
SCORES = ('psnr', 'ssim', 'psnr_hole', 'ssim_hole')


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


def method_factories(model_dir: str, search_config: SearchConfig,
                     train_images: np.ndarray | None,
                     ce_model_dir: str | None = None
                     ) -> dict[str, Callable[[], methods.Method]]:
  """name -> a function making that Method (models are loaded lazily).

  'nn' is there only with `train_images`, 'ce' only when `ce_model_dir`
  holds a Context Encoder (`context_encoder.is_model_dir`).
  """

  def ours(**changes):
    config, g_vars, d_vars = checkpoints.restore_model(model_dir)
    blend = changes.pop('blend', True)
    return methods.zsearch_method(
        config, g_vars, d_vars, dataclasses.replace(search_config, **changes),
        blend=blend)

  factories = {
      'ours': ours,
      'ours_noblend': lambda: ours(blend=False),
      'ours_lam0': lambda: ours(lam=0.0),
      'tv': baselines.tv_method,
      'lr': baselines.lr_method,
      'pm': baselines.pm_method,
  }
  if train_images is not None:
    factories['nn'] = lambda: baselines.nn_method(train_images)
  if context_encoder.is_model_dir(ce_model_dir):
    factories['ce'] = lambda: context_encoder.context_encoder_method(
        ce_model_dir)
  return factories


def run_cell(dataset: str, kind: str, images: np.ndarray,
             names: Sequence[str], factories: dict[str, Callable[[], Any]],
             method_names: Sequence[str], output_dir: str,
             batch_size: int = 64, seed: int = 0,
             show_progress: bool = True) -> list[dict[str, Any]]:
  """Every method on one (data set, mask) cell; one summary row each."""
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = evaluate.make_masks(kind, None, len(images), images.shape[1],
                              mask_key)
  rows = []
  for name in method_names:
    folder = os.path.join(output_dir, dataset, kind, name)
    result = evaluate.evaluate(factories[name](), images, names, masks,
                               batch_size=batch_size, resume_dir=folder,
                               show_progress=show_progress)
    results.write_all(folder, result, save_images=False)
    per_image = {**result.metrics, **hole_scores(result)}
    row = {'dataset': dataset, 'mask': kind, 'method': name,
           'images': len(images)}
    for score in SCORES:
      row[score], row[f'{score}_ci95'] = confidence_interval(per_image[score])
    rows.append(row)
  return rows


def write_tables(rows: Sequence[dict[str, Any]], output_dir: str) -> None:
  """results.csv (every row), table1.md (PSNR: paper CE / ours, then our
  CE and ours here; '-' where a method did not run) and table_all.md (every
  method, PSNR and SSIM, whole and hole)."""
  os.makedirs(output_dir, exist_ok=True)
  columns = ['dataset', 'mask', 'method', 'images'] + [
      c for s in SCORES for c in (s, f'{s}_ci95')]
  with open(os.path.join(output_dir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
  by_cell = {(r['dataset'], r['mask'], r['method']): r for r in rows}
  datasets = list(dict.fromkeys(r['dataset'] for r in rows))
  kinds = list(dict.fromkeys(r['mask'] for r in rows))
  lines = ['| mask | ' + ' | '.join(
      f'{d}: paper CE / ours | {d}: CE here | {d}: ours here'
      for d in datasets) + ' |',
           '| --- |' + ' --- | --- | --- |' * len(datasets)]

  def here(row):
    return f"{row['psnr']:.2f} ± {row['psnr_ci95']:.2f}" if row else '-'

  for kind in kinds:
    cells = []
    for d in datasets:
      ce, paper_ours = PAPER_TABLE1.get((d, kind), (float('nan'),) * 2)
      cells += [f'{ce} / {paper_ours}', here(by_cell.get((d, kind, 'ce'))),
                here(by_cell.get((d, kind, 'ours')))]
    lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
  with open(os.path.join(output_dir, 'table1.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  lines = ['| data set | mask | method | PSNR | SSIM | PSNR hole | SSIM hole |',
           '| --- | --- | --- | --- | --- | --- | --- |']
  for r in rows:
    lines.append(
        f"| {r['dataset']} | {r['mask']} | {r['method']} | "
        + ' | '.join(f"{r[s]:.3f} ± {r[s + '_ci95']:.3f}" for s in SCORES)
        + ' |')
  with open(os.path.join(output_dir, 'table_all.md'), 'w') as f:
    f.write('\n'.join(lines) + '\n')

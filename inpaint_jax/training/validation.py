"""Validation curves of a training run: inpainting PSNR of its checkpoints.

`validation_curve` evaluates every kept training checkpoint of a run (or every
`every`-th step) with the z-search on the validation slice (the last
`input_pipeline.VALIDATION_HOLDOUT` train images, never trained on), for a few
mask types, and appends one JSON line per (step, mask) to
`<workdir>/validation.jsonl`: what a choice of training length or width is
made on. It resumes: pairs already in the file are not evaluated again.
`plot_curves` draws the file as validation.png, `compare_runs` several
runs' curves against wall time; `best_step` reads the step to ship from it
(`export.export_checkpoint` writes that step as a model directory).

Realism (#29, `realism.ms_swd`): every row holds 'ms_swd', the MS-SWD of the
inpainted validation images against the originals (paired); given a
reference set (the validation slice), also 'samples_ms_swd', the MS-SWD of
as many samples of G (fixed latents) against it, and given a train slice of
the same size, 'samples_ms_swd_floor', the real-vs-real distance no
generator can go below on these sets (drawn as validation_realism.png).
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from inpaint_jax.training import run_state
from inpaint_jax.evaluation import evaluate
from inpaint_jax.training import train_dcgan
from inpaint_jax.data import input_pipeline
from inpaint_jax import methods
from inpaint_jax.config import SearchConfig
from inpaint_jax.evaluation import sample_realism
from inpaint_jax.errors import InputError
from inpaint_jax.report import charts

CURVE_FILE = 'validation.jsonl'
PLOT_FILE = 'validation.png'
REALISM_PLOT_FILE = 'validation_realism.png'


def run_validation_images(workdir: str, dataset: str, limit: int,
                          source: str = 'folder', data_dir: str | None = None
                          ) -> tuple[np.ndarray, list[str]]:
  """(images, names): the first `limit` images of the data set's validation
  slice at the resolution of the training run in `workdir`, in [-1, 1]."""
  model_config, _ = train_dcgan.run_configs(workdir)
  return input_pipeline.load_split(dataset, 'validation', source=source,
                                   data_dir=data_dir,
                                   size=model_config.resolution, limit=limit)


# The numbers of every row that the curves, exports and comparisons read.
_ROW_NUMBERS = ('wall_seconds', 'num_images', 'iterations', 'window',
                'mean_psnr', 'mean_psnr_mean_fill')


def read_curve(workdir: str) -> list[dict[str, Any]]:
  """The rows of `<workdir>/validation.jsonl` (an empty list if none).

  InputError names the first damaged line (not JSON, or a row without the
  fields validation_curve writes, e.g. cut short by a killed run).
  """
  path = os.path.join(workdir, CURVE_FILE)
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
        valid = (isinstance(row, dict) and isinstance(row.get('step'), int)
                 and isinstance(row.get('mask'), str)
                 and all(isinstance(row.get(k), (int, float))
                         for k in _ROW_NUMBERS))
      except ValueError:
        valid = False
      if not valid:
        raise InputError(
            f'{path} line {number} is damaged: delete that line (its step is'
            ' evaluated again by experiments.validation_curve).')
      rows.append(row)
  return rows


def validation_curve(workdir: str, images: np.ndarray, names: Sequence[str],
                     kinds: Sequence[str] = ('center', 'half'),
                     search_config: SearchConfig = SearchConfig(
                         iterations=300),
                     every: int = 1, batch_size: int = 64, seed: int = 0,
                     show_progress: bool = True,
                     sample_reference: np.ndarray | None = None,
                     floor_images: np.ndarray | None = None
                     ) -> list[dict[str, Any]]:
  """Evaluates the checkpoints of a training run; returns all curve rows.

  Args:
    workdir: a run of experiments.train_dcgan (its checkpoints are kept
      with --keep_checkpoints).
    images: (N, R, R, 3) validation images in [-1, 1]; names: their names.
    kinds: mask types (masks.KINDS) to evaluate.
    search_config: the z-search settings (those of the model cards).
    every: evaluate only steps that are multiples of `every`.
    batch_size, seed: as in evaluate.evaluate_checkpoint (same masks and
      initial z for every checkpoint).
    show_progress: progress bars.
    sample_reference: (M, R, R, 3) real images in [-1, 1] (the validation
      slice) that M samples of G are compared with
      (`sample_realism.samples_realism`).
    floor_images: (M, R, R, 3) other real images (a train slice): their
      distance to `sample_reference` is the floor of 'samples_ms_swd'.

  Returns:
    Every row of validation.jsonl: {'step', 'wall_seconds', 'mask',
    'mean_psnr', 'mean_ssim', 'mean_psnr_mean_fill', 'num_images',
    'iterations', 'window', 'ms_swd', 'ms_swd_mean_fill'} and with
    `sample_reference` 'samples_ms_swd', 'samples_images' (and with
    `floor_images` 'samples_ms_swd_floor'); rows written before realism was
    measured lack those.
  """
  if every < 1:
    raise InputError(f'every={every}: evaluate every N-th step, N >= 1.')
  done = {(r['step'], r['mask']) for r in read_curve(workdir)}
  steps = [s for s in run_state.checkpoint_steps(workdir) if s % every == 0]
  if not steps:
    raise InputError(f'{workdir} holds no training checkpoint at a multiple'
                     f' of {every} steps; train first, or lower --every.')
  # The same masks for every checkpoint, as evaluate_checkpoint draws them.
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = {kind: evaluate.make_masks(kind, None, len(images), images.shape[1],
                                     mask_key) for kind in kinds}
  floor = {}
  if sample_reference is not None and floor_images is not None and any(
      (s, k) not in done for s in steps for k in kinds):
    floor = {'samples_ms_swd_floor': sample_realism.floor(
        floor_images, sample_reference, seed)}
  for step in steps:
    todo = [k for k in kinds if (step, k) not in done]
    if not todo:
      continue
    config, state, meta, _ = train_dcgan.restore_run(workdir, step)
    g_vars = train_dcgan.generator_variables(state)
    method = methods.zsearch_method(
        config, g_vars, train_dcgan.discriminator_variables(state),
        search_config, seed=seed)
    samples = {}
    if sample_reference is not None:
      samples = {**sample_realism.samples_realism(config, g_vars,
                                                  sample_reference, seed),
                 **floor}
    for kind in todo:
      result = evaluate.evaluate(method, images, names, masks[kind],
                                 batch_size=batch_size,
                                 show_progress=show_progress)
      row = {'step': step, 'wall_seconds': meta.get('wall_seconds'),
             'mask': kind, 'num_images': len(images),
             'iterations': search_config.iterations,
             'window': search_config.window,
             **{k: result.summary[k] for k in
                ('mean_psnr', 'mean_ssim', 'mean_psnr_mean_fill', 'ms_swd',
                 'ms_swd_mean_fill') if k in result.summary},
             **samples}
      if jax.process_index() == 0:
        with open(os.path.join(workdir, CURVE_FILE), 'a') as f:
          f.write(json.dumps(row) + '\n')
  rows = read_curve(workdir)
  if jax.process_index() == 0:
    plot_curves(rows, os.path.join(workdir, PLOT_FILE))
    if any('samples_ms_swd' in r for r in rows):
      plot_realism(rows, os.path.join(workdir, REALISM_PLOT_FILE))
  return rows


def plot_realism(rows: Sequence[dict[str, Any]], path: str) -> None:
  """validation_realism.png: MS-SWD of G's samples against training step,
  with the real-vs-real floor as a dashed line."""
  by_step = {r['step']: r for r in rows if 'samples_ms_swd' in r}
  floors = [r['samples_ms_swd_floor'] for r in by_step.values()
            if 'samples_ms_swd_floor' in r]
  charts.line_chart(
      path, {'samples': [(s, r['samples_ms_swd'])
                         for s, r in sorted(by_step.items())]},
      references={'real vs real (floor)': floors[-1]} if floors else None,
      integer_x=True, x_label='training step',
      y_label='MS-SWD x10³ (lower: more realistic)')


def plot_curves(rows: Sequence[dict[str, Any]], path: str) -> None:
  """validation.png: mean PSNR against training step, one line per mask,
  and a dashed line per mask for the mean-colour fill of the hole."""
  series, fills = {}, {}
  for row in sorted(rows, key=lambda r: r['step']):
    series.setdefault(row['mask'], []).append((row['step'],
                                               row['mean_psnr']))
    if row.get('mean_psnr_mean_fill') is not None:
      fills[f'mean fill, {row["mask"]}'] = row['mean_psnr_mean_fill']
  charts.line_chart(path, series, references=fills, integer_x=True,
                    x_label='training step', y_label='validation PSNR (dB)')


def _steps_on_every_mask(rows: Sequence[dict[str, Any]], kinds: set[str]
                         ) -> dict[int, dict[str, dict[str, Any]]]:
  """{step: {mask: row}} of the steps evaluated on every mask type of
  `kinds` (rows of other mask types are left out), in the rows' order."""
  by_step = {}
  for row in rows:
    if row['mask'] in kinds:
      by_step.setdefault(row['step'], {})[row['mask']] = row
  return {step: by_mask for step, by_mask in by_step.items()
          if set(by_mask) == kinds}


def best_step(rows: Sequence[dict[str, Any]],
              realism_within_db: float = 0.0) -> int:
  """The step to ship from a validation curve (`choose_step`'s step)."""
  return choose_step(rows, realism_within_db)[0]


def choose_step(rows: Sequence[dict[str, Any]],
                realism_within_db: float = 0.0) -> tuple[int, str]:
  """(the step to ship from a validation curve, the rule that chose it).

  The step whose mean validation PSNR over its mask types is highest; with
  `realism_within_db` > 0 and samples' MS-SWD in the rows, the step with the
  most realistic samples (lowest 'samples_ms_swd') among those within that
  many dB of the highest mean PSNR, so that PSNR, which rewards blur, does
  not decide alone. Only steps evaluated on every mask type of the curve
  count. The rule is a phrase for the model's metadata, naming the one
  applied (PSNR alone where no step within the margin was measured).
  """
  kinds = {r['mask'] for r in rows}
  by_step = _steps_on_every_mask(rows, kinds)
  complete = {step: float(np.mean([r['mean_psnr'] for r in by_mask.values()]))
              for step, by_mask in by_step.items()}
  if not complete:
    raise InputError('The validation curve is empty: run'
                     ' experiments.validation_curve on the run first.')
  best = max(complete, key=complete.get)
  psnr_rule = 'highest mean validation PSNR over ' + ', '.join(sorted(kinds))
  if realism_within_db <= 0:
    return best, psnr_rule
  # A step whose samples were not measured is never preferred.
  realism = {step: next((r['samples_ms_swd'] for r in by_mask.values()
                         if r.get('samples_ms_swd') is not None), np.inf)
             for step, by_mask in by_step.items()
             if complete[step] >= complete[best] - realism_within_db}
  chosen = min(realism, key=realism.get)
  if not np.isfinite(realism[chosen]):
    return best, psnr_rule
  return chosen, (f'lowest samples MS-SWD among the steps within'
                  f' {realism_within_db:g} dB of the {psnr_rule}')


def compare_runs(runs: Mapping[str, str], path: str) -> list[dict[str, Any]]:
  """Draws the validation curves of several runs against training wall time.

  What "compare width 32 and width 64 at equal wall time" is read from: one
  line per (run, mask type) of mean validation PSNR (dB) against the hours
  of training recorded with each checkpoint (time shared with other work on
  the machine counts too), and a flat line per mask type for the mean-colour
  fill of the hole.

  Args:
    runs: {label: workdir}, each a run with a validation curve
      (validation_curve) on the same slice with the same settings.
    path: the PNG to write.

  Returns:
    One row per (label, step), ordered as `runs` then by step: {'run',
    'step', 'hours', '<mask>': dB for each mask type, 'mean': their mean,
    and where the curve measured it 'samples_ms_swd'}; the mask types are
    those every run was evaluated on, and only steps evaluated on all of
    them are shown. Where every run measured its samples' realism on the
    same number of images, `<path>` without .png + '_realism.png' draws
    'samples_ms_swd' against wall time too.

  Raises:
    InputError: a run has no validation curve, or the runs' curves differ in
      images, z-search iterations, window or slice, or share no mask type
      (not comparable).
  """
  curves = {}
  for label, workdir in runs.items():
    curves[label] = read_curve(workdir)
    if not curves[label]:
      raise InputError(f'{workdir} has no validation curve: run'
                       ' experiments.validation_curve on it first.')
  kinds = sorted(set.intersection(*({r['mask'] for r in rows}
                                     for rows in curves.values())))
  # The same slice gives the same mean-fill PSNR.
  settings = {label: sorted({(r['mask'], r['num_images'], r['iterations'],
                              r['window'], round(r['mean_psnr_mean_fill'], 3))
                             for r in rows if r['mask'] in kinds})
              for label, rows in curves.items()}
  if not kinds or len({tuple(s) for s in settings.values()}) > 1:
    raise InputError('The runs\' validation curves were measured differently'
                     ' (mask, images, iterations, window, mean-fill PSNR of'
                     f' the slice): {settings};'
                     ' rerun experiments.validation_curve with the same'
                     ' flags on each.')
  fills = {r['mask']: r['mean_psnr_mean_fill'] for rows in curves.values()
           for r in rows if r['mask'] in kinds}
  table, series = [], {}
  for label, rows in curves.items():
    for step, by_mask in sorted(_steps_on_every_mask(rows,
                                                     set(kinds)).items()):
      hours = by_mask[kinds[0]]['wall_seconds'] / 3600
      entry = {'run': label, 'step': step, 'hours': hours,
               **{k: by_mask[k]['mean_psnr'] for k in kinds}}
      entry['mean'] = float(np.mean([entry[k] for k in kinds]))
      first = by_mask[kinds[0]]
      if 'samples_ms_swd' in first:
        entry['samples_ms_swd'] = first['samples_ms_swd']
        entry['samples_images'] = first['samples_images']
      table.append(entry)
      for kind in kinds:
        series.setdefault(f'{label}, {kind}', []).append((hours,
                                                          entry[kind]))
  if not table:
    raise InputError('No step of these runs was evaluated on every mask type'
                     f' {kinds}: run experiments.validation_curve with'
                     ' --masks for each.')
  charts.line_chart(path, series,
                    references={f'mean fill, {k}': fills[k] for k in kinds},
                    x_label='training wall time (h)',
                    y_label='validation PSNR (dB)')
  if (all('samples_ms_swd' in e for e in table)
      and len({e['samples_images'] for e in table}) == 1):
    realism_series = {}
    for e in table:
      realism_series.setdefault(e['run'], []).append((e['hours'],
                                                      e['samples_ms_swd']))
    charts.line_chart(os.path.splitext(path)[0] + '_realism.png',
                      realism_series, x_label='training wall time (h)',
                      y_label='MS-SWD x10³ of samples (lower: more'
                      ' realistic)')
  return table

"""Validation curves of a training run: inpainting PSNR of its checkpoints.

`validation_curve` evaluates every kept training checkpoint of a run (or every
`every`-th step) with the z-search on the validation slice (the last
`input_pipeline.VALIDATION_HOLDOUT` train images, never trained on), for a few
mask types, and appends one JSON line per (step, mask) to
`<workdir>/validation.jsonl`: what a choice of training length or width is
made on. It resumes: pairs already in the file are not evaluated again.
`plot_curves` draws the file as validation.png.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import jax
import numpy as np

from inpaint_jax import checkpoints, evaluate, images as image_io, train
from inpaint_jax import methods
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError

CURVE_FILE = 'validation.jsonl'
PLOT_FILE = 'validation.png'


def read_curve(workdir: str) -> list[dict[str, Any]]:
  """The rows of `<workdir>/validation.jsonl` (an empty list if none)."""
  path = os.path.join(workdir, CURVE_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def validation_curve(workdir: str, images: np.ndarray, names: Sequence[str],
                     kinds: Sequence[str] = ('center', 'half'),
                     search_config: SearchConfig = SearchConfig(
                         iterations=300),
                     every: int = 1, batch_size: int = 64, seed: int = 0,
                     show_progress: bool = True) -> list[dict[str, Any]]:
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

  Returns:
    Every row of validation.jsonl: {'step', 'wall_seconds', 'mask',
    'mean_psnr', 'mean_ssim', 'mean_psnr_mean_fill', 'num_images',
    'iterations', 'window'}.
  """
  if every < 1:
    raise InputError(f'every={every}: evaluate every N-th step, N >= 1.')
  done = {(r['step'], r['mask']) for r in read_curve(workdir)}
  steps = [s for s in checkpoints.checkpoint_steps(workdir) if s % every == 0]
  if not steps:
    raise InputError(f'{workdir} holds no training checkpoint at a multiple'
                     f' of {every} steps; train first, or lower --every.')
  # The same masks for every checkpoint, as evaluate_checkpoint draws them.
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = {kind: evaluate.make_masks(kind, None, len(images), images.shape[1],
                                     mask_key) for kind in kinds}
  for step in steps:
    todo = [k for k in kinds if (step, k) not in done]
    if not todo:
      continue
    config, state, meta, _ = train.restore_run(workdir, step)
    method = methods.zsearch_method(
        config, train.generator_variables(state),
        train.discriminator_variables(state), search_config, seed=seed)
    for kind in todo:
      result = evaluate.evaluate(method, images, names, masks[kind],
                                 batch_size=batch_size,
                                 show_progress=show_progress)
      row = {'step': step, 'wall_seconds': meta.get('wall_seconds'),
             'mask': kind, 'num_images': len(images),
             'iterations': search_config.iterations,
             'window': search_config.window,
             **{k: result.summary[k] for k in
                ('mean_psnr', 'mean_ssim', 'mean_psnr_mean_fill')}}
      if jax.process_index() == 0:
        with open(os.path.join(workdir, CURVE_FILE), 'a') as f:
          f.write(json.dumps(row) + '\n')
  rows = read_curve(workdir)
  if jax.process_index() == 0:
    plot_curves(rows, os.path.join(workdir, PLOT_FILE))
  return rows


def plot_curves(rows: Sequence[dict[str, Any]], path: str) -> None:
  """validation.png: mean PSNR against training step, one line per mask."""
  series = {}
  for row in sorted(rows, key=lambda r: r['step']):
    series.setdefault(row['mask'], []).append((row['step'],
                                               row['mean_psnr']))
  image_io.save_line_plot(path, series, x_label='training step',
                          y_label='validation PSNR (dB)')

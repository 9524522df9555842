"""Exports a DCGAN training checkpoint as a model directory: the one path.

`export_checkpoint` (experiments.export_model) picks the step (the best of
the validation curve, `validation.best_step`: PSNR, and realism where the
curve measured it, unless given), writes it with
`export_model` (experiments.train_dcgan --export_dir: the latest step), and
adds the story of the run: the validation curve (validation_curve.png and its
rows), G's samples over the training steps (samples_over_time.png) and, with
bfloat16 or float16 weights, a check that the stored weights inpaint as the
float32 ones did.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Sequence

import jax
import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax import methods
from inpaint_jax.config import SearchConfig
from inpaint_jax.data import images as image_io
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import evaluate
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.models import Generator, sample_z
from inpaint_jax.training import loop
from inpaint_jax.training import run_state
from inpaint_jax.training import train_dcgan
from inpaint_jax.training import validation

# Weights stored in 16 bits may move the validation PSNR of the float32 search
# by less than this.
STORED_WEIGHTS_TOLERANCE_DB = 0.05
# The checkpoint rule of #29: among the steps within this many dB of the best
# mean validation PSNR (about the step-to-step wobble of the shipped models'
# curves), the one whose samples are the most realistic.
REALISM_WITHIN_DB = 0.25
# What a model directory keeps of each validation-curve row (the realism
# ones where the curve measured them).
_REQUIRED = ('step', 'wall_seconds', 'mask', 'num_images', 'iterations',
             'window', 'mean_psnr', 'mean_psnr_mean_fill')
_CURVE_KEYS = _REQUIRED + ('ms_swd', 'samples_ms_swd', 'samples_ms_swd_floor')


def export_model(workdir: str, output_dir: str,
                 weights_dtype: str = 'float32',
                 extra_metadata: dict[str, Any] | None = None,
                 step: int | None = None) -> str:
  """Writes a training checkpoint of `workdir` as a model directory.

  The latest checkpoint, or the one at `step`; its metadata: the steps, the
  machine, the weights' dtype, the run's training settings and the
  checkpoint's metadata (wall time, last metrics, data), then
  `extra_metadata`. Returns the directory's path. InputError if
  `output_dir` exists and is not empty, or cannot be made (exports do not
  overwrite).
  """
  output_dirs.check_output_dir(output_dir, '--export_dir', new=True)
  model_config, state, meta, step = train_dcgan.restore_run(workdir, step)
  metadata = {'steps': step, 'machine': loop.machine(),
              'weights_dtype': weights_dtype, **meta, **(extra_metadata or {})}
  return checkpoints.save_model(output_dir, model_config,
                                train_dcgan.generator_variables(state),
                                train_dcgan.discriminator_variables(state),
                                metadata, weights_dtype)


def export_checkpoint(workdir: str, export_dir: str, *,
                      step: int | None = None,
                      weights_dtype: str = 'float32',
                      check_images: np.ndarray | None = None,
                      check_names: Sequence[str] = (),
                      search_config: SearchConfig = SearchConfig(
                          iterations=300),
                      kinds: Sequence[str] = ('center', 'half'),
                      seed: int = 0,
                      realism_within_db: float = REALISM_WITHIN_DB
                      ) -> dict[str, Any]:
  """Writes one training checkpoint of a run as a model directory.

  Args:
    workdir: a run of experiments.train_dcgan, ideally with a validation
      curve (validation.validation_curve).
    export_dir: the model directory to write (as `export_model`).
    step: the checkpoint to export; None: `validation.best_step` of the
      validation curve (the most realistic samples among the steps within
      `realism_within_db` of the best mean PSNR, where the curve measured
      them), or the latest checkpoint if the run has no curve.
    weights_dtype: 'float32', or 'bfloat16' / 'float16' (half the size on
      disk).
    check_images: (N, R, R, 3) validation images in [-1, 1]; with 16-bit
      weights they are inpainted with the float32 weights and with the stored
      ones (restored as float32), for `kinds`, and both PSNRs are recorded.
    check_names: their names.
    search_config, seed: the z-search of that check.

  Returns:
    The metadata added to the model directory: 'selected_step' and how it
    was chosen, 'validation_curve' (the rows), 'samples_over_time_steps',
    and with 16-bit weights '<weights_dtype>_check' ({'psnr': {kind:
    {'float32': dB, weights_dtype: dB}}}, the means, and 'per_image_psnr' in
    the same layout with lists of N values, with its settings).

  Raises:
    InputError: `workdir` is not a training run; `step` is not a checkpoint
      of the run; the 16-bit weights change a validation PSNR by
      STORED_WEIGHTS_TOLERANCE_DB or more (the directory is written; export
      another dtype instead).
  """
  train_dcgan.run_configs(workdir)  # A training run, else one clear error.
  available = run_state.checkpoint_steps(workdir)
  rows = validation.read_curve(workdir)
  step, how = _select_step(workdir, rows, available, step, realism_within_db)
  added = {'selected_step': step, 'selected_by': how,
           'validation_curve': [
               {k: r.get(k) for k in _CURVE_KEYS if k in r or k in _REQUIRED}
               for r in rows]}
  existed = os.path.isdir(export_dir)
  try:
    path = export_model(workdir, export_dir, weights_dtype, step=step)
    _add_pictures(workdir, path, rows, available, step, added)
    check_key = checkpoints.stored_weights_check_key(weights_dtype)
    if weights_dtype != 'float32' and check_images is not None:
      added[check_key] = _stored_weights_check(
          workdir, step, path, weights_dtype, check_images, check_names,
          search_config, kinds, seed)
    checkpoints.update_metadata(path, **added)
  except BaseException:
    # No half-written model directory (e.g. an older checkpoint that the
    # pictures need is damaged, or the run was interrupted).
    if not existed and jax.process_index() == 0:
      shutil.rmtree(export_dir, ignore_errors=True)
    raise
  check = added.get(check_key)
  if check:
    worst = max(abs(v['float32'] - v[weights_dtype])
                for v in check['psnr'].values())
    if worst >= STORED_WEIGHTS_TOLERANCE_DB:
      other = 'float16' if weights_dtype == 'bfloat16' else 'float32'
      raise InputError(
          f'{weights_dtype} weights change the validation PSNR by'
          f' {worst:.3f} dB (>= {STORED_WEIGHTS_TOLERANCE_DB}); export with'
          f' --weights_dtype={other}.')
  return added


def _add_pictures(workdir: str, path: str, rows: Sequence[dict[str, Any]],
                  available: Sequence[int], step: int,
                  added: dict[str, Any]) -> None:
  """Draws the validation curve and G's samples over time into `path`."""
  if rows:
    # Drawn from the rows, not copied: a curve run killed part-way leaves
    # an older validation.png behind.
    validation.plot_curves(rows,
                           os.path.join(path, checkpoints.MODEL_CURVE_FILE))
  kept = [s for s in available if s <= step]
  shown = sorted(set(kept[::max(1, len(kept) // 8)][:7] + [step]))
  samples_over_time(workdir, shown,
                    os.path.join(path, checkpoints.SAMPLES_OVER_TIME_FILE))
  added['samples_over_time_steps'] = shown


def _select_step(workdir: str, rows: Sequence[dict[str, Any]],
                 available: Sequence[int], step: int | None,
                 realism_within_db: float) -> tuple[int, str]:
  """(the step to export, how it was chosen); InputError if not kept."""
  if step is not None:
    how = 'given'
  elif not rows:
    step = available[-1] if available else None
    how = 'latest checkpoint (no validation curve)'
  else:
    step = validation.best_step(rows, realism_within_db)
    psnr = ('highest mean validation PSNR over '
            + ', '.join(sorted({r['mask'] for r in rows})))
    realism = realism_within_db > 0 and any(
        r.get('samples_ms_swd') is not None for r in rows)
    how = (f'lowest samples MS-SWD among the steps within'
           f' {realism_within_db:g} dB of the {psnr}' if realism else psnr)
  if step not in available:
    raise InputError(f'{workdir} has no checkpoint at step {step}; its steps:'
                     f' {available or "none"}.')
  return step, how


def samples_over_time(workdir: str, steps: Sequence[int], path: str,
                      count: int = 8, seed: int = 0) -> None:
  """A PNG with one row per step: G of the same `count` latents.

  Shows how the generator's samples change as training goes on.
  """
  config, _ = train_dcgan.run_configs(workdir)
  z = sample_z(jax.random.PRNGKey(seed), count, config.z_dim)
  rows = []
  for step in steps:
    _, state, _, _ = train_dcgan.restore_run(workdir, step)
    rows.append(np.asarray(Generator(config).apply(
        train_dcgan.generator_variables(state), z)))
  image_io.save_png(path, image_io.image_grid(np.concatenate(rows), count))


def _stored_weights_check(workdir, step, path, weights_dtype, images, names,
                          search_config, kinds, seed) -> dict[str, Any]:
  """The z-search's PSNRs on `images` with the float32 weights of the run's
  checkpoint at `step` and with the ones stored in `path`."""
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = {kind: evaluate.make_masks(kind, None, len(images), images.shape[1],
                                     mask_key)
           for kind in kinds}
  config, state, _, _ = train_dcgan.restore_run(workdir, step)
  before = _zsearch_psnr(config, train_dcgan.generator_variables(state),
                         train_dcgan.discriminator_variables(state), images,
                         names, masks, search_config, seed)
  after = _zsearch_psnr(*checkpoints.restore_model(path), images, names,
                        masks, search_config, seed)
  return {
      'num_images': len(images), 'iterations': search_config.iterations,
      'window': search_config.window, 'seed': seed,
      'psnr': {k: {'float32': float(np.mean(before[k])),
                   weights_dtype: float(np.mean(after[k]))} for k in kinds},
      'per_image_psnr': {k: {'float32': before[k], weights_dtype: after[k]}
                         for k in kinds}}


def _zsearch_psnr(config, g_vars, d_vars, images, names, masks, search_config,
                  seed):
  """{kind: per-image PSNR list} of the z-search on `images`."""
  method = methods.zsearch_method(config, g_vars, d_vars, search_config,
                                  seed=seed)
  return {kind: [round(float(p), 4) for p in evaluate.evaluate(
      method, images, names, m, show_progress=False).metrics['psnr']]
          for kind, m in masks.items()}

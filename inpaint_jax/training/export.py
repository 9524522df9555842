"""Exports a DCGAN training checkpoint as a model directory: the one path.

`export_checkpoint` (experiments.export_model) picks the step (the best of
the validation curve, `validation.choose_step`: PSNR, and realism where the
curve measured it, unless given), writes it with
`export_model` (experiments.train_dcgan --export_dir: the latest step), and
adds the story of the run: the validation curve (validation_curve.png and its
rows), G's samples over the training steps (samples_over_time.png) and, with
bfloat16 or float16 weights, a check that the stored weights inpaint as the
float32 ones did. `convert_model` (experiments.export_model --model_dir)
stores an exported float32 model in 16 bits with the same check, when its
training run is gone.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Sequence

import jax
import numpy as np

from inpaint_jax import blending
from inpaint_jax import checkpoints
from inpaint_jax import methods
from inpaint_jax import metrics
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
    step: the checkpoint to export; None: `validation.choose_step` of the
      validation curve (the most realistic samples among the steps within
      `realism_within_db` of the best mean PSNR, where the curve measured
      them), or the latest checkpoint if the run has no curve.
    weights_dtype: 'float32', or 'bfloat16' / 'float16' (half the size on
      disk).
    check_images: (N, R, R, 3) validation images in [-1, 1]; with 16-bit
      weights they are inpainted with the float32 weights and with the stored
      ones (restored as float32), for `kinds`, and both PSNRs are recorded.
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
      _, state, _, _ = train_dcgan.restore_run(workdir, step)
      added[check_key] = _stored_weights_check(
          train_dcgan.generator_variables(state),
          train_dcgan.discriminator_variables(state), path, weights_dtype,
          check_images, search_config, kinds, seed)
    checkpoints.update_metadata(path, **added)
  except BaseException:
    # No half-written model directory (e.g. an older checkpoint that the
    # pictures need is damaged, or the run was interrupted).
    if not existed and jax.process_index() == 0:
      shutil.rmtree(export_dir, ignore_errors=True)
    raise
  _refuse_failed_check(added.get(check_key), weights_dtype)
  return added


def convert_model(model_dir: str, export_dir: str, weights_dtype: str,
                  check_images: np.ndarray,
                  search_config: SearchConfig = SearchConfig(iterations=300),
                  kinds: Sequence[str] = ('center', 'half'),
                  seed: int = 0) -> dict[str, Any]:
  """Writes a float32 model directory's weights in 16 bits, checked.

  For a model whose training run is gone: the weights, metadata and the
  export's pictures (validation curve, samples over time) of `model_dir` go
  to `export_dir` with the weights stored as `weights_dtype` (half the size),
  and the check of `export_checkpoint` compares the z-search with the
  float32 weights and with the stored ones on `check_images` ((N, R, R, 3)
  validation images in [-1, 1]) for `kinds`.

  Returns:
    The metadata added: 'converted_from' (`checkpoints.model_record`)
    and '<weights_dtype>_check' (as `export_checkpoint`).

  Raises:
    InputError: `model_dir` is not a float32 model, `weights_dtype` is not a
      16-bit dtype, `export_dir` is not new, or the stored weights change a
      validation PSNR by STORED_WEIGHTS_TOLERANCE_DB or more (the directory
      is written; keep the float32 model instead).
  """
  if weights_dtype not in checkpoints.WEIGHT_DTYPES or (
      weights_dtype == 'float32'):
    raise InputError(f'weights_dtype={weights_dtype!r}: a conversion stores'
                     ' bfloat16 or float16 weights.')
  config, g_vars, d_vars = checkpoints.restore_model(model_dir)
  _, metadata = checkpoints.load_model_config(model_dir)
  stored = metadata.get('weights_dtype', 'float32')
  if stored != 'float32':
    raise InputError(f'{model_dir} stores {stored} weights: convert a float32'
                     ' model (16-bit weights would be rounded twice).')
  output_dirs.check_output_dir(export_dir, '--export_dir', new=True)
  added = {'weights_dtype': weights_dtype,
           'converted_from': checkpoints.model_record(model_dir)}
  check_key = checkpoints.stored_weights_check_key(weights_dtype)
  try:
    path = checkpoints.save_model(export_dir, config, g_vars, d_vars,
                                  {**metadata, **added}, weights_dtype)
    for name in (checkpoints.MODEL_CURVE_FILE,
                 checkpoints.SAMPLES_OVER_TIME_FILE):
      if os.path.exists(os.path.join(model_dir, name)):
        shutil.copy(os.path.join(model_dir, name), path)
    added[check_key] = _stored_weights_check(
        g_vars, d_vars, path, weights_dtype, check_images, search_config,
        kinds, seed)
    checkpoints.update_metadata(path, **added)
  except BaseException:
    if jax.process_index() == 0:
      shutil.rmtree(export_dir, ignore_errors=True)
    raise
  _refuse_failed_check(added[check_key], weights_dtype)
  return added


def _refuse_failed_check(check: dict[str, Any] | None,
                         weights_dtype: str) -> None:
  """InputError if the stored weights fail their check."""
  failure = check and stored_weights_failure(check, weights_dtype)
  if failure:
    other = 'float16' if weights_dtype == 'bfloat16' else 'float32'
    raise InputError(f'{failure}; export with --weights_dtype={other}.')


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
    step, how = validation.choose_step(rows, realism_within_db)
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


def _stored_weights_check(g_vars, d_vars, path, weights_dtype, images,
                          search_config, kinds, seed) -> dict[str, Any]:
  """The float32 weights `g_vars`, `d_vars` against those stored in `path`.

  Per mask kind and image: the PSNR of the z-search (blended, as the model
  card scores it) with the float32 weights and with the stored ones, and of
  the stored G at the float32 search's latents (the rounding alone, without
  the search's chaos: a weight change of 2^-11 can send a search to another
  optimum, moving one image by several dB either way).
  """
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  config, stored_g, stored_d = checkpoints.restore_model(path)
  generator = Generator(config)
  check = {'num_images': len(images), 'iterations': search_config.iterations,
           'window': search_config.window, 'seed': seed, 'psnr': {},
           'per_image_psnr': {}, 'fixed_latent_psnr': {},
           'search_difference': {}}
  for kind in kinds:
    m = np.asarray(evaluate.make_masks(kind, None, len(images),
                                       images.shape[1], mask_key))
    before, z = _search_psnr(config, g_vars, d_vars, images, m,
                             search_config, seed)
    after, _ = _search_psnr(config, stored_g, stored_d, images, m,
                            search_config, seed)
    fixed = _rounded_psnr(np.clip(blending.poisson_blend(
        generator.apply(stored_g, z), images * m, m), -1, 1), images)
    check['psnr'][kind] = {'float32': float(np.mean(before)),
                           weights_dtype: float(np.mean(after))}
    check['per_image_psnr'][kind] = {'float32': before, weights_dtype: after}
    check['fixed_latent_psnr'][kind] = {'float32': float(np.mean(before)),
                                        weights_dtype: float(np.mean(fixed))}
    check['search_difference'][kind] = list(metrics.confidence_interval(
        np.subtract(after, before)))
  return check


def stored_weights_failure(check: dict[str, Any],
                           weights_dtype: str) -> str | None:
  """Why a stored-weights check fails, or None if it passes.

  It fails if the stored G at the float32 search's latents moves a mean
  PSNR by STORED_WEIGHTS_TOLERANCE_DB or more (the rounding damages the
  fills), or if the search with the stored weights moves it that much and
  the paired 95 % interval of the per-image change excludes 0 (a shift that
  the search's chaos does not explain). Checks recorded before the fixed
  latents were measured: the search's mean alone.
  """
  fixed = check.get('fixed_latent_psnr')
  for kind, psnr in check['psnr'].items():
    moved = psnr[weights_dtype] - psnr['float32']
    if fixed is not None:
      rounding = fixed[kind][weights_dtype] - fixed[kind]['float32']
      if abs(rounding) >= STORED_WEIGHTS_TOLERANCE_DB:
        return (f'{weights_dtype} weights change the {kind} fills of the same'
                f' latents by {rounding:+.3f} dB (>='
                f' {STORED_WEIGHTS_TOLERANCE_DB})')
      mean, half = check['search_difference'][kind]
      if abs(moved) >= STORED_WEIGHTS_TOLERANCE_DB and abs(mean) > half:
        return (f'{weights_dtype} weights move the {kind} validation PSNR by'
                f' {mean:+.3f} ± {half:.3f} dB (>= '
                f'{STORED_WEIGHTS_TOLERANCE_DB}, 95 % interval without 0)')
    elif abs(moved) >= STORED_WEIGHTS_TOLERANCE_DB:
      return (f'{weights_dtype} weights change the {kind} validation PSNR by'
              f' {moved:+.3f} dB (>= {STORED_WEIGHTS_TOLERANCE_DB})')
  return None


def _search_psnr(config, g_vars, d_vars, images, masks, search_config, seed,
                 batch_size=64):
  """(per-image PSNR list of `methods.zsearch_method`'s fills, as the model
  card scores them, (N, z_dim) latents found)."""
  method = methods.zsearch_method(config, g_vars, d_vars, search_config,
                                  seed=seed)
  psnrs, latents = [], []
  for start in range(0, len(images), batch_size):
    y, m = images[start:start + batch_size], masks[start:start + batch_size]
    filled = method.fill(y * m, m, start)
    psnrs += _rounded_psnr(filled['inpainted'], y)
    latents.append(filled['z'])
  return psnrs, np.concatenate(latents)


def _rounded_psnr(inpainted, images) -> list[float]:
  return [round(float(p), 4) for p in metrics.psnr(inpainted, images)]

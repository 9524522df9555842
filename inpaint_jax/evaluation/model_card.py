"""Model cards: evaluate a model on the paper's four masks and document it.

`write_model_card` runs the inpainting evaluation for every mask type of
Sec. 4.1 on test images, draws 64 samples, and writes README.md, samples.png
and one result grid per mask into the model directory, so every number in a
card comes from the command that wrote it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Sequence

import jax
import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax.evaluation import evaluate
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.evaluation import results
from inpaint_jax.training import validation
from inpaint_jax.data import images as image_io
from inpaint_jax import masks as masks_lib
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Generator, sample_z

CARD_GRID_ROWS = 8


def write_model_card(model_dir: str, images: np.ndarray, names: Sequence[str],
                     data_description: str, work_dir: str,
                     search_config: SearchConfig, command: str,
                     batch_size: int = 64, seed: int = 0,
                     semantic: Any = None) -> dict[str, Any]:
  """Evaluates `model_dir` on every mask type and writes its model card.

  Args:
    model_dir: a model directory (checkpoints.save_model).
    images: (N, R, R, 3) test images in [-1, 1]; names: their file names.
    data_description: which images these are (for the card).
    work_dir: where the full per-mask results go (per-image PNGs, CSVs).
    search_config: z-search settings used for every mask.
    command: the command line that produced the card (printed in it).
    batch_size, seed: as in evaluate.inpaint_and_evaluate.
    semantic: optional (classifier, labels) of evaluate.evaluate: the card
      then reports the semantic accuracy per mask.

  Returns:
    {mask kind: summary dict of evaluate.inpaint_and_evaluate}.

  Raises:
    InputError: `model_dir` or `work_dir` cannot be written (checked with
      output_dirs.prepare_output_dir before the model is restored).
  """
  config, metadata = checkpoints.load_model_config(model_dir)
  # Both folders are written to: refuse unusable ones before any work.
  output_dirs.prepare_output_dir(model_dir, '--model_dir')
  output_dirs.prepare_output_dir(work_dir, '--work_dir')
  for kind in masks_lib.KINDS:
    output_dirs.prepare_output_dir(os.path.join(work_dir, kind), '--work_dir')
  _, g_vars, d_vars = checkpoints.restore_model(model_dir)
  samples = Generator(config).apply(
      g_vars, sample_z(jax.random.PRNGKey(seed), 64, config.z_dim))
  image_io.save_png(os.path.join(model_dir, 'samples.png'),
                    image_io.image_grid(np.asarray(samples), 8))
  summaries = {}
  for kind in masks_lib.KINDS:
    out = os.path.join(work_dir, kind)
    evaluated = evaluate.evaluate_checkpoint(
        model_dir, images, names, mask_kind=kind, search_config=search_config,
        batch_size=batch_size, seed=seed, resume_dir=out, semantic=semantic)
    results.write_all(out, evaluated, save_images=False)
    image_io.save_png(os.path.join(model_dir, f'grid_{kind}.png'),
                      results.comparison_grid(evaluated, CARD_GRID_ROWS))
    summaries[kind] = evaluated.summary
  with open(os.path.join(model_dir, 'evaluation.json'), 'w') as f:
    json.dump({'data': data_description, 'command': command,
               'results': summaries}, f, indent=2)
  with open(os.path.join(model_dir, 'README.md'), 'w') as f:
    f.write(_card_text(model_dir, config, metadata, summaries,
                       data_description, search_config, command, len(images)))
  return summaries


def _size_on_disk(path: str) -> int:
  return sum(os.path.getsize(os.path.join(root, f))
             for root, _, files in os.walk(path) for f in files)


def _lineage(source: dict[str, Any] | None) -> list[str]:
  """A card line for a run started from another model's weights, if any."""
  if not source:
    return []
  wall = source.get('wall_seconds')
  return [f'- Initialised from: {os.path.basename(source["model"])}, itself'
          f' trained {source.get("steps", "?")} steps'
          + (f' ({wall / 3600:.2f} h)' if wall else '')
          + '; the steps and wall time here are those of this run only, with'
          ' a fresh Adam state']


def _semantic_lines(summaries: dict[str, Any]) -> list[str]:
  """The semantic accuracy table, if the summaries have one."""
  if not all('semantic_accuracy' in r for r in summaries.values()):
    return []
  lines = ['', '### Semantic accuracy', '',
           'The fraction of images the digit classifier (models/'
           'svhn_classifier) labels correctly: inpainted, the originals and'
           ' the masked input (missing pixels at 0).', '',
           '| mask | inpainted | originals | masked | inpainted / originals |',
           '| --- | --- | --- | --- | --- |']
  for kind, r in summaries.items():
    lines.append(
        f'| {kind} | {r["semantic_accuracy"]:.3f} |'
        f' {r["semantic_accuracy_originals"]:.3f} |'
        f' {r["semantic_accuracy_masked"]:.3f} |'
        f' {r["semantic_accuracy_ratio"]:.3f} |')
  return lines


def _training_lines(metadata: dict[str, Any]) -> list[str]:
  """The validation curve, samples over time and 16-bit weights check, if any.

  Written by validation.export_checkpoint into the model's metadata.
  """
  lines = []
  curve = metadata.get('validation_curve')
  if curve:
    selected = metadata.get('selected_step')
    kinds = list(dict.fromkeys(r['mask'] for r in curve))
    first = curve[0]
    lines += ['', '## Validation curve', '',
              f'Inpainting PSNR (dB) of the training checkpoints on'
              f' {first["num_images"]} validation images (the last 256 train'
              f' images, never trained on), {first["iterations"]} z-search'
              f' iterations, window {first["window"]}'
              f' (`python -m experiments.validation_curve`). Shipped: step'
              f' {selected} ({metadata.get("selected_by", "?")}).', '',
              f'![validation curve]({validation.MODEL_CURVE_FILE})', '',
              '| step | wall time (h) | ' + ' | '.join(kinds) + ' |',
              '| --- | --- |' + ' --- |' * len(kinds)]
    by_step = {}
    for row in curve:
      by_step.setdefault(row['step'], {})[row['mask']] = row
    for step, rows in sorted(by_step.items()):
      wall = next(iter(rows.values())).get('wall_seconds')
      cells = [f'{rows[k]["mean_psnr"]:.2f}' if k in rows else '-'
               for k in kinds]
      mark = '**' if step == selected else ''
      lines.append(f'| {mark}{step}{mark} | '
                   + (f'{wall / 3600:.2f}' if wall else '-') + ' | '
                   + ' | '.join(cells) + ' |')
    lines.append('| mean-colour fill | | ' + ' | '.join(
        f'{next(r for r in curve if r["mask"] == k)["mean_psnr_mean_fill"]:.2f}'
        for k in kinds) + ' |')
  steps = metadata.get('samples_over_time_steps')
  if steps:
    lines += ['', '## Samples over time', '',
              f'One row per training step ({", ".join(map(str, steps))}),'
              ' the same 8 latents in every row.', '',
              f'![samples over time]({validation.SAMPLES_OVER_TIME_FILE})']
  dtype = metadata.get('weights_dtype', 'float32')
  check = metadata.get(validation.stored_weights_check_key(dtype))
  if check:
    lines += ['', f'## {dtype} weights', '',
              f'Stored in {dtype} (restored as float32). Validation PSNR of'
              f' the float32 search ({check["num_images"]} images,'
              f' {check["iterations"]} iterations) with the float32 weights'
              ' before export and with the stored weights:', '',
              f'| mask | float32 weights | stored {dtype} weights |',
              '| --- | --- | --- |']
    lines += [f'| {k} | {v["float32"]:.3f} | {v[dtype]:.3f} |'
              for k, v in check['psnr'].items()]
  return lines


def _card_text(model_dir, config, metadata, summaries, data_description,
               search_config, command, num_images) -> str:
  name = os.path.basename(os.path.normpath(model_dir))
  train = metadata.get('train', {})
  metrics = metadata.get('metrics', {})
  wall = metadata.get('wall_seconds')
  lines = [
      f'# {name}',
      '',
      "A DCGAN (Radford et al.) for the inpainting method of Yeh et al. 2017,",
      'trained with `experiments.train_dcgan` and evaluated with',
      '`experiments.model_card`.',
      '',
      '## Model',
      '',
      f'- Architecture: {json.dumps(config.to_dict())}',
      f'- Weights: {metadata.get("weights_dtype", "see model_config.json")},'
      f' {_size_on_disk(model_dir) / 1e6:.1f} MB on disk (whole folder)',
      f'- Training: {metadata.get("steps", "?")} steps, batch'
      f' {train.get("batch_size", "?")}, Adam lr {train.get("learning_rate", "?")},'
      f' beta1 {train.get("beta1", "?")}, flips {train.get("flip", "?")},'
      f' seed {train.get("seed", "?")}',
      *_lineage(metadata.get('initialised_from')),
      f'- Training data: {metadata.get("data", "?")}',
      f'- Training wall time: {wall / 3600:.2f} h' if wall else
      '- Training wall time: not recorded',
      f'- Machine: {metadata.get("machine", "?")}',
      f'- Final training losses (last logged step): D {metrics.get("d_loss", float("nan")):.3f},'
      f' G {metrics.get("g_loss", float("nan")):.3f}',
      '',
      *_training_lines(metadata),
      '',
      '## Samples (64 draws of z, `samples.png`)',
      '',
      '![samples](samples.png)',
      '',
      '## Inpainting on held-out test images',
      '',
      f'{num_images} images: {data_description}. z-search: {search_config.iterations}'
      f' Adam steps, lr {search_config.learning_rate}, lambda {search_config.lam},'
      f' {search_config.restarts} restart(s), importance window'
      f' {search_config.window}; Poisson blending. PSNR/SSIM against the'
      ' originals; "mean fill" fills the hole with the mean colour of the known pixels.',
      '',
      '| mask | missing | PSNR (dB) | SSIM | mean-fill PSNR (dB) |',
      '| --- | --- | --- | --- | --- |',
  ]
  for kind, r in summaries.items():
    lines.append(
        f'| {kind} | {100 * r["mean_missing_fraction"]:.0f} % |'
        f' {r["mean_psnr"]:.2f} | {r["mean_ssim"]:.3f} |'
        f' {r["mean_psnr_mean_fill"]:.2f} |')
  lines += _semantic_lines(summaries)
  lines += ['', 'Rows: masked input | G(z) | blended result | original.', '']
  for kind in summaries:
    lines += [f'### {kind}', '', f'![{kind}](grid_{kind}.png)', '']
  lines += ['## Reproduce', '', '```bash', command, '```', '',
            f'Evaluated on {platform.machine()} with jax {jax.__version__},'
            f' {time.strftime("%Y-%m-%d")}.', '']
  return '\n'.join(lines)

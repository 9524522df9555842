r"""The refinements after the z-search (#30) against the paper's procedure.

  python -m benchmarks.refinements --datasets=svhn --num_images=32
  python -m benchmarks.refinements --option_iterations=300 --average_seeds=4
  python -m benchmarks.refinements --quick     # 4 images, 20 + 20 steps

On the validation slice (never test), per data set and mask, every method on
the same images, masks and initial latents: the paper's procedure (Adam on z
for --iterations, 1500 in the paper) and each preset of
`inpaint_jax.refine.PRESETS` after a z-search of --option_iterations steps
(default: the same search), each blended into the hole (Eq. 6). With
--option_iterations below --iterations the paper's procedure also runs for
that many steps ('paper, K z steps'); with both equal, the paper's procedure
at equal time ('paper +N': as many more z steps as the refinement takes).
With --average_seeds=S > 1, the pixel mean of S searches from different
random z ('x S', `methods.average_method`) of the paper's procedure and of
each preset (or those named by --averaged), at --option_iterations. Scores:
PSNR whole and hole, SSIM, MS-SWD of the set (`evaluate.realism_scores`),
for SVHN the digit classifier's accuracy on the fills, seconds per image
(search + blend; one batch of all the images, its compilation included:
tens of seconds against minutes of search at 1500 steps) and the time as a
multiple of the paper's procedure. Prints a table and one JSON line, and
with --figures_dir draws one grid per data set and mask: masked | paper |
each option | original. With --work_dir each method's fills and seconds are
saved as they finish, and a run started again with the same flags reuses
them (an hour-long data set survives a killed session); the seconds are
then those measured when the method ran.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import time

import jax
import numpy as np
from absl import app
from absl import flags

from inpaint_jax import checkpoints
from inpaint_jax import methods
from inpaint_jax import refine
from inpaint_jax.config import SearchConfig
from inpaint_jax.data import input_pipeline
from inpaint_jax.evaluation import evaluate
from inpaint_jax.evaluation import reproduce
from inpaint_jax.evaluation import results
from inpaint_jax.evaluation import semantic
from inpaint_jax.report import panels

_QUICK = flags.DEFINE_bool('quick', False, '4 images, 20 z steps and 20'
                           ' refinement steps (a smoke run).')
_DATASETS = flags.DEFINE_list('datasets', list(input_pipeline.DATASETS),
                              'Data sets.')
_MASKS = flags.DEFINE_list('masks', ['center'], 'Mask types.')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 32, 'Validation images.',
                                   lower_bound=1)
_ITERATIONS = flags.DEFINE_integer('iterations', 1500, 'z-search steps (the'
                                   ' paper: 1500).', lower_bound=1)
_OPTION_ITERATIONS = flags.DEFINE_integer(
    'option_iterations', None, 'z-search steps before each refinement'
    ' (default: --iterations).', lower_bound=1)
_AVERAGE_SEEDS = flags.DEFINE_integer(
    'average_seeds', 1, 'If above 1, also the mean of this many searches'
    ' (seeds) of each method of --averaged.', lower_bound=1)
_AVERAGED = flags.DEFINE_list(
    'averaged', None, 'With --average_seeds: which methods to average'
    " ('paper' and names of --presets; default: all of them).")
_PRESETS = flags.DEFINE_list('presets', list(refine.PRESETS),
                             'Refinements (names of refine.PRESETS).')
_MODELS_DIR = flags.DEFINE_string('models_dir', 'models', 'Where the'
                                  ' <dataset>64 models are.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Data root (default:'
                                ' ../shared/data or $INPAINT_DATA_DIR).')
_FIGURES_DIR = flags.DEFINE_string('figures_dir', None, 'If set, write'
                                   ' refinements_<dataset>_<mask>.png here.')
_WORK_DIR = flags.DEFINE_string(
    'work_dir', None, 'If set, save each method\'s results here as it'
    ' finishes and reuse those saved under the same settings (resume).')

_SECONDS_FILE = 'seconds.json'


def timed(method: methods.Method, label: str, images, names, masks, labels,
          folder: str | None = None):
  """(EvalResult, seconds per image) of a method on one batch.

  With `folder`, the results are saved there (evaluate's resume files) with
  the seconds beside them; a later call with the same method, label,
  images and masks reads both back instead of running the method again.
  Results saved without their seconds (a run killed in between) are run
  again.
  """
  fingerprint = reproduce.cell_fingerprint(method, label, images, masks,
                                           labels is not None)
  saved_seconds = None
  if folder:
    try:
      with open(os.path.join(folder, _SECONDS_FILE)) as f:
        saved = json.load(f)
      if saved['fingerprint'] == fingerprint:
        saved_seconds = float(saved['seconds_per_image'])
    except (OSError, ValueError, KeyError, TypeError):
      pass
    if saved_seconds is None:
      results.remove_partial(folder)
  start = time.time()
  result = evaluate.evaluate(method, images, names, masks,
                             batch_size=len(images), resume_dir=folder,
                             show_progress=False, semantic=labels)
  if saved_seconds is not None:
    return result, saved_seconds
  seconds = (time.time() - start) / len(images)
  if folder:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, _SECONDS_FILE), 'w') as f:
      json.dump({'fingerprint': fingerprint, 'seconds_per_image': seconds}, f)
  return result, seconds


def cell(dataset: str, kind: str, num_images: int, search: SearchConfig,
         option_iterations: int, average_seeds: int, averaged: list[str],
         presets: dict[str, dict], figures_dir: str | None,
         work_dir: str | None) -> list[dict]:
  """Every method on one (data set, mask) cell; one row each (saved to and
  resumed from `work_dir`, if set: see `timed`)."""
  images, names = input_pipeline.load_split(dataset, 'validation',
                                            data_dir=_DATA_DIR.value,
                                            limit=num_images)
  mask_key, _ = jax.random.split(jax.random.PRNGKey(0))
  masks = evaluate.make_masks(kind, None, len(images), images.shape[1],
                              mask_key)
  model_dir = os.path.join(_MODELS_DIR.value, f'{dataset}64')
  config, g_vars, d_vars = checkpoints.restore_model(model_dir)
  labels = semantic.for_mask(semantic.semantic_for_split(
      dataset, 'validation', names,
      os.path.join(_MODELS_DIR.value, 'svhn_classifier'), _DATA_DIR.value),
                             kind)
  option_search = dataclasses.replace(search, iterations=option_iterations)
  runs = {'paper': search}
  if option_iterations != search.iterations:
    runs[f'paper, {option_iterations} z steps'] = option_search
  for name, preset in presets.items():
    runs[name] = dataclasses.replace(option_search, **preset)
    if option_iterations == search.iterations:
      extra = preset.get('ilo_steps', 0) + preset.get('finetune_steps', 0)
      runs[f'paper +{extra}'] = dataclasses.replace(
          search, iterations=search.iterations + extra)
  if average_seeds > 1:
    for name in averaged:
      runs[f'{name} x{average_seeds}'] = dataclasses.replace(
          option_search, **presets.get(name, {}))

  def method(label, run):
    if label.endswith(f' x{average_seeds}') and average_seeds > 1:
      return methods.average_method(label, [
          methods.zsearch_method(config, g_vars, d_vars, run, seed=seed)
          for seed in range(average_seeds)])
    return methods.zsearch_method(config, g_vars, d_vars, run)

  rows, fills = [], {}
  paper_seconds = None
  for label, run in runs.items():
    print(f'{dataset} / {kind}: {label} ...', file=sys.stderr, flush=True)
    folder = (os.path.join(work_dir, dataset, kind,
                           re.sub(r'[^a-z0-9]+', '_', label.lower()))
              if work_dir else None)
    result, seconds = timed(method(label, run), label, images, names, masks,
                            labels, folder)
    hole = reproduce.hole_scores(result)
    paper_seconds = paper_seconds or seconds  # The first run: the paper.
    rows.append({
        'dataset': dataset, 'mask': kind, 'method': label,
        'z_steps': run.iterations, 'ilo_steps': run.ilo_steps,
        'finetune_steps': run.finetune_steps,
        'seeds': average_seeds if label.endswith(f' x{average_seeds}') else 1,
        'images': len(images),
        'psnr': result.summary['mean_psnr'],
        'psnr_hole': float(np.mean(hole['psnr_hole'])),
        'ssim': result.summary['mean_ssim'],
        'ms_swd': result.summary.get('ms_swd'),
        'digit_accuracy': result.summary.get('semantic_accuracy'),
        'seconds_per_image': seconds,
        'time_vs_paper': seconds / paper_seconds,
        'device': jax.devices()[0].device_kind})
    fills[label] = result.inpainted
  if figures_dir:
    shown = [label for label in runs
             if not label.startswith(('paper,', 'paper +'))]
    rows_shown = slice(0, 8)
    picture = panels.labelled_grid(
        [(images * masks)[rows_shown],
         *[fills[m][rows_shown] for m in shown], images[rows_shown]],
        ['masked', *shown, 'original'])
    os.makedirs(figures_dir, exist_ok=True)
    picture.save(os.path.join(figures_dir,
                              f'refinements_{dataset}_{kind}.png'))
  return rows


def main(argv):
  del argv
  quick = _QUICK.value
  unknown = set(_PRESETS.value) - set(refine.PRESETS)
  if unknown:
    raise app.UsageError(f'--presets: unknown {sorted(unknown)}; use names'
                         f' of {sorted(refine.PRESETS)}.')
  presets = {name: dict(refine.PRESETS[name]) for name in _PRESETS.value}
  averaged = _AVERAGED.value or ['paper', *presets]
  unknown = set(averaged) - {'paper', *presets}
  if unknown:
    raise app.UsageError(f'--averaged: {sorted(unknown)} not among'
                         " 'paper' and --presets.")
  if quick:
    for preset in presets.values():
      for key in ('ilo_steps', 'finetune_steps'):
        if preset.get(key):
          preset[key] = 20
  num_images = 4 if quick else _NUM_IMAGES.value
  iterations = 20 if quick else _ITERATIONS.value
  option_iterations = (20 if quick else _OPTION_ITERATIONS.value
                       ) or iterations
  rows = []
  for dataset in _DATASETS.value:
    for kind in _MASKS.value:
      search = SearchConfig(iterations=iterations,
                            window=reproduce.CARD_WINDOWS[dataset])
      rows += cell(dataset, kind, num_images, search, option_iterations,
                   _AVERAGE_SEEDS.value, averaged, presets,
                   _FIGURES_DIR.value, _WORK_DIR.value)
  print('| data set | mask | method | PSNR | PSNR hole | SSIM | MS-SWD |'
        ' digit acc. | s/image | time vs paper |')
  print('| --- ' * 10 + '|')
  for r in rows:
    digits = ('-' if r['digit_accuracy'] is None
              else f"{r['digit_accuracy']:.3f}")
    realism = '-' if r['ms_swd'] is None else f"{r['ms_swd']:.1f}"
    print(f"| {r['dataset']} | {r['mask']} | {r['method']} |"
          f" {r['psnr']:.2f} | {r['psnr_hole']:.2f} | {r['ssim']:.3f} |"
          f" {realism} | {digits} | {r['seconds_per_image']:.2f} |"
          f" {r['time_vs_paper']:.2f}x |")
  print(json.dumps({'benchmark': 'refinements', 'rows': rows}))


if __name__ == '__main__':
  app.run(main)

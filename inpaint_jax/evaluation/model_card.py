"""Model cards: the README.md of every model directory, one writer for all.

`write_card(model_dir)` writes the card of any model directory from what the
directory holds, so every number in a card comes from the command that wrote
the model (or its evaluation). It tells the kind by the directory's config
file: a DCGAN (model_config.json, with the evaluation.json of
`write_model_card`), an encoder, the digit classifier or a Context Encoder
(their cards are built in `network_cards`).

`write_model_card` runs the inpainting evaluation of a DCGAN for every mask
type of Sec. 4.1 on test images, draws 64 samples, and writes
evaluation.json, samples.png and one result grid per mask into the model
directory, then its card. The Markdown is rendered by `report.cards`.
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
from inpaint_jax import masks as masks_lib
from inpaint_jax import metrics
from inpaint_jax.config import SearchConfig
from inpaint_jax.data import images as image_io
from inpaint_jax.errors import InputError
from inpaint_jax.errors import MissingInputError
from inpaint_jax.evaluation import evaluate
from inpaint_jax.evaluation import network_cards
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.evaluation import results
from inpaint_jax.evaluation import sample_realism
from inpaint_jax.models import Generator, sample_z
from inpaint_jax.report import cards

CARD_FILE = 'README.md'
EVALUATION_FILE = 'evaluation.json'
# Written by hand, kept beside the weights: e.g. why this checkpoint was
# shipped (its comparison with other runs and steps). Markdown starting with
# its own '## ' heading; the card ends with it verbatim.
NOTES_FILE = 'notes.md'
CARD_GRID_ROWS = 8
# The picture of a card written against a previous model (`previous_dir`):
# masked | previous model | this model | original, VERSUS_ROWS images per mask.
VERSUS_FILE = 'versus_previous.png'
VERSUS_ROWS = 4


def write_card(model_dir: str) -> str:
  """Writes `model_dir`/README.md, the card of the model there; returns it.

  Args:
    model_dir: a DCGAN evaluated by `write_model_card`, or an encoder,
      classifier or Context Encoder directory (`network_cards.KINDS`). Its
      notes.md, if any, ends the card.

  Raises:
    MissingInputError: no model there, or a DCGAN without evaluation.json.
    InputError: the directory's config or weights are damaged.
  """
  if os.path.isfile(os.path.join(model_dir, checkpoints.CONFIG_FILE)):
    text = dcgan_card(model_dir)
  else:
    text = network_cards.card(model_dir)
  notes = os.path.join(model_dir, NOTES_FILE)
  if os.path.isfile(notes):
    with open(notes) as f:
      text = cards.render(text, '', f.read())
  path = os.path.join(model_dir, CARD_FILE)
  with open(path, 'w') as f:
    f.write(text)
  return path


def write_model_card(model_dir: str, images: np.ndarray, names: Sequence[str],
                     data_description: str, work_dir: str,
                     search_config: SearchConfig, command: str,
                     batch_size: int = 64, seed: int = 0,
                     semantic: Any = None,
                     realism_sets: tuple[np.ndarray, np.ndarray] | None = None,
                     previous_dir: str | None = None
                     ) -> dict[str, Any]:
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
    realism_sets: optional (reference, floor images) of
      `sample_realism.reference_sets`: the card then reports the realism of
      the model's samples against the reference beside the real-vs-real
      floor.
    previous_dir: optional model directory this one replaces (same
      resolution): it is evaluated the same way on the same images and masks
      (results under `work_dir`/previous), and the card shows both side by
      side with the paired per-image differences and VERSUS_FILE.

  Returns:
    {mask kind: summary dict of evaluate.inpaint_and_evaluate}.

  Raises:
    InputError: `model_dir` or `work_dir` cannot be written (checked with
      output_dirs.prepare_output_dir before the model is restored), or
      `previous_dir` is not a model of the same resolution.
  """
  config, _ = checkpoints.load_model_config(model_dir)
  if previous_dir:
    previous_config, _ = checkpoints.load_model_config(previous_dir)
    if previous_config.resolution != config.resolution:
      raise InputError(
          f'--previous={previous_dir} makes {previous_config.resolution}px'
          f' images, {model_dir} {config.resolution}px: compare models of'
          ' the same resolution.')
  # Both folders are written to: refuse unusable ones before any work.
  output_dirs.prepare_output_dir(model_dir, '--model_dir')
  output_dirs.prepare_output_dir(work_dir, '--work_dir')
  for kind in masks_lib.KINDS:
    output_dirs.prepare_output_dir(os.path.join(work_dir, kind), '--work_dir')
  _, g_vars, _ = checkpoints.restore_model(model_dir)
  samples = Generator(config).apply(
      g_vars, sample_z(jax.random.PRNGKey(seed), 64, config.z_dim))
  image_io.save_png(os.path.join(model_dir, 'samples.png'),
                    image_io.image_grid(np.asarray(samples), 8))
  realism = (_samples_realism(config, g_vars, realism_sets, seed)
             if realism_sets is not None else None)

  def evaluate_all(directory, out_dir):
    evaluated = {}
    for kind in masks_lib.KINDS:
      out = os.path.join(out_dir, kind)
      evaluated[kind] = evaluate.evaluate_checkpoint(
          directory, images, names, mask_kind=kind,
          search_config=search_config, batch_size=batch_size, seed=seed,
          resume_dir=out, semantic=semantic)
      results.write_all(out, evaluated[kind], save_images=False)
    return evaluated

  evaluated = evaluate_all(model_dir, work_dir)
  for kind, result in evaluated.items():
    image_io.save_png(os.path.join(model_dir, f'grid_{kind}.png'),
                      results.comparison_grid(result, CARD_GRID_ROWS))
  summaries = {kind: result.summary for kind, result in evaluated.items()}
  previous = None
  if previous_dir:
    before = evaluate_all(previous_dir, os.path.join(work_dir, 'previous'))
    image_io.save_png(os.path.join(model_dir, VERSUS_FILE),
                      versus_grid(before, evaluated, VERSUS_ROWS))
    previous = {
        'model': os.path.basename(os.path.normpath(previous_dir)),
        'results': {kind: versus_scores(before[kind], evaluated[kind])
                    for kind in evaluated},
        **({'samples_realism': _samples_realism(
            *checkpoints.restore_model(previous_dir)[:2], realism_sets, seed)}
           if realism_sets is not None else {})}
  with open(os.path.join(model_dir, EVALUATION_FILE), 'w') as f:
    json.dump({'data': data_description, 'command': command,
               'evaluated': _evaluated_on(), 'results': summaries,
               **({'samples_realism': realism} if realism else {}),
               **({'previous': previous} if previous else {})}, f, indent=2)
  write_card(model_dir)
  return summaries


def _samples_realism(config, g_vars: Any,
                     realism_sets: tuple[np.ndarray, np.ndarray],
                     seed: int) -> dict[str, Any]:
  """G's samples' MS-SWD against the reference, with the floor."""
  reference, floor_images = realism_sets
  return {**sample_realism.samples_realism(config, g_vars, reference, seed),
          'floor': sample_realism.floor(floor_images, reference, seed)}


def versus_scores(before: results.EvalResult, after: results.EvalResult
                  ) -> dict[str, Any]:
  """Two models' results on the same images and masks, side by side.

  Returns the previous model's means ('mean_psnr', 'mean_ssim', and where
  measured 'ms_swd', 'semantic_accuracy', 'semantic_accuracy_of_ceiling')
  and the paired per-image differences after - before with their 95 %
  intervals: 'psnr_difference' and 'ssim_difference' as [mean, half-width].
  """
  if before.names != after.names or not np.array_equal(before.masks,
                                                       after.masks):
    raise ValueError('versus_scores needs results on the same images and'
                     ' masks.')
  scores = {k: before.summary[k] for k in (
      'mean_psnr', 'mean_ssim', 'ms_swd', 'semantic_accuracy',
      'semantic_accuracy_of_ceiling') if before.summary.get(k) is not None}
  for score in ('psnr', 'ssim'):
    scores[f'{score}_difference'] = list(metrics.confidence_interval(
        np.asarray(after.metrics[score]) - np.asarray(before.metrics[score])))
  return scores


def versus_grid(before: dict[str, results.EvalResult],
                after: dict[str, results.EvalResult], rows: int
                ) -> np.ndarray:
  """masked | previous model | this model | original: the first `rows`
  images of every mask type, one block of rows per type (in `after`'s
  order). Returns float32 (K*rows*(H+2)+2, 4*(W+2)+2, C) in [-1, 1]."""
  k = slice(0, rows)
  columns = [[], [], [], []]
  for kind, result in after.items():
    shown = (image_io.masked_for_display(result.images[k], result.masks[k]),
             before[kind].inpainted[k], result.inpainted[k], result.images[k])
    for column, part in zip(columns, shown):
      column.append(part)
  return image_io.make_grid([np.concatenate(c) for c in columns])


# The DCGAN's card ------------------------------------------------------------


def dcgan_card(model_dir: str) -> str:
  """The card of a DCGAN directory, from its model_config.json and the
  evaluation.json of `write_model_card` (whose date it carries)."""
  config, metadata = checkpoints.load_model_config(model_dir)
  path = os.path.join(model_dir, EVALUATION_FILE)
  if not os.path.isfile(path):
    raise MissingInputError(
        f'{model_dir!r} has no {EVALUATION_FILE}: a DCGAN card reports its'
        ' evaluation; write it with experiments.model_card.')
  with open(path) as f:
    evaluation = json.load(f)
  summaries = evaluation['results']
  first = next(iter(summaries.values()))
  # Older evaluation.json files lack the record: the file's own date then.
  evaluated = evaluation.get('evaluated') or _evaluated_on(
      time.localtime(os.path.getmtime(path)))
  return cards.render(
      cards.title(os.path.basename(os.path.normpath(model_dir)),
                  'A DCGAN (Radford et al.) for the inpainting method of Yeh'
                  ' et al. 2017, trained with `experiments.train_dcgan` and'
                  ' evaluated with `experiments.model_card`.'),
      cards.section('Model', cards.facts(
          _model_facts(model_dir, config, metadata))),
      _training_lines(metadata),
      cards.section('Samples (64 draws of z, `samples.png`)',
                    cards.image('samples', 'samples.png'), ''),
      _realism_lines(evaluation.get('samples_realism')),
      _evaluation_lines(summaries, evaluation['data'], first['search'],
                        first['num_images']),
      _versus_lines(evaluation.get('previous'), summaries,
                    evaluation.get('samples_realism')),
      cards.section('Reproduce', cards.code(evaluation['command'], 'bash'),
                    '', f"Evaluated on {evaluated['machine']} with jax"
                    f" {evaluated['jax']}, {evaluated['date']}."))


def _realism_lines(realism: dict[str, Any] | None) -> list[str]:
  """The samples' realism (MS-SWD) beside its floor; nothing for an
  evaluation that did not measure it."""
  if not realism:
    return []
  n = realism['samples_images']
  return cards.section(
      'Realism of samples',
      f'MS-SWD x10³ (Karras et al. 2018; lower is more realistic) of {n}'
      f' samples against the first {n} validation images: **'
      f'{realism["samples_ms_swd"]:.1f}**. The floor, {n} real train images'
      f' against the same validation images: {realism["floor"]:.1f}; the'
      f' samples are {realism["samples_ms_swd"] - realism["floor"]:.1f}'
      ' above it.', '')


def _versus_lines(previous: dict[str, Any] | None,
                  summaries: dict[str, Any],
                  realism: dict[str, Any] | None) -> list[str]:
  """The section against the model this one replaces, if it was measured:
  both models' scores per mask, the paired differences with their 95 %
  intervals, the samples' realism, and VERSUS_FILE."""
  if not previous:
    return []
  name = previous['model']
  versus = previous['results']

  def pair(before, after, spec):
    return f'{format(before, spec)} → {format(after, spec)}'

  def difference(kind, score, spec):
    mean, half = versus[kind][f'{score}_difference']
    return f'{mean:+{spec}} ± {half:{spec}}'

  semantic = all('semantic_accuracy' in versus[k] for k in versus)
  ceiling = all('semantic_accuracy_of_ceiling' in versus[k] for k in versus)
  ms_swd = all('ms_swd' in versus[k] for k in versus)
  rows = []
  for kind, after in summaries.items():
    before = versus[kind]
    rows.append(
        [kind, pair(before['mean_psnr'], after['mean_psnr'], '.2f'),
         difference(kind, 'psnr', '.2f'),
         pair(before['mean_ssim'], after['mean_ssim'], '.3f'),
         difference(kind, 'ssim', '.3f')]
        + ([pair(before['ms_swd'], after['ms_swd'], '.1f')] if ms_swd else [])
        + ([pair(before['semantic_accuracy'], after['semantic_accuracy'],
                 '.3f')] if semantic else [])
        + ([pair(before['semantic_accuracy_of_ceiling'],
                 after['semantic_accuracy_of_ceiling'], '.3f')]
           if ceiling else []))
  old_realism = previous.get('samples_realism')
  samples = []
  if old_realism and realism:
    floor = realism['floor']
    samples = [
        '', f'Samples\' MS-SWD above the real-vs-real floor ({floor:.1f}):'
        f' {old_realism["samples_ms_swd"] - floor:.1f} ({name}) →'
        f' {realism["samples_ms_swd"] - floor:.1f} (this model).']
  return cards.section(
      f'Against {name}, the model this one replaces',
      f'Both models on the same test images, masks and z-search (the'
      f' previous one\'s results under the work directory\'s previous/);'
      ' "a → b": the previous model, then this one; "difference": this'
      ' model minus the previous one per image, mean ± 95 % interval'
      ' (paired).', '',
      cards.table(
          ['mask', 'PSNR (dB)', 'PSNR difference', 'SSIM', 'SSIM difference']
          + (['MS-SWD'] if ms_swd else [])
          + (['digit accuracy'] if semantic else [])
          + (['of masked classifier'] if ceiling else []), rows),
      *samples, '',
      'Rows (per mask, in the order above): masked input | ' + name
      + ' | this model | original.', '',
      cards.image(f'versus {name}', VERSUS_FILE), '')


def _evaluated_on(when: time.struct_time | None = None) -> dict[str, str]:
  """Where and when an evaluation ran: machine, jax version, date."""
  return {'machine': platform.machine(), 'jax': jax.__version__,
          'date': time.strftime('%Y-%m-%d', when or time.localtime())}


def _size_on_disk(path: str) -> int:
  """Bytes of the files under `path`, its card aside (being rewritten)."""
  return sum(os.path.getsize(os.path.join(root, f))
             for root, _, files in os.walk(path) for f in files
             if not (root == path and f == CARD_FILE))


def _model_facts(model_dir: str, config, metadata: dict[str, Any]) -> list:
  """The 'Model' bullets: architecture, weights, training, data, time."""
  train = metadata.get('train', {})
  losses = metadata.get('metrics', {})
  wall = metadata.get('wall_seconds')
  nan = float('nan')
  return [
      ('Architecture', json.dumps(config.to_dict())),
      ('Weights', f'{metadata.get("weights_dtype", "see model_config.json")},'
       f' {_size_on_disk(model_dir) / 1e6:.1f} MB on disk (whole folder)'),
      ('Training', f'{metadata.get("steps", "?")} steps, batch'
       f' {train.get("batch_size", "?")}, Adam lr'
       f' {train.get("learning_rate", "?")}, beta1 {train.get("beta1", "?")},'
       f' flips {train.get("flip", "?")}, seed {train.get("seed", "?")}'
       + (f', G weights averaged (EMA decay {train["ema_decay"]})'
          if train.get('ema_decay') else '')
       + (f', DiffAugment {train["augment"]} for D'
          if train.get('augment') else '')),
      *_lineage(metadata.get('initialised_from')),
      ('Training data', metadata.get('data', '?')),
      ('Training wall time',
       f'{wall / 3600:.2f} h' if wall else 'not recorded'),
      ('Machine', metadata.get('machine', '?')),
      ('Final training losses (last logged step)',
       f'D {losses.get("d_loss", nan):.3f}, G {losses.get("g_loss", nan):.3f}'),
  ]


def _lineage(source: dict[str, Any] | None) -> list[tuple[str, str]]:
  """A card bullet for a run started from another model's weights, if any."""
  if not source:
    return []
  wall = source.get('wall_seconds')
  return [('Initialised from',
           f'{os.path.basename(source["model"])}, itself trained'
           f' {source.get("steps", "?")} steps'
           + (f' ({wall / 3600:.2f} h)' if wall else '')
           + '; the steps and wall time here are those of this run only,'
           ' with a fresh Adam state')]


def _evaluation_lines(summaries: dict[str, Any], data_description: str,
                      search: dict[str, Any], num_images: int) -> list[str]:
  """The test-set section: scores per mask (with the realism of the
  results where it was measured), semantic accuracy, grids."""
  realism = all('ms_swd' in r for r in summaries.values())
  lines = cards.section(
      'Inpainting on held-out test images',
      f'{num_images} images: {data_description}. z-search:'
      f' {search["iterations"]} Adam steps, lr {search["learning_rate"]},'
      f' lambda {search["lam"]}, {search["restarts"]} restart(s), importance'
      f' window {search["window"]}; Poisson blending. PSNR/SSIM against the'
      ' originals; "mean fill" fills the hole with the mean colour of the'
      ' known pixels.', '',
      cards.table(
          ('mask', 'missing', 'PSNR (dB)', 'SSIM', 'mean-fill PSNR (dB)')
          + (('MS-SWD', 'mean-fill MS-SWD') if realism else ()),
          [(kind, f'{100 * r["mean_missing_fraction"]:.0f} %',
            f'{r["mean_psnr"]:.2f}', f'{r["mean_ssim"]:.3f}',
            f'{r["mean_psnr_mean_fill"]:.2f}')
           + ((f'{r["ms_swd"]:.1f}', f'{r["ms_swd_mean_fill"]:.1f}')
              if realism else ())
           for kind, r in summaries.items()]), '')
  if all('semantic_accuracy' in r for r in summaries.values()):
    ceiling = all(r.get('semantic_accuracy_of_ceiling') is not None
                  for r in summaries.values())
    lines += cards.section(
        'Semantic accuracy',
        'The fraction of images the digit classifier (models/svhn_classifier)'
        ' labels correctly: inpainted, the originals and the masked input'
        ' (missing pixels at 0).'
        + (' "Masked classifier": a classifier trained on inputs masked'
           ' like these (models/svhn_classifier_<mask>), the ceiling of what'
           ' any fill can carry; the last column is the fills\' accuracy'
           ' as a fraction of it.' if ceiling else ''), '',
        cards.score_table(
            ('mask', 'inpainted', 'originals', 'masked',
             'inpainted / originals')
            + (('masked classifier', 'inpainted / masked classifier')
               if ceiling else ()), summaries,
            [(f'semantic_accuracy{s}', '.3f')
             for s in ('', '_originals', '_masked', '_ratio')
             + (('_ceiling', '_of_ceiling') if ceiling else ())]), '',
        level=3)
  lines += ['Rows: masked input | G(z) | blended result | original.', '']
  for kind in summaries:
    lines += cards.section(kind, cards.image(kind, f'grid_{kind}.png'), '',
                           level=3)
  return lines


def _training_lines(metadata: dict[str, Any]) -> list[str]:
  """The validation curve, samples over time and 16-bit weights check, if any.

  Written into the model's metadata when it is exported from a run.
  """
  lines = []
  curve = metadata.get('validation_curve')
  if curve:
    lines += _curve_lines(curve, metadata)
  steps = metadata.get('samples_over_time_steps')
  if steps:
    lines += cards.section(
        'Samples over time',
        f'One row per training step ({", ".join(map(str, steps))}), the same'
        ' 8 latents in every row.', '',
        cards.image('samples over time', checkpoints.SAMPLES_OVER_TIME_FILE),
        '')
  dtype = metadata.get('weights_dtype', 'float32')
  check = metadata.get(checkpoints.stored_weights_check_key(dtype))
  if check:
    fixed = check.get('fixed_latent_psnr')
    columns = ['mask', 'float32 weights', f'stored {dtype} weights']
    rows = check['psnr']
    fields = [('float32', '.3f'), (dtype, '.3f')]
    note = ''
    if fixed:
      columns.append(f'stored {dtype}, float32 search\'s latents')
      rows = {k: {**v, 'fixed': fixed[k][dtype]} for k, v in rows.items()}
      fields.append(('fixed', '.3f'))
      note = ('; the last column puts the latents found with the float32'
              ' weights through the stored G (the rounding alone, without the'
              ' search\'s chaos: a tiny weight change can send one image\'s'
              ' search to another optimum)')
    lines += cards.section(
        f'{dtype} weights',
        f'Stored in {dtype} (restored as float32). Validation PSNR of the'
        f' float32 search ({check["num_images"]} images,'
        f' {check["iterations"]} iterations) with the float32 weights before'
        f' export and with the stored weights{note}:', '',
        cards.score_table(tuple(columns), rows, fields), '')
  return lines


def _curve_lines(curve: list[dict[str, Any]],
                 metadata: dict[str, Any]) -> list[str]:
  """The validation curve's section: its picture and table, the shipped
  step in bold."""
  selected = metadata.get('selected_step')
  kinds = list(dict.fromkeys(r['mask'] for r in curve))
  realism = any('samples_ms_swd' in r for r in curve)
  first = curve[0]
  by_step = {}
  for row in curve:
    by_step.setdefault(row['step'], {})[row['mask']] = row
  rows = []
  for step, by_kind in sorted(by_step.items()):
    mark = '**' if step == selected else ''
    wall = next(iter(by_kind.values())).get('wall_seconds')
    samples = next((r['samples_ms_swd'] for r in by_kind.values()
                    if 'samples_ms_swd' in r), None)
    rows.append([f'{mark}{step}{mark}', cards.hours(wall)]
                + [f'{by_kind[k]["mean_psnr"]:.2f}' if k in by_kind else '-'
                   for k in kinds]
                + ([f'{samples:.1f}' if samples is not None else '-']
                   if realism else []))
  fills = [next(r for r in curve if r['mask'] == k)['mean_psnr_mean_fill']
           for k in kinds]
  rows.append(['mean-colour fill', ''] + [f'{f:.2f}' for f in fills]
              + ([''] if realism else []))
  floors = [r['samples_ms_swd_floor'] for r in curve
            if 'samples_ms_swd_floor' in r]
  if floors:
    rows.append(['real vs real (floor)', ''] + [''] * len(kinds)
                + [f'{floors[-1]:.1f}'])
  return cards.section(
      'Validation curve',
      f'Inpainting PSNR (dB) of the training checkpoints on'
      f' {first["num_images"]} validation images (the last 256 train images,'
      f' never trained on), {first["iterations"]} z-search iterations, window'
      f' {first["window"]} (`python -m experiments.validation_curve`).'
      f' Shipped: step {selected} ({metadata.get("selected_by", "?")}).', '',
      cards.image('validation curve', checkpoints.MODEL_CURVE_FILE), '',
      cards.table(['step', 'wall time (h)', *kinds]
                  + (['samples MS-SWD'] if realism else []), rows), '')

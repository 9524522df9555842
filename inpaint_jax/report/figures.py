"""The paper's figures, drawn from the arrays.npz files of a reproduce run.

`write_figures` reads the cells of a reproduce run (`cells.Run`) and writes
PNG grids (`panels`, Pillow) in the layout of the paper's figures, and a
chart of the scores (`charts`, matplotlib):

* fig1_large_holes.png: masked | TV | LR | PM | ours | original (Fig. 1),
  centre and half masks.
* fig3b_search.png (+ .gif): G(z) as the z-search goes (Fig. 3b).
* fig4_prior.png: without and with the prior loss (Fig. 4).
* fig5_blending.png: without and with Poisson blending (Fig. 5).
* fig6_random80.png: TV, LR and ours on the random 80 % mask (Fig. 6).
* fig7_nearest_neighbour.png: NN and ours (Fig. 7).
* fig8_11_ce_<dataset>.png: CE and ours for every mask (Figs. 8-11).
* fig12_error_images.png: amplified error images of CE and ours (Fig. 12).
* fig13_failures.png: the highest final z-search losses of ours (Fig. 13).
* psnr_per_method.png: PSNR of every method per mask, with 95 % intervals.

Images are shown twice their size (nearest neighbour), missing pixels black,
with short labels on white. The images of each figure are chosen
deterministically: the first few of a cell, or by the criterion the figure
states. A figure whose cells or methods were not run is skipped with a note
on stderr.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from inpaint_jax.report import cells
from inpaint_jax.report import charts
from inpaint_jax.report import panels


def _note(name: str, why: str) -> None:
  print(f'note: {name} skipped: {why}.', file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class Figure:
  """A written figure: its file and a one-line caption."""
  path: str
  caption: str


def _save_stacked(parts: Sequence[tuple[str, Image.Image]], figures_dir: str,
                  name: str) -> str:
  """The (title, grid) parts one above the other as `figures_dir/name`."""
  return panels.save(panels.stack_panels(parts),
                     os.path.join(figures_dir, name))


def _stacked_figure(parts: Sequence[tuple[str, Image.Image]],
                    figures_dir: str, name: str, caption: str, *,
                    missing: str) -> list[Figure]:
  """[the parts stacked as `figures_dir/name`], or [] and a note that says
  what is `missing` when there are no parts."""
  if not parts:
    _note(name, missing)
    return []
  return [Figure(_save_stacked(parts, figures_dir, name), caption)]


def _method_columns(run: cells.Run, dataset: str, kind: str,
                    method_names: Sequence[str], rows: slice | np.ndarray,
                    labels: dict[str, str]):
  """masked | each method's result | original for the chosen images."""
  chosen = [run.cell(dataset, kind, m) for m in method_names]
  base = chosen[0]
  columns = ([base.masked()[rows]] + [c.inpainted[rows] for c in chosen]
             + [base.images[rows]])
  labels = (['masked'] + [labels.get(m, cells.METHOD_LABELS.get(m, m))
                          for m in method_names] + ['original'])
  return columns, labels


def _comparison(run: cells.Run, figures_dir: str, name: str, caption: str,
                method_names: Sequence[str], kinds: Sequence[str],
                every_kind: bool = False, k: int = 3,
                labels: dict[str, str] | None = None) -> list[Figure]:
  """One panel per data set (and per mask with `every_kind`, else the first
  of `kinds` with every method): masked | methods | original, first k.
  `labels` overrides the METHOD_LABELS of `cells`."""
  parts = []
  for dataset in run.datasets:
    usable = [m for m in kinds if run.has(dataset, m, *method_names)]
    for kind in usable if every_kind else usable[:1]:
      columns, column_labels = _method_columns(
          run, dataset, kind, method_names, slice(0, k), labels or {})
      parts.append((f'{dataset}, {kind} mask (first {len(columns[0])}'
                    ' test images)',
                    panels.labelled_grid(columns, column_labels)))
  return _stacked_figure(
      parts, figures_dir, name, caption,
      missing=(f'no cell of mask {"/".join(kinds)} with every one of'
               f' {", ".join(method_names)}'))


def fig1_large_holes(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 1: masked | TV | LR | PM | ours | original, centre and half masks,
  the first 2 images per data set and mask."""
  return _comparison(
      run, figures_dir, 'fig1_large_holes.png',
      'Fig. 1: large holes (centre and half masks): TV, LR, PM and ours.',
      ('tv', 'lr', 'pm', 'ours'), ('center', 'half'), every_kind=True, k=2)


def _frame_indices(count: int, shown: int = 6) -> list[int]:
  return sorted({int(round(i)) for i in np.linspace(0, count - 1, shown)})


def fig3b_search(run: cells.Run, figures_dir: str,
                 k: int = 4) -> list[Figure]:
  """Fig. 3b: G(z) over the search for the first k images of the first data
  set's centre-mask cell of 'ours' (needs a recorded search): masked | up to
  6 frames | blended result | original; and fig3b_search.gif, every frame.
  """
  name = 'fig3b_search.png'
  chosen = [d for d in run.datasets if run.has(d, 'center', 'ours')
            and run.cell(d, 'center', 'ours').frames is not None]
  if not chosen:
    _note(name, "no centre-mask cell of 'ours' with a recorded search (run"
          ' with --record_every > 0)')
    return []
  dataset = chosen[0]
  cell = run.cell(dataset, 'center', 'ours')
  frames = cell.frames[:k]
  k = len(frames)
  steps = (cell.frame_steps if cell.frame_steps is not None
           else np.arange(frames.shape[1]))
  shown = _frame_indices(frames.shape[1])
  columns = ([cell.masked()[:k]] + [frames[:, f] for f in shown]
             + [cell.inpainted[:k], cell.images[:k]])
  labels = (['masked'] + [f'G(z), step {int(steps[f])}' for f in shown]
            + ['blended', 'original'])
  title = (f'{dataset}, centre mask: G(z) as z is searched (first {k} test'
           ' images)')
  png = _save_stacked([(title, panels.labelled_grid(columns, labels))],
                      figures_dir, name)
  pictures = [panels.labelled_grid(
      [cell.masked()[:k], frames[:, f], cell.images[:k]],
      ['masked', f'G(z), step {int(steps[f])}', 'original'])
              for f in range(frames.shape[1])]
  gif = os.path.join(figures_dir, 'fig3b_search.gif')
  pictures[0].save(gif, save_all=True, append_images=pictures[1:],
                   duration=[200] * (len(pictures) - 1) + [1500], loop=0)
  caption = (f'Fig. 3b: the z-search on {dataset} (centre mask), G(z) from'
             ' the random start to the last step, then blended.')
  return [Figure(png, caption), Figure(gif, caption + ' (animated)')]


def fig4_prior(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 4: masked | ours with lambda = 0 | ours | original, the first 3
  images of the centre mask (else the first mask with both) per data set."""
  lams = {run.cell(d, m, 'ours').summary.get('search', {}).get('lam')
          for d, m, x in run.paths if x == 'ours'}
  lam = lams.pop() if len(lams) == 1 else None
  with_prior = f'lambda={lam:g}' if isinstance(lam, (int, float)) else 'ours'
  return _comparison(
      run, figures_dir, 'fig4_prior.png',
      f'Fig. 4: without (lambda=0) and with the prior loss ({with_prior}).',
      ('ours_lam0', 'ours'), cells.MASK_ORDER,
      labels={'ours': f'ours, {with_prior}' if lam is not None else 'ours'})


def fig5_blending(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 5: masked | ours without blending | ours | original, the first 3
  images of the centre mask (else the first mask with both) per data set."""
  return _comparison(run, figures_dir, 'fig5_blending.png',
                     'Fig. 5: without and with Poisson blending.',
                     ('ours_noblend', 'ours'), cells.MASK_ORDER)


def fig6_random80(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 6: masked | TV | LR | ours | original, random mask, first 3."""
  return _comparison(run, figures_dir, 'fig6_random80.png',
                     'Fig. 6: random mask (80 % missing): TV, LR and ours.',
                     ('tv', 'lr', 'ours'), ('random',))


def fig7_nearest_neighbour(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 7: masked | NN | ours | original, the first 3 images of the centre
  mask (else the first mask with both) per data set."""
  return _comparison(run, figures_dir, 'fig7_nearest_neighbour.png',
                     'Fig. 7: nearest-neighbour retrieval (NN) and ours.',
                     ('nn', 'ours'), cells.MASK_ORDER)


def fig8_11_context_encoder(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Figs. 8-11: per data set, masked | CE | ours | original for every mask,
  the first 3 images; fig8_11_ce_<dataset>.png."""
  figures = []
  for dataset in run.datasets:
    figures += _comparison(
        cells.Run({key: path for key, path in run.paths.items()
                   if key[0] == dataset}),
        figures_dir, f'fig8_11_ce_{dataset}.png',
        f'Figs. 8-11: the Context Encoder (CE) and ours on {dataset}.',
        ('ce', 'ours'), cells.MASK_ORDER, every_kind=True)
  if not run.datasets:
    _note('fig8_11_ce_*.png', 'no cells')
  return figures


def fig12_error_images(run: cells.Run, figures_dir: str) -> list[Figure]:
  """Fig. 12: per data set, the centre-mask image where CE's PSNR is ahead
  of ours by the most: original | CE | its |error| x4 | ours | its |error|
  x4, each PSNR under its picture."""
  name = 'fig12_error_images.png'
  parts = []
  for dataset in run.datasets:
    if not run.has(dataset, 'center', 'ce', 'ours'):
      continue
    ce, ours = (run.cell(dataset, 'center', m) for m in ('ce', 'ours'))
    lead = ce.metrics['psnr'] - ours.metrics['psnr']
    i = int(np.argmax(lead))
    pick = slice(i, i + 1)
    gain = f'x{panels.ERROR_GAIN:g}'
    columns = [ce.images[pick], ce.inpainted[pick],
               panels.error_image(ce.inpainted[pick], ce.images[pick]),
               ours.inpainted[pick],
               panels.error_image(ours.inpainted[pick], ours.images[pick])]
    labels = ['original', 'CE', f'CE |error| {gain}', 'ours',
              f'ours |error| {gain}']
    notes = [['', f"{ce.metrics['psnr'][i]:.2f} dB", '',
              f"{ours.metrics['psnr'][i]:.2f} dB", '']]
    parts.append((f'{dataset}, centre mask, {ce.names[i]}: CE - ours ='
                  f' {lead[i]:+.2f} dB (the largest over'
                  f' {len(lead)} images)',
                  panels.labelled_grid(columns, labels, cell_labels=notes)))
  return _stacked_figure(
      parts, figures_dir, name,
      'Fig. 12: error images of CE and ours (PSNR under each result), the'
      ' image where CE leads ours by the most.',
      missing="no centre-mask cell with both 'ce' and 'ours'")


def fig13_failures(run: cells.Run, figures_dir: str,
                   k: int = 3) -> list[Figure]:
  """Fig. 13: per data set, the k images of the centre mask (else the first
  mask with a loss) where ours ends with the highest z-search loss: masked |
  G(z) | result | original, the loss under G(z)."""
  name = 'fig13_failures.png'
  parts = []
  for dataset in run.datasets:
    kinds = [m for m in cells.MASK_ORDER if run.has(dataset, m, 'ours')
             and 'loss' in run.cell(dataset, m, 'ours').metrics]
    if not kinds:
      continue
    cell = run.cell(dataset, kinds[0], 'ours')
    loss = cell.metrics['loss']
    worst = np.argsort(-loss, kind='stable')[:k]
    columns = [cell.masked()[worst], cell.generated[worst],
               cell.inpainted[worst], cell.images[worst]]
    notes = [['', f'loss {loss[i]:.1f}', f"{cell.metrics['psnr'][i]:.2f} dB",
              ''] for i in worst]
    parts.append((f'{dataset}, {kinds[0]} mask: the {len(worst)} highest'
                  f' final losses of {len(loss)} images',
                  panels.labelled_grid(columns, ['masked', 'G(z)', 'result',
                                                 'original'],
                                       cell_labels=notes)))
  return _stacked_figure(
      parts, figures_dir, name,
      'Fig. 13: failures: the highest final z-search losses of ours (loss'
      ' under G(z), PSNR under the result).',
      missing="no cell of 'ours' with its z-search loss")


def score_chart(rows: Sequence[dict[str, Any]], path: str,
                score: str = 'psnr', y_label: str = 'PSNR (dB)') -> str:
  """Writes a chart of `score` per mask type, one panel per data set: each
  method's mean and 95 % interval (`<score>_ci95`) from the summary rows
  (results.csv's, numbers not strings); returns `path`."""
  chart = []
  for dataset in cells.ordered({r['dataset'] for r in rows},
                               cells.DATASET_ORDER):
    here = [r for r in rows if r['dataset'] == dataset]
    methods = cells.ordered({r['method'] for r in here}, cells.METHOD_ORDER)
    scores = {cells.METHOD_LABELS.get(m, m): {
        r['mask']: (r[score], r[f'{score}_ci95']) for r in here
        if r['method'] == m} for m in methods}
    chart.append((dataset, cells.ordered({r['mask'] for r in here},
                                         cells.MASK_ORDER), scores))
  return charts.interval_chart(path, chart, y_label=y_label)


def psnr_per_method(run: cells.Run, figures_dir: str) -> list[Figure]:
  """PSNR of every method per mask type, one panel per data set, with the
  95 % confidence intervals of the cells' rows (`score_chart`)."""
  name = 'psnr_per_method.png'
  rows = run.rows()
  if not rows:
    _note(name, 'no cells')
    return []
  path = score_chart(rows, os.path.join(figures_dir, name))
  return [Figure(path, 'PSNR (whole image) of every method per mask, mean'
                 ' and 95 % confidence interval.')]


FIGURES: tuple[Callable[[cells.Run, str], list[Figure]], ...] = (
    fig1_large_holes, fig3b_search, fig4_prior, fig5_blending, fig6_random80,
    fig7_nearest_neighbour, fig8_11_context_encoder, fig12_error_images,
    fig13_failures, psnr_per_method)


def write_figures(reproduce_dir: str, figures_dir: str,
                  only: Iterable[tuple[str, str, str]] | None = None
                  ) -> list[Figure]:
  """Every figure of `FIGURES` that the run's cells allow, into
  `figures_dir`; the others are skipped with a note on stderr.

  Args:
    reproduce_dir: a `reproduce` output folder (<dataset>/<mask>/<method>/
      arrays.npz).
    figures_dir: where the PNGs (and fig3b_search.gif) go; made if missing.
    only: if given, only these (dataset, mask, method) cells are drawn (e.g.
      those of this run, not others an earlier run left in the folder).

  Returns:
    The figures written, in the order of FIGURES.
  """
  run = cells.Run.scan(reproduce_dir)
  if only is not None:
    wanted = set(only)
    run = cells.Run({key: path for key, path in run.paths.items()
                     if key in wanted})
  written = []
  for figure in FIGURES:
    written += figure(run, figures_dir)
  cells.clear_cache()  # frees the arrays
  return written

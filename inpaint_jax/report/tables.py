"""Markdown tables and results.csv of a reproduce run's summary rows.

Each row (`evaluation.reproduce.summary_row`) is one (data set, mask,
method) cell: {'dataset', 'mask', 'method', 'images', and for each of
SCORES the mean and '<score>_ci95', its 95 % half-width; with a digit
classifier the SEMANTIC columns}. `write_tables` writes them as results.csv
and as the Markdown tables of `TABLES`: Table 1 as the paper prints it (the
paper's numbers, PAPER_TABLE1, beside ours), the same with SSIM, every
method, and the semantic accuracy.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Sequence

# Table 1 of the paper: PSNR (dB) of (Context Encoder, ours).
PAPER_TABLE1 = {
    ('celeba', 'center'): (21.3, 19.4), ('svhn', 'center'): (22.3, 19.0),
    ('cars', 'center'): (14.1, 13.5), ('celeba', 'pattern'): (19.2, 17.4),
    ('svhn', 'pattern'): (22.3, 19.8), ('cars', 'pattern'): (14.0, 14.1),
    ('celeba', 'random'): (20.6, 22.8), ('svhn', 'random'): (24.1, 33.0),
    ('cars', 'random'): (16.1, 18.9), ('celeba', 'half'): (15.5, 13.7),
    ('svhn', 'half'): (19.1, 14.6), ('cars', 'half'): (12.6, 11.1),
}
# Every row's scores, on the whole image and on the hole only.
SCORES = ('psnr', 'ssim', 'psnr_hole', 'ssim_hole')
# With a digit classifier (SVHN): accuracy on the inpainted images (mean and
# 95 % half-width), on the originals and on the masked input.
SEMANTIC = ('semantic_accuracy', 'semantic_accuracy_ci95',
            'semantic_accuracy_originals', 'semantic_accuracy_masked')
# Where a classifier of the masked input exists (the semantic ceiling, see
# evaluation.semantic): its accuracy on the cell's masked images.
CEILING = 'semantic_accuracy_ceiling'


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
  """Every row: PSNR and SSIM on the whole image and on the hole only, and
  the realism of the inpainted set (MS-SWD x10^3 against the originals;
  '-' for a row saved before it was measured)."""
  lines = ['| data set | mask | method | PSNR | SSIM | PSNR hole | SSIM hole'
           ' | MS-SWD |',
           '| --- | --- | --- | --- | --- | --- | --- | --- |']
  for r in rows:
    realism = f"{r['ms_swd']:.1f}" if r.get('ms_swd') is not None else '-'
    lines.append(
        f"| {r['dataset']} | {r['mask']} | {r['method']} | "
        + ' | '.join(_mean_ci(r, s, 3) for s in SCORES) + f' | {realism} |')
  return '\n'.join(lines) + '\n'


def table_semantic_markdown(rows: Sequence[dict[str, Any]]) -> str:
  """The digit classifier's accuracy per (data set, mask): on the originals,
  the masked input and each method's result (with its 95 % interval and,
  in brackets, its ratio to the originals' accuracy); where the cell has a
  classifier of the masked input (CEILING), its accuracy too and each
  result's fraction of it ('ceiling')."""
  rows = [r for r in rows if r.get('semantic_accuracy') is not None]
  if not rows:
    return 'No data set of this run has labels for the semantic accuracy.\n'
  method_names = _in_order(rows, 'method')
  ceilings = has_ceiling(rows)
  lines = ['| data set | mask | originals | masked input | '
           + ('masked classifier | ' if ceilings else '')
           + ' | '.join(method_names) + ' |',
           '| --- | --- | --- | --- |' + ' --- |' * (len(method_names)
                                                      + ceilings)]
  by_cell = _by_cell(rows)
  for dataset in _in_order(rows, 'dataset'):
    for kind in _in_order(rows, 'mask'):
      here = [by_cell.get((dataset, kind, m)) for m in method_names]
      first = next((r for r in here if r), None)
      if first is None:
        continue
      originals = first['semantic_accuracy_originals']
      ceiling = _number(first.get(CEILING))
      cells = [_semantic_cell(r, originals, ceiling) if r else '-'
               for r in here]
      lines.append(f'| {dataset} | {kind} | {originals:.3f} |'
                   f" {first['semantic_accuracy_masked']:.3f} | "
                   + (('- | ' if ceiling is None else f'{ceiling:.3f} | ')
                      if ceilings else '')
                   + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def has_ceiling(rows: Sequence[dict[str, Any]]) -> bool:
  """Whether any row holds the masked-input classifier's accuracy (CEILING;
  rows from results.csv hold '' where it was not measured)."""
  return any(_number(r.get(CEILING)) is not None for r in rows)


def _number(value) -> float | None:
  """A float from a row's cell (a number, or a results.csv string), or None
  where it is empty."""
  if value is None or value == '':
    return None
  return float(value)


def _semantic_cell(row, originals, ceiling) -> str:
  ratios = [f"{row['semantic_accuracy'] / originals:.2f}"] if originals else []
  if ceiling:
    ratios.append(f"ceiling {row['semantic_accuracy'] / ceiling:.2f}")
  return (f"{row['semantic_accuracy']:.3f} ± "
          f"{row['semantic_accuracy_ci95']:.3f}"
          + (f" ({', '.join(ratios)})" if ratios else ''))


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
      c for s in SCORES for c in (s, f'{s}_ci95')] + ['ms_swd'] + list(
          SEMANTIC) + [CEILING]
  with open(os.path.join(output_dir, 'results.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, columns, restval='')
    writer.writeheader()
    writer.writerows(rows)
  for name, markdown in TABLES.items():
    with open(os.path.join(output_dir, name), 'w') as f:
      f.write(markdown(rows))

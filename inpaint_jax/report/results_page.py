"""docs/RESULTS.md, written from a reproduce run (`write_results_page`).

The page says what ran (command, machine, date, images per cell, search
settings and model checksums per data set), shows Table 1 (PSNR, with the
paper's numbers), Table 1 with SSIM and the full table, embeds every figure
`figures.write_figures` wrote, and discusses the results. Every claim of the
discussion is computed from the rows (`discussion`, `hole_gap_section`):
each says in how many cells it holds and where it fails, and says so when
the methods it needs did not run, so the wording stays true whatever the
numbers are.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from typing import Any, Sequence

from inpaint_jax.report import figures as figures_lib
from inpaint_jax.report import tables

# The run's results.csv, copied beside the page.
RESULTS_CSV = 'results.csv'
LARGE_HOLES = ('center', 'half')
BASELINES = ('tv', 'lr', 'nn', 'pm')
_NAMES = {'ce': 'CE', 'tv': 'TV', 'lr': 'LR', 'nn': 'NN', 'pm': 'PM',
          'opencv_telea': 'OpenCV Telea', 'opencv_ns': 'OpenCV NS',
          'ours': 'ours', 'ours_noblend': 'ours without blending',
          'ours_lam0': 'ours with λ = 0'}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What ran on one data set: the z-search settings of 'ours' and the
  models used, {model directory: its variables_sha256 or None}."""
  iterations: int
  lam: float
  window: int
  record_every: int
  models: dict[str, str | None]


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """What the page says about the run itself.

  Attributes:
    command: the command line, e.g. 'python -m experiments.reproduce ...'.
    machine: e.g. `reproduce.machine_description()`.
    date: when the page was written, e.g. `reproduce.utc_now()`.
    datasets: {data set: DatasetInfo}.
  """
  command: str
  machine: str
  date: str
  datasets: dict[str, DatasetInfo]


def _by_cell(rows):
  return {(r['dataset'], r['mask'], r['method']): r for r in rows}


def _cells(rows):
  return list(dict.fromkeys((r['dataset'], r['mask']) for r in rows))


def _listing(items: Sequence[str]) -> str:
  return '; '.join(items)


def _count(held: int, total: int, what: str) -> str:
  return f'{held} of {total} {what}'


def ce_against_ours(rows: Sequence[dict[str, Any]]) -> str:
  """The paper's Table 1 claim, checked cell by cell: CE ahead of ours on
  PSNR for every mask but the random one, where ours is ahead."""
  by_cell = _by_cell(rows)
  both = [(d, m) for d, m in _cells(rows)
          if (d, m, 'ce') in by_cell and (d, m, 'ours') in by_cell]
  if not both:
    return ('CE and ours did not both run on any (data set, mask) cell, so'
            ' the paper\'s claim that CE is ahead of ours on PSNR except with'
            ' random masks is not checked here.')
  fails = []
  for d, m in both:
    ce, ours = by_cell[(d, m, 'ce')]['psnr'], by_cell[(d, m, 'ours')]['psnr']
    if (ours > ce) != (m == 'random'):
      fails.append(f'{d}/{m} (CE {ce:.2f} dB, ours {ours:.2f} dB)')
  text = ('The paper\'s claim that CE is ahead of ours on PSNR except with'
          ' random masks (where ours is ahead) holds in'
          f' {_count(len(both) - len(fails), len(both), "cells")} here')
  text += f'; it fails in {_listing(fails)}.' if fails else '.'
  ssim_ahead = sum(by_cell[(d, m, 'ce')]['ssim'] > by_cell[(d, m, 'ours')]
                   ['ssim'] for d, m in both)
  return text + (f' On SSIM, CE is ahead of ours in'
                 f' {_count(ssim_ahead, len(both), "cells")}.')


def ours_against_baselines(rows: Sequence[dict[str, Any]]) -> str:
  """Ours against TV, LR, NN and PM on the large holes (centre, half)."""
  by_cell = _by_cell(rows)
  pairs = [(d, m, b) for d, m in _cells(rows) if m in LARGE_HOLES
           for b in BASELINES
           if (d, m, b) in by_cell and (d, m, 'ours') in by_cell]
  if not pairs:
    return ('Ours and the TV/LR/NN/PM baselines did not run together on a'
            ' large hole (centre or half mask), so they are not compared'
            ' here.')
  fails = [f'{_NAMES[b]} on {d}/{m} ({_NAMES[b]}'
           f' {by_cell[(d, m, b)]["psnr"]:.2f} dB, ours'
           f' {by_cell[(d, m, "ours")]["psnr"]:.2f} dB)'
           for d, m, b in pairs
           if by_cell[(d, m, b)]['psnr'] >= by_cell[(d, m, 'ours')]['psnr']]
  text = ('On the large holes (centre and half masks) ours is ahead of the'
          ' TV/LR/NN/PM baselines on PSNR in'
          f' {_count(len(pairs) - len(fails), len(pairs), "comparisons")}')
  return text + (f'; not ahead of {_listing(fails)}.' if fails else '.')


def _paired_gain(rows, method: str, reference: str, what: str,
                 figure: str) -> str:
  """Mean PSNR of `method` minus `reference` over the cells with both."""
  by_cell = _by_cell(rows)
  gains = [by_cell[(d, m, method)]['psnr'] - by_cell[(d, m, reference)]['psnr']
           for d, m in _cells(rows)
           if (d, m, method) in by_cell and (d, m, reference) in by_cell]
  if not gains:
    return (f'{what}: {_NAMES[method]} and {_NAMES[reference]} did not run on'
            f' the same cell, so this ({figure}) is not measured here.')
  mean = sum(gains) / len(gains)
  ahead = sum(g > 0 for g in gains)
  if abs(mean) < 0.005:
    change = 'leaves PSNR unchanged to 0.01 dB on average'
  else:
    change = (f'{"raises" if mean > 0 else "lowers"} PSNR by'
              f' {abs(mean):.2f} dB on average')
  return (f'{what} {change} over {len(gains)} cells (from'
          f' {min(gains):+.2f} to {max(gains):+.2f} dB; {_NAMES[method]}'
          f' ahead in {_count(ahead, len(gains), "cells")}) ({figure}).')


def blending_gain(rows: Sequence[dict[str, Any]]) -> str:
  """What Poisson blending changes: ours minus ours_noblend (Fig. 5)."""
  return _paired_gain(rows, 'ours', 'ours_noblend', 'Poisson blending',
                      'Fig. 5')


def prior_gain(rows: Sequence[dict[str, Any]], lam: float | None) -> str:
  """What the prior loss changes: ours minus ours_lam0 (Fig. 4)."""
  what = ('The prior loss' + (f' (λ = {lam:g} against λ = 0)'
                              if lam is not None else ' (against λ = 0)'))
  return _paired_gain(rows, 'ours', 'ours_lam0', what, 'Fig. 4')


def discussion(rows: Sequence[dict[str, Any]],
               lam: float | None = None) -> list[str]:
  """The discussion's claims, each computed from the rows (one a bullet)."""
  return [ce_against_ours(rows), ours_against_baselines(rows),
          blending_gain(rows), prior_gain(rows, lam)]


def hole_gap_section(rows: Sequence[dict[str, Any]]) -> str:
  """Whole-image against hole-only PSNR of CE and ours per cell, and which
  of the two the paper's Table 1 numbers are closer to."""
  by_cell = _by_cell(rows)
  lines = ['| data set | mask | method | PSNR whole | PSNR hole | gap |'
           ' paper | paper closer to |',
           '| --- | --- | --- | --- | --- | --- | --- | --- |']
  gaps, closer_to_hole, above_paper, compared = [], 0, 0, 0
  for d, m in _cells(rows):
    for method, paper_index in (('ce', 0), ('ours', 1)):
      row = by_cell.get((d, m, method))
      if row is None:
        continue
      gap = row['psnr'] - row['psnr_hole']
      gaps.append(gap)
      paper = tables.PAPER_TABLE1.get((d, m), (math.nan,) * 2)[paper_index]
      closer = '-'
      if math.isfinite(paper):
        compared += 1
        hole_closer = (abs(paper - row['psnr_hole'])
                       < abs(paper - row['psnr']))
        closer_to_hole += hole_closer
        above_paper += row['psnr'] > paper
        closer = 'hole only' if hole_closer else 'whole image'
      lines.append(f"| {d} | {m} | {_NAMES[method]} | {row['psnr']:.2f} |"
                   f" {row['psnr_hole']:.2f} | {gap:+.2f} |"
                   f" {paper if math.isfinite(paper) else '-'} | {closer} |")
  if not gaps:
    return ('Neither CE nor ours ran, so whole-image and hole-only PSNR are'
            ' not compared here.\n')
  text = [
      'The paper does not say over which pixels its PSNR is taken. Here'
      ' every score is computed twice: on the whole image and on the hole'
      ' only. A method that keeps the known pixels exactly (ours, whose'
      ' blend keeps them bit for bit, and CE, which pastes its prediction'
      ' into the hole) has a whole-image error of f times its hole error, f'
      ' the missing fraction, so its whole-image PSNR is higher by'
      ' -10 log10(f) dB (6.0 dB for a hole of a quarter of the image).',
      '',
      f'Over the {len(gaps)} CE and ours rows here the whole-image PSNR'
      f' minus the hole-only PSNR is {sum(gaps) / len(gaps):+.2f} dB on'
      f' average (from {min(gaps):+.2f} to {max(gaps):+.2f} dB).']
  if compared:
    text[-1] += (
        f' Our whole-image PSNR is above the paper\'s number in'
        f' {_count(above_paper, compared, "rows")}, and the paper\'s number'
        f' is closer to our hole-only PSNR than to our whole-image PSNR in'
        f' {_count(closer_to_hole, compared, "rows")}.')
  return '\n'.join(text + ['', *lines]) + '\n'


def _relative(path: str, page_dir: str) -> str:
  return os.path.relpath(os.path.abspath(path), page_dir).replace(os.sep, '/')


def _run_section(rows, info: RunInfo, output_dir: str, page_dir: str) -> list:
  counts = sorted({r['images'] for r in rows})
  methods = list(dict.fromkeys(r['method'] for r in rows))
  lines = [
      '## What ran', '',
      f'- Command: `{info.command}`',
      f'- Machine: {info.machine}',
      f'- Date: {info.date}',
      '- Images per cell: ' + ', '.join(str(c) for c in counts)
      + ' (the first test images of each data set; the same masks, seed 0,'
      ' for every method)',
      '- Methods: ' + ', '.join(f'`{m}`' for m in methods),
      f'- Numbers: [{RESULTS_CSV}]({RESULTS_CSV}) (a copy of the run\'s'
      f' results.csv; the per-cell folders are under {output_dir})', '',
      '| data set | iterations | λ | window | frames every | models'
      ' (variables_sha256) |',
      '| --- | --- | --- | --- | --- | --- |']
  for dataset, d in info.datasets.items():
    models = '<br>'.join(
        f'`{path}` (' + (f'`{sha}`' if sha else 'no checksum') + ')'
        for path, sha in d.models.items())
    lines.append(f'| {dataset} | {d.iterations} | {d.lam:g} | {d.window} |'
                 f' {d.record_every or "-"} | {models} |')
  return lines + ['']


def results_page(rows: Sequence[dict[str, Any]], info: RunInfo,
                 written: Sequence[figures_lib.Figure], output_dir: str,
                 page_dir: str) -> str:
  """The markdown of RESULTS.md (see `write_results_page`)."""
  lams = {d.lam for d in info.datasets.values()}
  lines = [
      '# Reproducing Yeh et al. 2017: results', '',
      'Written by `python -m experiments.reproduce` from the run below; run'
      ' it again rather than editing this page.', '',
      *_run_section(rows, info, output_dir, page_dir),
      '## Table 1: PSNR (dB)', '',
      'The paper\'s CE / ours beside CE and ours here (mean ± 95 % interval'
      ' over the images, whole image).', '',
      tables.table1_markdown(rows),
      '## Table 1 with SSIM', '',
      'CE and ours here (the paper gives no SSIM).', '',
      tables.table1_ssim_markdown(rows),
      '## Every method', '',
      'PSNR (dB) and SSIM on the whole image and on the hole only.', '',
      tables.table_all_markdown(rows),
      '## Semantic accuracy (SVHN)', '',
      'PSNR cannot tell a sharp wrong digit from a right one: the digit'
      ' classifier (`models/svhn_classifier`) reads every result, and the'
      ' fraction it labels correctly is given beside its accuracy on the'
      ' originals and on the masked input (missing pixels at 0); in brackets'
      ' the ratio to the originals.'
      + (' "Masked classifier": a classifier trained on inputs masked like'
         ' the cell\'s (`models/svhn_classifier_<mask>`), the ceiling of what'
         ' any fill can carry; "ceiling" is a result\'s accuracy as a'
         ' fraction of it.' if tables.has_ceiling(rows) else ''), '',
      tables.table_semantic_markdown(rows),
      '## Figures', '']
  if not written:
    lines += ['No figures were written for this run.', '']
  for figure in written:
    lines += [f'{figure.caption}', '',
              f'![{figure.caption}]({_relative(figure.path, page_dir)})', '']
  lines += ['## Discussion', '',
            *[f'- {claim}' for claim in discussion(
                rows, lams.pop() if len(lams) == 1 else None)], '',
            '## Whole image or hole only: why our PSNR differs from the'
            ' paper\'s', '', hole_gap_section(rows)]
  return '\n'.join(lines)


def write_results_page(path: str, rows: Sequence[dict[str, Any]],
                       info: RunInfo, written: Sequence[figures_lib.Figure],
                       output_dir: str) -> str:
  """Writes RESULTS.md at `path`; returns the path.

  Args:
    path: the page, e.g. docs/RESULTS.md; figures and tables are linked
      relative to its folder.
    rows: the summary rows of the run (`reproduce.run_cell`).
    info: what ran (`RunInfo`).
    written: the figures to embed (`figures.write_figures`).
    output_dir: the reproduce output folder; its results.csv is copied
      beside the page as RESULTS_CSV, so that the page's link works where
      the output folder is not (e.g. in the repository).
  """
  page_dir = os.path.dirname(os.path.abspath(path))
  os.makedirs(page_dir, exist_ok=True)
  shutil.copyfile(os.path.join(output_dir, 'results.csv'),
                  os.path.join(page_dir, RESULTS_CSV))
  with open(path, 'w') as f:
    f.write(results_page(rows, info, written, output_dir, page_dir))
  return path

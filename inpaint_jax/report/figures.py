"""The paper's figures, drawn from the arrays.npz files of a reproduce run.

`reproduce.run_cell` leaves `<run>/<dataset>/<mask>/<method>/arrays.npz` per
cell (`reproduce.save_cell_arrays`); `write_figures` reads them and writes
PNG grids (NumPy and Pillow only) in the layout of the paper's figures:

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
with short labels in Pillow's default font on white. The images of each
figure are chosen deterministically: the first few of a cell, or by the
criterion the figure states. A figure whose cells or methods were not run is
skipped with a note on stderr.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from inpaint_jax.data import images as image_io
ARRAYS_FILE = 'arrays.npz'  # reproduce.ARRAYS_FILE (not imported: no JAX)
# The paper's order; data sets, masks and methods not named here come after
# these, alphabetically.
DATASET_ORDER = ('celeba', 'svhn', 'cars')
MASK_ORDER = ('center', 'pattern', 'random', 'half')
METHOD_ORDER = ('ours', 'ours_noblend', 'ours_lam0', 'ce', 'tv', 'lr', 'nn',
                'pm')
METHOD_LABELS = {'ours': 'ours', 'ours_noblend': 'ours, no blending',
                 'ours_lam0': 'ours, lambda=0', 'ce': 'CE', 'tv': 'TV',
                 'lr': 'LR', 'nn': 'NN', 'pm': 'PM'}
SCALE = 2  # images are drawn this many times their size
PAD = 4
LINE = 13  # pixels per line of Pillow's default font
ERROR_GAIN = 4.0  # Fig. 12's error images: |error| times this
_COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189),
            (255, 127, 14), (23, 190, 207), (140, 86, 75), (227, 119, 194))


@dataclasses.dataclass(frozen=True)
class Cell:
  """One method on one (data set, mask) cell, as its arrays.npz holds it.

  Attributes:
    images, generated, inpainted: (N, H, W, C) float32 in [-1, 1].
    masks: (N, H, W, 1) float32, 1 = known pixel.
    names: the N image names.
    metrics: per-image (N,) float32: 'psnr', 'ssim', 'psnr_hole',
      'ssim_hole' and, for the z-search, 'loss'.
    summary: the method's metrics.json (its settings among it).
    row: the cell's summary row (results.csv).
    frames: (n, F, H, W, C) G(z) of images 0..n-1 during the search, in
      [-1, 1], or None (not recorded).
    frame_steps: (F,) the search step of each frame, or None.
  """
  images: np.ndarray
  masks: np.ndarray
  names: tuple[str, ...]
  generated: np.ndarray
  inpainted: np.ndarray
  metrics: dict[str, np.ndarray]
  summary: dict[str, Any]
  row: dict[str, Any]
  frames: np.ndarray | None = None
  frame_steps: np.ndarray | None = None

  def masked(self) -> np.ndarray:
    """The input the methods saw: missing pixels black, (N, H, W, C)."""
    return image_io.masked_for_display(self.images, self.masks)


def read_cell(path: str) -> Cell:
  """The `Cell` saved at `path` (an arrays.npz of reproduce.run_cell)."""
  return _read_cell(path, os.stat(path).st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_cell(path: str, modified: int) -> Cell:
  del modified  # in the cache key only: a rewritten file is read again
  with np.load(path) as saved:
    frames = (image_io.from_uint8(saved['frames'])
              if 'frames' in saved.files else None)
    return Cell(
        images=image_io.from_uint8(saved['images']),
        masks=np.asarray(saved['masks'], np.float32),
        names=tuple(str(n) for n in saved['names']),
        generated=image_io.from_uint8(saved['generated']),
        inpainted=image_io.from_uint8(saved['inpainted']),
        metrics={k[len('metric_'):]: saved[k] for k in saved.files
                 if k.startswith('metric_')},
        summary=json.loads(str(saved['summary'])),
        row=json.loads(str(saved['row'])),
        frames=frames,
        frame_steps=(saved['frame_steps'] if 'frame_steps' in saved.files
                     else None))


def _ordered(names, preferred):
  return sorted(names, key=lambda n: (preferred.index(n) if n in preferred
                                      else len(preferred), n))


@dataclasses.dataclass(frozen=True)
class Run:
  """The cells of a reproduce output folder that have an arrays.npz.

  Attributes:
    paths: {(dataset, mask, method): path of its arrays.npz}.
  """
  paths: dict[tuple[str, str, str], str]

  @classmethod
  def scan(cls, directory: str) -> Run:
    """Finds `<directory>/<dataset>/<mask>/<method>/arrays.npz`."""
    found = {}
    if os.path.isdir(directory):
      for dataset in os.listdir(directory):
        for kind in _listdir(os.path.join(directory, dataset)):
          for method in _listdir(os.path.join(directory, dataset, kind)):
            path = os.path.join(directory, dataset, kind, method, ARRAYS_FILE)
            if os.path.isfile(path):
              found[(dataset, kind, method)] = path
    return cls(found)

  @property
  def datasets(self) -> list[str]:
    return _ordered({d for d, _, _ in self.paths}, DATASET_ORDER)

  def masks(self, dataset: str) -> list[str]:
    return _ordered({m for d, m, _ in self.paths if d == dataset}, MASK_ORDER)

  def methods(self, dataset: str, kind: str) -> list[str]:
    return _ordered({x for d, m, x in self.paths if (d, m) == (dataset, kind)},
                    METHOD_ORDER)

  def has(self, dataset: str, kind: str, *methods: str) -> bool:
    return all((dataset, kind, m) in self.paths for m in methods)

  def cell(self, dataset: str, kind: str, method: str) -> Cell:
    return read_cell(self.paths[(dataset, kind, method)])

  def rows(self) -> list[dict[str, Any]]:
    """Every cell's summary row, data sets, masks and methods in order."""
    return [self.cell(d, m, x).row for d in self.datasets
            for m in self.masks(d) for x in self.methods(d, m)]


def _listdir(path):
  return sorted(os.listdir(path)) if os.path.isdir(path) else []


# Drawing --------------------------------------------------------------------


def _font() -> ImageFont.ImageFont:
  return ImageFont.load_default()


def _wrap(text: str, width: int) -> list[str]:
  """`text` in lines of at most `width` pixels (words never split)."""
  font, lines = _font(), []
  for paragraph in str(text).split('\n'):
    line = ''
    for word in paragraph.split(' '):
      candidate = f'{line} {word}' if line else word
      if line and font.getlength(candidate) > width:
        lines.append(line)
        line = word
      else:
        line = candidate
    lines.append(line)
  return lines


def _to_pixels(image: np.ndarray, scale: int) -> np.ndarray:
  """(H, W, C) in [-1, 1] -> (H*scale, W*scale, 3) uint8."""
  pixels = image_io.to_uint8(image)
  if pixels.shape[-1] == 1:
    pixels = np.repeat(pixels, 3, axis=-1)
  return pixels.repeat(scale, axis=0).repeat(scale, axis=1)


def labelled_grid(columns: Sequence[np.ndarray], labels: Sequence[str], *,
                  cell_labels: Sequence[Sequence[str]] | None = None,
                  scale: int = SCALE, pad: int = PAD) -> Image.Image:
  """A comparison grid with a label over each column, as an RGB image.

  Args:
    columns: K arrays (N, H, W, C) in [-1, 1] (C = 3, or 1 for grey); row i,
      column j shows columns[j][i].
    labels: K short column labels (wrapped to the column's width).
    cell_labels: optional N lists of K strings printed under each picture
      ('' for none), e.g. its PSNR.
    scale: each picture is shown `scale` times its size (nearest neighbour).
    pad: white space between pictures, in pixels.

  Returns:
    A PIL RGB image on white.
  """
  columns = [np.asarray(c, np.float32) for c in columns]
  if len(columns) != len(labels) or not columns:
    raise ValueError(f'{len(columns)} columns but {len(labels)} labels.')
  n, h, w = columns[0].shape[:3]
  cell_w, cell_h = w * scale, h * scale
  header = [_wrap(label, cell_w) for label in labels]
  header_h = LINE * max(len(lines) for lines in header)
  notes = [[_wrap(text, cell_w) for text in row] for row in cell_labels or []]
  note_h = LINE * max([len(lines) for row in notes for lines in row if
                       any(lines)] or [0])
  row_h = cell_h + note_h + pad
  canvas = Image.new('RGB', (pad + len(columns) * (cell_w + pad),
                             pad + header_h + pad + n * row_h), 'white')
  draw = ImageDraw.Draw(canvas)
  for j, lines in enumerate(header):
    _draw_lines(draw, lines, pad + j * (cell_w + pad), pad)
  for i in range(n):
    top = 2 * pad + header_h + i * row_h
    for j, column in enumerate(columns):
      left = pad + j * (cell_w + pad)
      canvas.paste(Image.fromarray(_to_pixels(column[i], scale)), (left, top))
      if notes:
        _draw_lines(draw, notes[i][j], left, top + cell_h)
  return canvas


def _draw_lines(draw, lines, left, top, fill='black'):
  for k, line in enumerate(lines):
    draw.text((left, top + k * LINE), line, fill=fill, font=_font())


def stack_panels(panels: Sequence[tuple[str, Image.Image]],
                 pad: int = PAD) -> Image.Image:
  """Panels one above the other, each under its title, on white."""
  width = max(p.width for _, p in panels) + 2 * pad
  titles = [_wrap(title, width - 2 * pad) for title, _ in panels]
  height = pad + sum(LINE * len(t) + p.height + pad
                     for t, (_, p) in zip(titles, panels))
  canvas = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(canvas)
  top = pad
  for lines, (_, panel) in zip(titles, panels):
    _draw_lines(draw, lines, pad, top)
    top += LINE * len(lines)
    canvas.paste(panel, (pad, top))
    top += panel.height + pad
  return canvas


def _save(image: Image.Image, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  image.save(path, format='PNG')
  return path


def _note(name: str, why: str) -> None:
  print(f'note: {name} skipped: {why}.', file=sys.stderr)


def error_image(result: np.ndarray, original: np.ndarray,
                gain: float = ERROR_GAIN) -> np.ndarray:
  """|result - original| (mean over channels, on [0, 1]) times `gain`,
  clipped, as grey images in [-1, 1] (black: no error).

  result, original: (N, H, W, C) in [-1, 1]. Returns (N, H, W, 3).
  """
  error = np.mean(np.abs(np.asarray(result) - np.asarray(original)) / 2.0,
                  axis=-1, keepdims=True)
  grey = np.clip(gain * error, 0.0, 1.0) * 2.0 - 1.0
  return np.repeat(grey, 3, axis=-1).astype(np.float32)


# Figures --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Figure:
  """A written figure: its file and a one-line caption."""
  path: str
  caption: str


def _method_columns(run: Run, dataset: str, kind: str,
                    method_names: Sequence[str], rows: slice | np.ndarray,
                    labels: dict[str, str]):
  """masked | each method's result | original for the chosen images."""
  cells = [run.cell(dataset, kind, m) for m in method_names]
  base = cells[0]
  columns = ([base.masked()[rows]] + [c.inpainted[rows] for c in cells]
             + [base.images[rows]])
  labels = (['masked'] + [labels.get(m, METHOD_LABELS.get(m, m))
                          for m in method_names] + ['original'])
  return columns, labels


def _comparison(run: Run, figures_dir: str, name: str, caption: str,
                method_names: Sequence[str], kinds: Sequence[str],
                every_kind: bool = False, k: int = 3,
                labels: dict[str, str] | None = None) -> list[Figure]:
  """One panel per data set (and per mask with `every_kind`, else the first
  of `kinds` with every method): masked | methods | original, first k.
  `labels` overrides METHOD_LABELS."""
  panels = []
  for dataset in run.datasets:
    usable = [m for m in kinds if run.has(dataset, m, *method_names)]
    for kind in usable if every_kind else usable[:1]:
      columns, column_labels = _method_columns(
          run, dataset, kind, method_names, slice(0, k), labels or {})
      panels.append((f'{dataset}, {kind} mask (first {len(columns[0])}'
                     ' test images)', labelled_grid(columns, column_labels)))
  if not panels:
    _note(name, f'no cell of mask {"/".join(kinds)} with every one of'
          f' {", ".join(method_names)}')
    return []
  return [Figure(_save(stack_panels(panels),
                       os.path.join(figures_dir, name)), caption)]


def fig1_large_holes(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 1: masked | TV | LR | PM | ours | original, centre and half masks,
  the first 2 images per data set and mask."""
  return _comparison(
      run, figures_dir, 'fig1_large_holes.png',
      'Fig. 1: large holes (centre and half masks): TV, LR, PM and ours.',
      ('tv', 'lr', 'pm', 'ours'), ('center', 'half'), every_kind=True, k=2)


def _frame_indices(count: int, shown: int = 6) -> list[int]:
  return sorted({int(round(i)) for i in np.linspace(0, count - 1, shown)})


def fig3b_search(run: Run, figures_dir: str, k: int = 4) -> list[Figure]:
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
  png = _save(stack_panels([(title, labelled_grid(columns, labels))]),
              os.path.join(figures_dir, name))
  pictures = [labelled_grid(
      [cell.masked()[:k], frames[:, f], cell.images[:k]],
      ['masked', f'G(z), step {int(steps[f])}', 'original'])
              for f in range(frames.shape[1])]
  gif = os.path.join(figures_dir, 'fig3b_search.gif')
  pictures[0].save(gif, save_all=True, append_images=pictures[1:],
                   duration=[200] * (len(pictures) - 1) + [1500], loop=0)
  caption = (f'Fig. 3b: the z-search on {dataset} (centre mask), G(z) from'
             ' the random start to the last step, then blended.')
  return [Figure(png, caption), Figure(gif, caption + ' (animated)')]


def fig4_prior(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 4: masked | ours with lambda = 0 | ours | original, the first 3
  images of the centre mask (else the first mask with both) per data set."""
  lams = {run.cell(d, m, 'ours').summary.get('search', {}).get('lam')
          for d, m, x in run.paths if x == 'ours'}
  lam = lams.pop() if len(lams) == 1 else None
  with_prior = f'lambda={lam:g}' if isinstance(lam, (int, float)) else 'ours'
  return _comparison(
      run, figures_dir, 'fig4_prior.png',
      f'Fig. 4: without (lambda=0) and with the prior loss ({with_prior}).',
      ('ours_lam0', 'ours'), MASK_ORDER,
      labels={'ours': f'ours, {with_prior}' if lam is not None else 'ours'})


def fig5_blending(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 5: masked | ours without blending | ours | original, the first 3
  images of the centre mask (else the first mask with both) per data set."""
  return _comparison(run, figures_dir, 'fig5_blending.png',
                     'Fig. 5: without and with Poisson blending.',
                     ('ours_noblend', 'ours'), MASK_ORDER)


def fig6_random80(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 6: masked | TV | LR | ours | original, random mask, first 3."""
  return _comparison(run, figures_dir, 'fig6_random80.png',
                     'Fig. 6: random mask (80 % missing): TV, LR and ours.',
                     ('tv', 'lr', 'ours'), ('random',))


def fig7_nearest_neighbour(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 7: masked | NN | ours | original, the first 3 images of the centre
  mask (else the first mask with both) per data set."""
  return _comparison(run, figures_dir, 'fig7_nearest_neighbour.png',
                     'Fig. 7: nearest-neighbour retrieval (NN) and ours.',
                     ('nn', 'ours'), MASK_ORDER)


def fig8_11_context_encoder(run: Run, figures_dir: str) -> list[Figure]:
  """Figs. 8-11: per data set, masked | CE | ours | original for every mask,
  the first 3 images; fig8_11_ce_<dataset>.png."""
  figures = []
  for dataset in run.datasets:
    figures += _comparison(
        Run({key: path for key, path in run.paths.items()
             if key[0] == dataset}),
        figures_dir, f'fig8_11_ce_{dataset}.png',
        f'Figs. 8-11: the Context Encoder (CE) and ours on {dataset}.',
        ('ce', 'ours'), MASK_ORDER, every_kind=True)
  if not run.datasets:
    _note('fig8_11_ce_*.png', 'no cells')
  return figures


def fig12_error_images(run: Run, figures_dir: str) -> list[Figure]:
  """Fig. 12: per data set, the centre-mask image where CE's PSNR is ahead
  of ours by the most: original | CE | its |error| x4 | ours | its |error|
  x4, each PSNR under its picture."""
  name = 'fig12_error_images.png'
  panels = []
  for dataset in run.datasets:
    if not run.has(dataset, 'center', 'ce', 'ours'):
      continue
    ce, ours = (run.cell(dataset, 'center', m) for m in ('ce', 'ours'))
    lead = ce.metrics['psnr'] - ours.metrics['psnr']
    i = int(np.argmax(lead))
    pick = slice(i, i + 1)
    gain = f'x{ERROR_GAIN:g}'
    columns = [ce.images[pick], ce.inpainted[pick],
               error_image(ce.inpainted[pick], ce.images[pick]),
               ours.inpainted[pick],
               error_image(ours.inpainted[pick], ours.images[pick])]
    labels = ['original', 'CE', f'CE |error| {gain}', 'ours',
              f'ours |error| {gain}']
    notes = [['', f"{ce.metrics['psnr'][i]:.2f} dB", '',
              f"{ours.metrics['psnr'][i]:.2f} dB", '']]
    panels.append((f'{dataset}, centre mask, {ce.names[i]}: CE - ours ='
                   f' {lead[i]:+.2f} dB (the largest over'
                   f' {len(lead)} images)',
                   labelled_grid(columns, labels, cell_labels=notes)))
  if not panels:
    _note(name, "no centre-mask cell with both 'ce' and 'ours'")
    return []
  return [Figure(_save(stack_panels(panels), os.path.join(figures_dir, name)),
                 'Fig. 12: error images of CE and ours (PSNR under each'
                 ' result), the image where CE leads ours by the most.')]


def fig13_failures(run: Run, figures_dir: str, k: int = 3) -> list[Figure]:
  """Fig. 13: per data set, the k images of the centre mask (else the first
  mask with a loss) where ours ends with the highest z-search loss: masked |
  G(z) | result | original, the loss under G(z)."""
  name = 'fig13_failures.png'
  panels = []
  for dataset in run.datasets:
    kinds = [m for m in MASK_ORDER if run.has(dataset, m, 'ours')
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
    panels.append((f'{dataset}, {kinds[0]} mask: the {len(worst)} highest'
                   f' final losses of {len(loss)} images',
                   labelled_grid(columns, ['masked', 'G(z)', 'result',
                                           'original'], cell_labels=notes)))
  if not panels:
    _note(name, "no cell of 'ours' with its z-search loss")
    return []
  return [Figure(_save(stack_panels(panels), os.path.join(figures_dir, name)),
                 'Fig. 13: failures: the highest final z-search losses of'
                 ' ours (loss under G(z), PSNR under the result).')]


def _nice_step(span: float, ticks: int = 5) -> float:
  raw = span / ticks
  power = 10.0 ** math.floor(math.log10(raw))
  return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def score_panel(rows: Sequence[dict[str, Any]], score: str = 'psnr',
                size: tuple[int, int] = (640, 300)) -> Image.Image:
  """One data set's rows: x = mask, one coloured point per method with its
  95 % interval (`<score>_ci95`) as an error bar, a legend of the methods.
  """
  kinds = _ordered({r['mask'] for r in rows}, MASK_ORDER)
  method_names = _ordered({r['method'] for r in rows}, METHOD_ORDER)
  width, height = size
  left, right, top, bottom = 50, width - 140, 20, height - 30
  lows = [r[score] - _finite(r[f'{score}_ci95']) for r in rows]
  highs = [r[score] + _finite(r[f'{score}_ci95']) for r in rows]
  lo, hi = min(lows), max(highs)
  if hi - lo < 1e-6:
    lo, hi = lo - 1.0, hi + 1.0
  step = _nice_step(hi - lo)
  lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
  canvas = Image.new('RGB', size, 'white')
  draw = ImageDraw.Draw(canvas)
  font = _font()

  def y_at(value):
    return bottom - (value - lo) / (hi - lo) * (bottom - top)

  for tick in np.arange(lo, hi + step / 2, step):
    y = y_at(tick)
    draw.line((left, y, right, y), fill=(225, 225, 225))
    text = f'{tick:g}'
    draw.text((left - 6 - font.getlength(text), y - 6), text, fill='black',
              font=font)
  draw.rectangle((left, top, right, bottom), outline='black')
  draw.text((4, 4), f'{score.upper().replace("_", " ")} (mean, 95 % CI)',
            fill='black', font=font)
  slot = (right - left) / len(kinds)
  by_key = {(r['mask'], r['method']): r for r in rows}
  for k, kind in enumerate(kinds):
    centre = left + (k + 0.5) * slot
    draw.text((centre - font.getlength(kind) / 2, bottom + 6), kind,
              fill='black', font=font)
    for j, method in enumerate(method_names):
      row = by_key.get((kind, method))
      if row is None:
        continue
      colour = _COLOURS[j % len(_COLOURS)]
      x = centre + (j - (len(method_names) - 1) / 2) * (
          0.7 * slot / max(len(method_names), 1))
      half = row[f'{score}_ci95']
      if math.isfinite(half):
        draw.line((x, y_at(row[score] - half), x, y_at(row[score] + half)),
                  fill=colour, width=1)
        for v in (row[score] - half, row[score] + half):
          draw.line((x - 2, y_at(v), x + 2, y_at(v)), fill=colour)
      y = y_at(row[score])
      draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
  for j, method in enumerate(method_names):
    colour = _COLOURS[j % len(_COLOURS)]
    y = top + 4 + j * LINE
    draw.ellipse((right + 12, y + 3, right + 18, y + 9), fill=colour)
    draw.text((right + 24, y), METHOD_LABELS.get(method, method),
              fill='black', font=font)
  return canvas


def _finite(value: float) -> float:
  return value if math.isfinite(value) else 0.0


def psnr_per_method(run: Run, figures_dir: str) -> list[Figure]:
  """PSNR of every method per mask type, one panel per data set, with the
  95 % confidence intervals of the rows (`score_panel`)."""
  name = 'psnr_per_method.png'
  rows = run.rows()
  if not rows:
    _note(name, 'no cells')
    return []
  panels = [(f'{dataset}: PSNR (dB) per mask type',
             score_panel([r for r in rows if r['dataset'] == dataset]))
            for dataset in run.datasets]
  return [Figure(_save(stack_panels(panels), os.path.join(figures_dir, name)),
                 'PSNR (whole image) of every method per mask, mean and 95 %'
                 ' confidence interval.')]


FIGURES: tuple[Callable[[Run, str], list[Figure]], ...] = (
    fig1_large_holes, fig3b_search, fig4_prior, fig5_blending, fig6_random80,
    fig7_nearest_neighbour, fig8_11_context_encoder, fig12_error_images,
    fig13_failures, psnr_per_method)


def write_figures(reproduce_dir: str, figures_dir: str,
                  cells: Iterable[tuple[str, str, str]] | None = None
                  ) -> list[Figure]:
  """Every figure of `FIGURES` that the run's cells allow, into
  `figures_dir`; the others are skipped with a note on stderr.

  Args:
    reproduce_dir: a `reproduce` output folder (<dataset>/<mask>/<method>/
      arrays.npz).
    figures_dir: where the PNGs (and fig3b_search.gif) go; made if missing.
    cells: if given, only these (dataset, mask, method) are drawn (e.g. those
      of this run, not others an earlier run left in the folder).

  Returns:
    The figures written, in the order of FIGURES.
  """
  run = Run.scan(reproduce_dir)
  if cells is not None:
    wanted = set(cells)
    run = Run({key: path for key, path in run.paths.items() if key in wanted})
  written = []
  for figure in FIGURES:
    written += figure(run, figures_dir)
  _read_cell.cache_clear()  # frees the arrays
  return written

"""A reproduce run's cells, read back from their arrays.npz files.

`evaluation.reproduce.run_cell` leaves `<run>/<dataset>/<mask>/<method>/
arrays.npz` per cell (`reproduce.save_cell_arrays`, which names the file
`ARRAYS_FILE` from here); `Run.scan` finds them and `Run.cell` reads one as a
`Cell` (images in [-1, 1], masks 1 = known pixel, per-image scores). Data
sets, masks and methods come in the paper's order (`ordered`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any, Iterable, Sequence

import numpy as np

from inpaint_jax.data import images as image_io

ARRAYS_FILE = 'arrays.npz'
# The paper's order; data sets, masks and methods not named here come after
# these, alphabetically.
DATASET_ORDER = ('celeba', 'svhn', 'cars')
MASK_ORDER = ('center', 'pattern', 'random', 'half')
METHOD_ORDER = ('ours', 'ours_noblend', 'ours_lam0', 'ce', 'tv', 'lr', 'nn',
                'pm', 'opencv_telea', 'opencv_ns', 'ours_ilo', 'ours_finetune',
                'ours_ilo_finetune', 'ours_average', 'ours_ilo_average')
METHOD_LABELS = {'ours': 'ours', 'ours_noblend': 'ours, no blending',
                 'ours_lam0': 'ours, lambda=0', 'ce': 'CE', 'tv': 'TV',
                 'lr': 'LR', 'nn': 'NN', 'pm': 'PM',
                 'opencv_telea': 'OpenCV Telea', 'opencv_ns': 'OpenCV NS',
                 'ours_ilo': 'ours + ILO', 'ours_finetune': 'ours + G tuned',
                 'ours_ilo_finetune': 'ours + ILO + G tuned',
                 'ours_average': 'ours, 4 seeds averaged',
                 'ours_ilo_average': 'ours + ILO, 4 seeds averaged'}


@dataclasses.dataclass(frozen=True)
class Inpaintings:
  """One method's results on N images (`Cell`, `evaluation.EvalResult`).

  Attributes:
    images: (N, H, W, C) float32 originals in [-1, 1].
    masks: (N, H, W, 1) float32, 1 = known pixel.
    names: the N image names.
    generated: (N, H, W, C) the method's own fill in [-1, 1], e.g. G(z).
    inpainted: (N, H, W, C) the final results in [-1, 1].
    metrics: per-image (N,) arrays by name ('psnr', ...).
    summary: the method's metrics.json (its settings among it).
  """
  images: np.ndarray
  masks: np.ndarray
  names: tuple[str, ...]
  generated: np.ndarray
  inpainted: np.ndarray
  metrics: dict[str, np.ndarray]
  summary: dict[str, Any]

  def masked(self) -> np.ndarray:
    """The input the methods saw: missing pixels black, (N, H, W, C)."""
    return image_io.masked_for_display(self.images, self.masks)


@dataclasses.dataclass(frozen=True)
class Cell(Inpaintings):
  """One method on one (data set, mask) cell, as its arrays.npz holds it.

  The fields of `Inpaintings`, with float32 metrics 'psnr', 'ssim',
  'psnr_hole', 'ssim_hole' and, for the z-search, 'loss'. And:

  Attributes:
    row: the cell's summary row (results.csv).
    frames: (n, F, H, W, C) G(z) of images 0..n-1 during the search, in
      [-1, 1], or None (not recorded).
    frame_steps: (F,) the search step of each frame, or None.
  """
  row: dict[str, Any]
  frames: np.ndarray | None = None
  frame_steps: np.ndarray | None = None


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


def clear_cache() -> None:
  """Frees the arrays of the cells read so far (`read_cell` keeps a few)."""
  _read_cell.cache_clear()


def ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
  """`names` in the order of `preferred`, the others after them, sorted."""
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
    """The data sets with a cell, in the paper's order."""
    return ordered({d for d, _, _ in self.paths}, DATASET_ORDER)

  def masks(self, dataset: str) -> list[str]:
    """The mask types with a cell on `dataset`, in the paper's order."""
    return ordered({m for d, m, _ in self.paths if d == dataset}, MASK_ORDER)

  def methods(self, dataset: str, kind: str) -> list[str]:
    """The methods run on (dataset, kind), in the paper's order."""
    return ordered({x for d, m, x in self.paths if (d, m) == (dataset, kind)},
                   METHOD_ORDER)

  def has(self, dataset: str, kind: str, *methods: str) -> bool:
    """Whether every one of `methods` has a cell on (dataset, kind)."""
    return all((dataset, kind, m) in self.paths for m in methods)

  def cell(self, dataset: str, kind: str, method: str) -> Cell:
    """The arrays of one cell (read once, then cached)."""
    return read_cell(self.paths[(dataset, kind, method)])

  def rows(self) -> list[dict[str, Any]]:
    """Every cell's summary row, data sets, masks and methods in order."""
    return [self.cell(d, m, x).row for d in self.datasets
            for m in self.masks(d) for x in self.methods(d, m)]


def _listdir(path):
  return sorted(os.listdir(path)) if os.path.isdir(path) else []

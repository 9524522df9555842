"""Images in, numpy batches out: image folders and TFDS data sources.

Two sources, the same preprocessing (Sec. 4.1 of the paper), 64x64 RGB:

* folders: `<data_dir>/<dataset>/<split>/*.jpg|png` (the layout of
  ../shared/data, see `default_data_dir`) or any folder of your own images;
* TFDS builders `celeb_a`, `svhn_cropped`, `cars196`, read with
  `tfds.data_source` (random access with numpy; TensorFlow is not needed).
  They must be prepared beforehand (`tfds build NAME
  --file_format=array_record`); nothing is downloaded here.

Preprocessing (crops, resizing) is in `preprocessing`.

Images are kept in memory as uint8 (a quarter of the float32 size) and turned
into float32 in [-1, 1] (x / 127.5 - 1) per batch. Training batches are a pure
function of (seed, step), so a resumed run sees exactly the batches it would
have seen.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from PIL import Image

from inpaint_jax.errors import InputError, MissingInputError
from inpaint_jax.data.images import IMAGE_EXTENSIONS, from_uint8, open_rgb, to_uint8
from inpaint_jax.data.preprocessing import CROPS, DATASETS, preprocess

TFDS_NAMES = {'celeba': 'celeb_a', 'svhn': 'svhn_cropped', 'cars': 'cars196'}
DATA_DIR_ENV = 'INPAINT_DATA_DIR'
# inpaint_jax/data/input_pipeline.py -> the project root, two folders up.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_PROGRESS_MIN = 500  # Show a progress bar from this many images on.
# The last VALIDATION_HOLDOUT train images of every data set are never trained
# on: they are the validation slice (--split=validation) for tuning.
VALIDATION_HOLDOUT = 256


def default_data_dir() -> str:
  """$INPAINT_DATA_DIR if set, else `<project root>/../shared/data`.

  The project root is the folder holding the `inpaint_jax` package.
  """
  return os.environ.get(DATA_DIR_ENV) or os.path.normpath(
      os.path.join(_PROJECT_ROOT, '..', 'shared', 'data'))


def _check_dataset(name: str) -> None:
  if name not in DATASETS:
    raise InputError(f'Unknown dataset {name!r}; use one of {DATASETS}.')


def list_images(path: str) -> list[str]:
  """Sorted names of the image files (IMAGE_EXTENSIONS) in a folder.

  .jpg .jpeg .png .bmp .webp .tif .tiff, in any case.

  Other files (e.g. labels.csv) are ignored.
  """
  if not os.path.isdir(path):
    raise MissingInputError(
        f'No image folder at {path!r}. Point --data_dir (or the environment'
        f' variable {DATA_DIR_ENV}) at the data root, or --images at a folder.')
  names = sorted(f for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS)
                 and os.path.isfile(os.path.join(path, f)))
  if not names:
    raise InputError(f'The folder {path!r} holds no JPEG/PNG images'
                     f' ({"/".join(IMAGE_EXTENSIONS)}); add some or point'
                     ' at another folder.')
  return names


def load_folder(path: str, crop: str = 'center', size: int = 64,
                limit: int | None = None, dtype: Any = np.float32,
                show_progress: bool = True) -> tuple[np.ndarray, list[str]]:
  """All images of a folder, sorted by file name, preprocessed.

  Args:
    path: folder of image files; non-image files are ignored.
    crop: one of CROPS (see `preprocess`).
    size: output side.
    limit: keep only the first `limit` files (by name).
    dtype: np.float32 (values in [-1, 1]) or np.uint8 (values in [0, 255]).
    show_progress: tqdm bar when loading 500 files or more.

  Returns:
    (images (N, size, size, 3) of `dtype`, the N file names).
  """
  if crop not in CROPS:
    raise InputError(f'Unknown crop {crop!r}; use one of {CROPS}.')
  names = list_images(path)[:limit]
  return _as_dtype(_load_files(path, names, crop, size, show_progress),
                   dtype), names


def _load_files(path: str, names: Sequence[str], crop: str, size: int,
                show_progress: bool = True) -> np.ndarray:
  """uint8 (len(names), size, size, 3) of the named files in `path`."""
  from tqdm import auto as tqdm
  progress = tqdm.tqdm(names, desc=f'load {path}', unit='img',
                       disable=not show_progress or len(names) < _PROGRESS_MIN)
  return np.stack([preprocess(open_rgb(os.path.join(path, name)), crop, size)
                   for name in progress])


def _as_dtype(images: np.ndarray, dtype: Any) -> np.ndarray:
  if np.dtype(dtype) == np.uint8:
    return images
  if np.dtype(dtype) == np.float32:
    return from_uint8(images)
  raise ValueError(f'dtype={dtype!r}; use np.float32 ([-1, 1]) or np.uint8.')


def load_dataset(name: str, split: str, data_dir: str | None = None,
                 size: int = 64, limit: int | None = None,
                 dtype: Any = np.float32) -> tuple[np.ndarray, list[str]]:
  """`<data_dir>/<name>/<split>` (the shared-folder layout) with `name`'s crop.

  Args:
    name: one of DATASETS.
    split: a sub-folder, e.g. 'train' or 'test'.
    data_dir: the data root; default `default_data_dir()`.
    size, limit, dtype: as in `load_folder`.

  Returns:
    (images (N, size, size, 3) of `dtype`, the N file names).
  """
  _check_dataset(name)
  path = os.path.join(data_dir or default_data_dir(), name, split)
  return load_folder(path, name, size, limit, dtype)


class TfdsImages:
  """Random-access, lazily decoded images of a TFDS split (uint8).

  Behaves like a read-only (N, size, size, 3) uint8 array for what the batch
  functions need: len(), .shape, .dtype and indexing with an int, a slice or
  an integer array. Only the indexed examples are read and preprocessed.
  """

  def __init__(self, name: str, source: Sequence[Any], size: int = 64,
               indices: np.ndarray | None = None):
    self.name = name
    self.source = source
    self.size = size
    self.indices = (np.arange(len(source)) if indices is None
                    else np.asarray(indices, np.int64))
    self.shape = (len(self.indices), size, size, 3)
    self.dtype = np.dtype(np.uint8)
    self.ndim = 4

  def __len__(self) -> int:
    return len(self.indices)

  def _one(self, record: int) -> np.ndarray:
    example = self.source[int(record)]
    bbox = example.get('bbox') if self.name == 'cars' else None
    return preprocess(Image.fromarray(np.asarray(example['image'])),
                      self.name, self.size, bbox)

  def __getitem__(self, index) -> np.ndarray | TfdsImages:
    if isinstance(index, (int, np.integer)):
      return self._one(self.indices[index])
    if isinstance(index, slice):
      return TfdsImages(self.name, self.source, self.size, self.indices[index])
    records = self.indices[np.asarray(index)]
    if not len(records):
      return np.zeros((0,) + self.shape[1:], np.uint8)
    return np.stack([self._one(r) for r in records])

  def __array__(self, dtype=None, copy=None) -> np.ndarray:
    images = self[np.arange(len(self))]
    return images if dtype is None else images.astype(dtype)


def tfds_source(name: str, split: str, data_dir: str | None = None
                ) -> Sequence[dict[str, Any]]:
  """The `tfds.data_source` of DATASETS `name` (random access, numpy dicts).

  Examples are dicts with 'image' (H, W, 3) uint8 (and for cars 'bbox'
  float32 [ymin, xmin, ymax, xmax] in [0, 1]). The dataset must already be
  prepared in a random-access format; nothing is downloaded.
  """
  import tensorflow_datasets as tfds  # Slow import; only when needed.
  _check_dataset(name)
  builder = TFDS_NAMES[name]
  try:
    return tfds.data_source(builder, split=split, data_dir=data_dir,
                            download=False)
  except (AssertionError, FileNotFoundError, NotImplementedError,
          ValueError) as e:
    raise MissingInputError(
        f'TFDS dataset {builder!r} (split {split!r}) is not prepared in a'
        f' random-access format under {data_dir or "~/tensorflow_datasets"}'
        f' ({e.__class__.__name__}). Run `tfds build {builder}'
        ' --file_format=array_record` (some need a manual download), or use'
        f' image folders (--source=folder, --data_dir or {DATA_DIR_ENV}).'
    ) from None


def tfds_images(name: str, split: str, data_dir: str | None = None,
                size: int = 64) -> TfdsImages:
  """A lazy uint8 (N, size, size, 3) view of a TFDS split with `name`'s crop."""
  return TfdsImages(name, tfds_source(name, split, data_dir), size)


def load_tfds(name: str, split: str, data_dir: str | None = None,
              size: int = 64, limit: int | None = None,
              dtype: Any = np.float32) -> tuple[np.ndarray, list[str]]:
  """The first `limit` examples of a TFDS split, in memory.

  Returns:
    (images (N, size, size, 3) of `dtype` (float32 [-1, 1] or uint8), names
    '<builder>_<split>_<index>'). For the whole of a big split use
    `tfds_images` (lazy) instead.
  """
  from tqdm import auto as tqdm
  lazy = tfds_images(name, split, data_dir, size)
  count = len(lazy) if limit is None else min(limit, len(lazy))
  if not count:
    raise InputError(f'TFDS {TFDS_NAMES[name]} {split} holds no examples.')
  images = np.stack([lazy[i] for i in tqdm.tqdm(
      range(count), desc=f'load {TFDS_NAMES[name]} {split}', unit='img',
      disable=count < _PROGRESS_MIN)])
  names = [f'{TFDS_NAMES[name]}_{split}_{i:06d}' for i in range(count)]
  return _as_dtype(images, dtype), names


def load_split(dataset: str, split: str, source: str = 'folder',
               data_dir: str | None = None, size: int = 64,
               limit: int | None = None, dtype: Any = np.float32
               ) -> tuple[np.ndarray, list[str]]:
  """`load_dataset` (source='folder') or `load_tfds` (source='tfds').

  split='validation' is the validation slice carved out of train (the last
  VALIDATION_HOLDOUT train images, which training holds out): tune there,
  never on test.
  """
  _check_dataset(dataset)
  if split == 'validation':
    images, names = validation_images(dataset, source, data_dir, size)
    images = images[:limit]
    return (to_uint8(images) if dtype == np.uint8 else images), names[:limit]
  if source == 'tfds':
    return load_tfds(dataset, split, data_dir, size, limit, dtype)
  if source != 'folder':
    raise InputError(f"Unknown source {source!r}; use 'folder' or 'tfds'.")
  return load_dataset(dataset, split, data_dir, size, limit, dtype)


def training_images(dataset: str, source: str = 'folder',
                    data_dir: str | None = None, size: int = 64,
                    holdout: int = VALIDATION_HOLDOUT) -> tuple[np.ndarray | TfdsImages, str]:
  """uint8 train images minus the last `holdout` (the validation slice).

  Folders are read into memory, (N, size, size, 3) uint8; TFDS splits stay
  lazy (`TfdsImages`, which the batch functions accept).

  Returns:
    (images, a one-line description of the data for model cards).
  """
  _check_dataset(dataset)
  if source == 'tfds':
    images = tfds_images(dataset, 'train', data_dir, size)
  else:
    images, _ = load_split(dataset, 'train', source, data_dir, size,
                           dtype=np.uint8)
  if holdout >= len(images):
    raise InputError(f'{dataset} train has {len(images)} images: too few to'
                     f' hold out the {holdout}-image validation slice and'
                     ' train on the rest; add images.')
  kept = images[:len(images) - holdout]
  return kept, (f'{dataset} train ({source}), first {len(kept)} of'
                f' {len(images)} images; the last {holdout} are the validation'
                ' slice')


def validation_images(dataset: str, source: str = 'folder',
                      data_dir: str | None = None, size: int = 64,
                      holdout: int = VALIDATION_HOLDOUT) -> tuple[np.ndarray, list[str]]:
  """float32 [-1, 1] (holdout, size, size, 3) validation slice and names.

  The validation slice is the last `holdout` train images.
  """
  _check_dataset(dataset)
  if source == 'tfds':
    lazy = tfds_images(dataset, 'train', data_dir, size)
    rows = np.arange(max(0, len(lazy) - holdout), len(lazy))
    return from_uint8(lazy[rows]), [
        f'{TFDS_NAMES[dataset]}_train_{i:06d}' for i in rows]
  if source != 'folder':
    raise InputError(f"Unknown source {source!r}; use 'folder' or 'tfds'.")
  path = os.path.join(data_dir or default_data_dir(), dataset, 'train')
  names = list_images(path)[-holdout:]
  return from_uint8(_load_files(path, names, dataset, size)), names


# Batches -------------------------------------------------------------------


def _seed_words(key_or_seed: Any) -> list[int]:
  """An int seed or a JAX PRNG key -> non-negative ints for numpy seeding."""
  if isinstance(key_or_seed, (int, np.integer)):
    return [int(key_or_seed) & (2**64 - 1)]
  import jax  # Only for keys.
  key = key_or_seed
  if jax.dtypes.issubdtype(getattr(key, 'dtype', None), jax.dtypes.prng_key):
    key = jax.random.key_data(key)
  return [int(w) for w in np.asarray(key, np.uint32).ravel()]


def batch_rows(n: int, batch_size: int, seed: Any, step: int) -> np.ndarray:
  """The rows (of n training images) of the global batch of `step`.

  Each epoch is a fresh permutation seeded by (seed, epoch); the remainder
  of an epoch is dropped. `train_batch` reads these rows; a trainer with
  labels takes the same rows of its labels.
  """
  if not 1 <= batch_size <= n:
    raise InputError(f'batch_size={batch_size} must lie in [1, {n}] (the'
                     ' number of training images); use a smaller batch or'
                     ' more images.')
  epoch, position = divmod(step, n // batch_size)
  order = np.random.default_rng(_seed_words(seed) + [epoch, 0]).permutation(n)
  return order[position * batch_size:(position + 1) * batch_size]


def train_batch(images, batch_size: int, seed: Any, step: int, *,
                flip: bool = True, process_index: int = 0,
                process_count: int = 1) -> np.ndarray:
  """The training batch of `step`: float32 (batch_size // P, H, W, C).

  A pure function of (images, seed, step), so a resumed run sees exactly the
  batches it would have seen. Each epoch is a fresh permutation seeded by
  (seed, epoch); the remainder of an epoch is dropped; each image is flipped
  left-right with probability 1/2 (seeded by (seed, step)). Process p of P
  gets rows [p*B/P, (p+1)*B/P) of the global batch, so processes see
  disjoint parts and together the whole batch.

  Args:
    images: (N, H, W, C) uint8 training images (or float32 in [-1, 1]), or a
      `TfdsImages`.
    batch_size: global batch size B (divisible by process_count P).
    seed: int seed or JAX PRNG key.
    step: the global training step.
    flip: random horizontal flips.
    process_index, process_count: this process's share (multi-host).

  Returns:
    float32 (B // P, H, W, C) in [-1, 1].
  """
  if batch_size % process_count:
    raise InputError(f'batch_size={batch_size} is not divisible by'
                     f' {process_count} processes.')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is outside'
                     f' [0, {process_count}).')
  rows = batch_rows(len(images), batch_size, seed, step)
  flips = np.random.default_rng(
      _seed_words(seed) + [step, 1]).random(len(rows)) < 0.5
  lo = process_index * len(rows) // process_count
  hi = (process_index + 1) * len(rows) // process_count
  batch = np.asarray(images[rows[lo:hi]])
  batch = from_uint8(batch) if batch.dtype == np.uint8 else np.array(
      batch, np.float32)
  if flip:
    batch[flips[lo:hi]] = batch[flips[lo:hi], :, ::-1]
  return batch

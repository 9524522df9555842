"""Images in, numpy batches out: image folders and TFDS data sources.

Two sources, the same preprocessing (Sec. 4.1 of the paper), 64x64 RGB:

* folders: `<data_dir>/<dataset>/<split>/*.jpg|png` (the layout of
  ../shared/data) or any folder of your own images;
* TFDS builders `celeb_a`, `svhn_cropped`, `cars196`, read with
  `tfds.data_source` (random access with numpy; TensorFlow is not needed).
  They must be prepared beforehand (`tfds build NAME
  --file_format=array_record`); nothing is downloaded here.

Crops ('crop' argument):
  celeba: the central square of side min(h, w) * 108/178 (the usual 108x108
    crop of the 178x218 aligned faces; 54x54 for the half-size shared copies),
    then resize.
  svhn:   resize the 32x32 digits.
  cars:   crop to the bounding box when one is known (TFDS), then the central
    square, then resize.
  center: the central square of side min(h, w), then resize (your own images).
Resizing uses PIL's antialiased bicubic filter.

Images are kept in memory as uint8 and turned into float32 in [-1, 1] per
batch. Training batches are a pure function of (seed, step), so a resumed run
sees exactly the batches it would have seen.
"""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from inpaint_jax.images import IMAGE_EXTENSIONS, from_uint8, open_rgb

DATASETS = ('celeba', 'svhn', 'cars')
CROPS = DATASETS + ('center',)
TFDS_NAMES = {'celeba': 'celeb_a', 'svhn': 'svhn_cropped', 'cars': 'cars196'}
DATA_DIR_ENV = 'INPAINT_DATA_DIR'
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_data_dir() -> str:
  """$INPAINT_DATA_DIR if set, else ../shared/data beside the project root."""
  return os.environ.get(DATA_DIR_ENV) or os.path.normpath(
      os.path.join(_PROJECT_ROOT, '..', 'shared', 'data'))


def _central_square(image: Image.Image, side: int) -> Image.Image:
  w, h = image.size
  left, top = (w - side) // 2, (h - side) // 2
  return image.crop((left, top, left + side, top + side))


def preprocess(image: Image.Image, crop: str, size: int = 64,
               bbox: Sequence[float] | None = None) -> np.ndarray:
  """One PIL image -> (size, size, 3) uint8 with the crop of `crop`.

  bbox: optional [ymin, xmin, ymax, xmax] in [0, 1] (TFDS cars196) applied
  before the crop.
  """
  if crop not in CROPS:
    raise ValueError(f'crop={crop!r}; use one of {CROPS}.')
  image = image.convert('RGB')
  if bbox is not None:
    w, h = image.size
    ymin, xmin, ymax, xmax = np.clip(np.asarray(bbox, np.float64), 0, 1)
    left, right = sorted((int(xmin * w), int(np.ceil(xmax * w))))
    top, bottom = sorted((int(ymin * h), int(np.ceil(ymax * h))))
    image = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
  w, h = image.size
  if crop == 'celeba':
    image = _central_square(image, max(1, round(min(w, h) * 108 / 178)))
  elif crop in ('cars', 'center'):
    image = _central_square(image, min(w, h))
  image = image.resize((size, size), Image.BICUBIC)
  return np.asarray(image, np.uint8)


def list_images(path: str) -> list[str]:
  """Sorted image file names (JPEG/PNG/BMP/WebP) in a folder."""
  if not os.path.isdir(path):
    raise FileNotFoundError(
        f'No image folder at {path!r}. Point --data_dir (or the environment'
        f' variable {DATA_DIR_ENV}) at the data root, or --images at a folder.')
  names = sorted(f for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not names:
    raise ValueError(f'The folder {path!r} holds no JPEG/PNG images.')
  return names


def load_folder_uint8(path: str, crop: str = 'center', size: int = 64,
                      limit: int | None = None, show_progress: bool = True
                      ) -> tuple[np.ndarray, list[str]]:
  """(N, size, size, 3) uint8 images of a folder (sorted by name) and names."""
  from tqdm import auto as tqdm
  names = list_images(path)[:limit]
  images = np.stack([
      preprocess(open_rgb(os.path.join(path, name)), crop, size)
      for name in tqdm.tqdm(names, desc=f'load {os.path.basename(path)}',
                            disable=not show_progress or len(names) < 500,
                            unit='img')])
  return images, names


def load_folder(path: str, crop: str = 'center', size: int = 64,
                limit: int | None = None) -> tuple[np.ndarray, list[str]]:
  """(N, size, size, 3) float32 images in [-1, 1] of a folder, and names."""
  images, names = load_folder_uint8(path, crop, size, limit)
  return from_uint8(images), names


def tfds_source(dataset: str, split: str, data_dir: str | None = None):
  """The TFDS random-access data source of one of DATASETS."""
  import tensorflow_datasets as tfds
  if dataset not in TFDS_NAMES:
    raise ValueError(f'dataset={dataset!r}; use one of {DATASETS}.')
  try:
    return tfds.data_source(TFDS_NAMES[dataset], split=split,
                            data_dir=data_dir, download=False)
  except (AssertionError, FileNotFoundError, ValueError,
          NotImplementedError) as e:
    raise FileNotFoundError(
        f'TFDS dataset {TFDS_NAMES[dataset]!r} ({split}) is not prepared under'
        f' {data_dir or "~/tensorflow_datasets"} in a random-access format'
        f' ({e.__class__.__name__}). Run `tfds build {TFDS_NAMES[dataset]}'
        ' --file_format=array_record` where the data is, or use'
        ' --source=folder.') from None


def load_tfds_uint8(dataset: str, split: str, data_dir: str | None = None,
                    size: int = 64, limit: int | None = None
                    ) -> tuple[np.ndarray, list[str]]:
  """(N, size, size, 3) uint8 images of a TFDS split and their names."""
  source = tfds_source(dataset, split, data_dir)
  count = len(source) if limit is None else min(limit, len(source))
  images = []
  for i in range(count):
    example = source[i]
    bbox = example.get('bbox') if dataset == 'cars' else None
    images.append(preprocess(Image.fromarray(np.asarray(example['image'])),
                             dataset, size, bbox))
  if not images:
    raise ValueError(f'TFDS {TFDS_NAMES[dataset]} {split} is empty.')
  return np.stack(images), [f'{TFDS_NAMES[dataset]}_{split}_{i:06d}'
                            for i in range(count)]


def load_split_uint8(dataset: str, split: str, source: str = 'folder',
                     data_dir: str | None = None, size: int = 64,
                     limit: int | None = None) -> tuple[np.ndarray, list[str]]:
  """uint8 images of `dataset`/`split` from a folder tree or TFDS."""
  if dataset not in DATASETS:
    raise ValueError(f'dataset={dataset!r}; use one of {DATASETS}.')
  if source == 'tfds':
    return load_tfds_uint8(dataset, split, data_dir, size, limit)
  if source != 'folder':
    raise ValueError(f"source={source!r}; use 'folder' or 'tfds'.")
  path = os.path.join(data_dir or default_data_dir(), dataset, split)
  return load_folder_uint8(path, dataset, size, limit)


def load_split(dataset: str, split: str, source: str = 'folder',
               data_dir: str | None = None, size: int = 64,
               limit: int | None = None) -> tuple[np.ndarray, list[str]]:
  """float32 [-1, 1] images (N, size, size, 3) of a split, and their names."""
  images, names = load_split_uint8(dataset, split, source, data_dir, size,
                                   limit)
  return from_uint8(images), names


def training_images(dataset: str, source: str = 'folder',
                    data_dir: str | None = None, size: int = 64,
                    holdout: int = 256) -> tuple[np.ndarray, str]:
  """uint8 train images minus the last `holdout` (the validation slice).

  Returns (images, a one-line description of the data for model cards).
  """
  images, _ = load_split_uint8(dataset, 'train', source, data_dir, size)
  if holdout >= len(images):
    raise ValueError(f'holdout={holdout} leaves no training images of'
                     f' {len(images)}.')
  kept = images[:len(images) - holdout]
  return kept, (f'{dataset} train ({source}), first {len(kept)} of'
                f' {len(images)} images; the last {holdout} are the validation'
                ' slice')


def validation_images(dataset: str, source: str = 'folder',
                      data_dir: str | None = None, size: int = 64,
                      holdout: int = 256) -> tuple[np.ndarray, list[str]]:
  """float32 [-1, 1] validation slice: the last `holdout` train images."""
  images, names = load_split_uint8(dataset, 'train', source, data_dir, size)
  return from_uint8(images[-holdout:]), names[-holdout:]


def train_batch(images: np.ndarray, batch_size: int, seed: int, step: int, *,
                flip: bool = True, process_index: int = 0,
                process_count: int = 1) -> np.ndarray:
  """The training batch of `step`: float32 (batch_size / process_count, H, W, C).

  Each epoch is a fresh permutation (seeded by (seed, epoch)); the remainder of
  an epoch is dropped; each image is flipped left-right with probability 1/2
  (seeded by (seed, step)). Process p of P gets rows [p*B/P, (p+1)*B/P) of the
  global batch, so processes see disjoint parts and together the whole batch.

  Args:
    images: (N, H, W, C) uint8 training images.
    batch_size: global batch size (divisible by process_count).
    seed, step: what the batch is a function of.
    flip: random horizontal flips.
    process_index, process_count: this process's share (multi-host).
  """
  n = len(images)
  if batch_size > n:
    raise ValueError(f'batch_size={batch_size} exceeds the {n} images.')
  if batch_size % process_count:
    raise ValueError(f'batch_size={batch_size} is not divisible by'
                     f' {process_count} processes.')
  epoch, position = divmod(step, n // batch_size)
  order = np.random.default_rng([seed, epoch]).permutation(n)
  rows = order[position * batch_size:(position + 1) * batch_size]
  flips = np.random.default_rng([seed, epoch, position, 1]).random(
      batch_size) < 0.5
  local = slice(process_index * batch_size // process_count,
                (process_index + 1) * batch_size // process_count)
  batch = from_uint8(images[rows[local]])
  if flip:
    batch[flips[local]] = batch[flips[local], :, ::-1]
  return batch


def train_batches(images: np.ndarray, batch_size: int, seed: int,
                  start_step: int = 0, **kwargs) -> Iterator[np.ndarray]:
  """Endless train_batch(step) for step = start_step, start_step + 1, ..."""
  step = start_step
  while True:
    yield train_batch(images, batch_size, seed, step, **kwargs)
    step += 1


def eval_batches(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
  """Deterministic-order float32 [-1, 1] batches; the last may be smaller."""
  for start in range(0, len(images), batch_size):
    batch = images[start:start + batch_size]
    yield from_uint8(batch) if batch.dtype == np.uint8 else batch

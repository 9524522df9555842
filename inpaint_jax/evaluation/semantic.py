"""A small digit classifier for SVHN, to score the semantics of inpaintings.

PSNR says how close a fill is to the original pixels, not whether it shows the
right digit. This classifier (trained on SVHN train minus the validation
slice) answers the second question: `evaluate.evaluate(..., semantic=...)`
reports the fraction of inpainted images it classifies as their label.

* `Classifier`: 64x64 RGB in [-1, 1] -> 10 logits (no batch norm, so
  evaluation is a pure function of the weights).
* `predict` / `accuracy` / `predictor`; `load_labels` (labels.csv);
  `semantic_scores`: what `evaluate` reports as semantic accuracy.
* The semantic ceiling: a classifier trained on `kind`-masked inputs, saved
  beside the whole-image one as `<directory>_<kind>` (e.g.
  models/svhn_classifier_center), bounds what any fill can carry;
  `semantic_for_split` loads those it finds, `for_mask` picks one, and
  `ceiling_scores` gives the fills' accuracy as a fraction of it.
* Training is in `training.train_classifier`.
* `save` / `restore`: a model directory (`classifier_config.json` with a
  `variables_sha256` checked on load, and orbax `variables/`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
import sys
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax import masks as masks_lib
from inpaint_jax.config import TRAINING_RULES, DictConfig, check_fields
from inpaint_jax.errors import InputError, MissingInputError

CONFIG_FILE = 'classifier_config.json'
VARIABLES_DIR = checkpoints.VARIABLES_DIR
LABELS_FILE = 'labels.csv'


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(DictConfig):
  """Architecture and training settings (saved with the model).

  Attributes:
    resolution: input side in pixels (64).
    widths: channels of the convolution blocks; each block after the first
      halves the side (stride 2).
    num_classes: 10 digits.
    learning_rate: Adam learning rate.
    batch_size: global batch size.
    num_steps: training steps.
    seed: seed of the initial weights and of the batch order.
    augment: light augmentation in training (`augment`): random shifts of up
      to `shift` pixels, contrast in [0.7, 1.3], polarity flips (SVHN has
      light-on-dark and dark-on-light digits).
    shift: the largest shift in pixels.
    mask: '' (whole images: the classifier that scores inpaintings), or a
      `masks.KINDS` kind: train and test on images with that mask's missing
      pixels at 0 (`mask_inputs`). Not for scoring inpaintings: a classifier
      of what the mask leaves, an estimate of the best semantic accuracy any
      inpainting can reach (an inpainting followed by a classifier is itself
      a classifier of the masked input).
    checkpoint_every, keep_checkpoints, log_every: bookkeeping (steps
      between checkpoints, checkpoints kept, steps between metrics.jsonl
      lines), as in every trainer's config.
  """
  resolution: int = 64
  widths: tuple[int, ...] = (32, 64, 128, 128)
  num_classes: int = 10
  learning_rate: float = 1e-3
  batch_size: int = 128
  num_steps: int = 1200
  seed: int = 0
  augment: bool = True
  shift: int = 4
  mask: str = ''
  checkpoint_every: int = 250
  keep_checkpoints: int = 2
  log_every: int = 50

  def __post_init__(self):
    check_fields(self, {k: TRAINING_RULES[k] for k in (
        'batch_size', 'num_steps', 'checkpoint_every', 'keep_checkpoints',
        'log_every')})
    if self.mask and self.mask not in masks_lib.KINDS:
      raise InputError(f'mask={self.mask!r} is not a mask kind; use one of'
                       f' {masks_lib.KINDS}, or leave it empty for whole'
                       ' images.')


class Classifier(nn.Module):
  """(N, R, R, 3) in [-1, 1] -> (N, num_classes) logits.

  The input is average-pooled to half its side first (SVHN digits are 32x32
  upsampled), then 3x3 convolutions with ReLU, stride 2 from the second block
  on, then one dense layer from the flattened features.
  """
  config: ClassifierConfig

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.avg_pool(x, (2, 2), (2, 2))
    for i, width in enumerate(self.config.widths):
      x = nn.Conv(width, (3, 3), strides=(1, 1) if i == 0 else (2, 2),
                  padding='SAME')(x)
      x = nn.relu(x)
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.config.num_classes)(x)


def init_variables(config: ClassifierConfig, key: jax.Array) -> dict[str, Any]:
  """{'params': ...} of a fresh classifier."""
  dummy = jnp.zeros((1, config.resolution, config.resolution, 3), jnp.float32)
  return Classifier(config).init(key, dummy)


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] images -> float32 [-1, 1]; float images as float32."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images.astype(np.float32) / 127.5 - 1.0
  return images.astype(np.float32)


@functools.lru_cache(maxsize=8)
def _apply_fn(config: ClassifierConfig):
  model = Classifier(config)
  return jax.jit(lambda v, x: jnp.argmax(model.apply(v, x), -1))


def predict(variables: Any, images: np.ndarray, batch_size: int = 256,
            config: ClassifierConfig = ClassifierConfig()) -> np.ndarray:
  """(N,) int32 predicted digits of (N, R, R, 3) images in [-1, 1].

  Images go through in batches of `batch_size` (the last one padded, so one
  compilation serves every batch).
  """
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[1:] != (config.resolution,
                                              config.resolution, 3):
    raise InputError(f'The classifier takes (N, {config.resolution},'
                     f' {config.resolution}, 3) images; got {images.shape}.')
  apply = _apply_fn(config)
  batch_size = max(1, min(batch_size, len(images)))
  out = []
  for start in range(0, len(images), batch_size):
    batch = to_float(images[start:start + batch_size])
    count = len(batch)
    if count < batch_size:
      batch = np.concatenate(
          [batch, np.repeat(batch[-1:], batch_size - count, axis=0)])
    out.append(np.asarray(apply(variables, batch))[:count])
  return np.concatenate(out).astype(np.int32) if out else np.zeros(
      (0,), np.int32)


def accuracy(variables: Any, images: np.ndarray, labels: np.ndarray,
             batch_size: int = 256,
             config: ClassifierConfig = ClassifierConfig()) -> float:
  """Fraction of `images` (N, R, R, 3) in [-1, 1] classified as `labels`."""
  labels = np.asarray(labels)
  if len(labels) != len(images):
    raise InputError(f'{len(images)} images but {len(labels)} labels.')
  return float(np.mean(predict(variables, images, batch_size, config)
                       == labels))


def mask_inputs(images: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
  """(N, R, R, 3) images in [-1, 1] with the missing pixels of `kind` masks
  at 0, the masks drawn as evaluate.make_masks draws them for `seed` (the
  masks of experiments.inpaint, the model cards and reproduce)."""
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  masks = np.asarray(masks_lib.make(kind, mask_key, len(images),
                                    images.shape[1]))
  return to_float(images) * masks


def predictor(directory: str, batch_size: int = 256
              ) -> Callable[[np.ndarray], np.ndarray]:
  """predict_fn(images) -> (N,) digits of the model saved in `directory`.

  Refuses a classifier trained on masked inputs (ClassifierConfig.mask): it
  cannot score whole inpainted images.
  """
  config, variables, _ = restore(directory)
  if config.mask:
    raise InputError(
        f'{directory} holds a classifier of {config.mask}-masked inputs; to'
        ' score inpaintings use one trained on whole images (e.g.'
        ' models/svhn_classifier).')
  return lambda images: predict(variables, images, batch_size, config)


def masked_classifier_dir(directory: str, kind: str) -> str:
  """Where the classifier of `kind`-masked inputs is kept: beside the
  whole-image classifier `directory`, as `<directory>_<kind>`."""
  return f'{os.path.normpath(directory)}_{kind}'


def ceiling_predictors(directory: str, batch_size: int = 256
                       ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
  """{mask kind: predict_fn} of the masked-input classifiers found beside
  `directory` (`masked_classifier_dir`); kinds without one are left out.

  Raises:
    InputError: such a directory holds a classifier of another input (its
      config's mask is not the kind its name says).
  """
  found = {}
  for kind in masks_lib.KINDS:
    path = masked_classifier_dir(directory, kind)
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
      continue
    config, variables, _ = restore(path)
    if config.mask != kind:
      raise InputError(
          f'{path} holds a classifier of {config.mask or "whole"} inputs, not'
          f' of {kind}-masked ones: retrain it with experiments.'
          f'train_classifier --mask={kind} or move it.')
    found[kind] = functools.partial(predict, variables,
                                    batch_size=batch_size, config=config)
  return found


def for_mask(semantic: Any, kind: str | None) -> Any:
  """evaluate's `semantic` for one mask kind: (predict_fn, labels,
  ceiling_fn or None) from `semantic_for_split`'s (predict_fn, labels,
  {kind: ceiling_fn}); None stays None, a pair stays a pair."""
  if semantic is None or len(semantic) == 2:
    return semantic
  predict_fn, labels, ceilings = semantic
  return predict_fn, labels, ceilings.get(kind)


def semantic_for_split(dataset: str, split: str, names: Sequence[str],
                       directory: str | None, data_dir: str | None = None,
                       required: bool = False):
  """(predict_fn, labels, {kind: ceiling_fn}) for a labelled split, or None.

  Applies to SVHN 'test' (labels in svhn/test/labels.csv) and 'validation'
  (the end of train: svhn/train/labels.csv) when `directory` is set and
  holds a classifier; with `required` (a directory the user named) a
  missing one is an error, else it is skipped. The third element holds the
  masked-input classifiers beside it (`ceiling_predictors`); `for_mask`
  makes of it evaluate's `semantic` for one mask kind.

  Args:
    dataset, split: as in input_pipeline.load_split (folder source).
    names: the file names of the images, in order.
    directory: classifier model directory, or None / '' for none.
    data_dir: the data root (default input_pipeline.default_data_dir()).
    required: raise MissingInputError if `directory` holds no classifier.
  """
  from inpaint_jax.data import input_pipeline  # Only when scoring semantics.
  splits = {'test': 'test', 'validation': 'train'}
  if not directory or dataset != 'svhn' or split not in splits:
    return None
  if not required and not os.path.isfile(os.path.join(directory,
                                                      CONFIG_FILE)):
    print(f'note: no digit classifier in {directory}: no semantic accuracy'
          ' (experiments.train_classifier trains one).', file=sys.stderr)
    return None
  split_dir = os.path.join(data_dir or input_pipeline.default_data_dir(),
                           dataset, splits[split])
  if not required and not os.path.isfile(os.path.join(split_dir,
                                                      LABELS_FILE)):
    print(f'note: no {LABELS_FILE} in {split_dir}: no semantic accuracy.',
          file=sys.stderr)
    return None
  return (predictor(directory), load_labels(split_dir, names),
          ceiling_predictors(directory))


# Labels -------------------------------------------------------------------


def load_labels(split_dir: str, names: Sequence[str]) -> np.ndarray:
  """(len(names),) int32 digits of the named files, from split_dir/labels.csv.

  Args:
    split_dir: a split folder, e.g. <data_dir>/svhn/test, holding labels.csv
      with columns `file,digit`.
    names: file names in that folder (e.g. from input_pipeline.load_split).

  Raises:
    MissingInputError: no labels.csv there.
    InputError: the file is malformed or a name has no label.
  """
  path = os.path.join(split_dir, LABELS_FILE)
  if not os.path.isfile(path):
    raise MissingInputError(
        f'No {LABELS_FILE} in {split_dir!r}: semantic accuracy needs a'
        ' labels.csv (columns file,digit) beside the images.')
  table = {}
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    if not reader.fieldnames or not {'file', 'digit'} <= set(
        reader.fieldnames):
      raise InputError(f'{path} has columns {reader.fieldnames}; it needs'
                       ' file,digit (e.g. 00000.png,5).')
    for line, row in enumerate(reader, start=2):
      try:
        table[row['file']] = int(row['digit'])
      except (TypeError, ValueError):
        raise InputError(f'{path} line {line}: digit {row["digit"]!r} is not'
                         ' an integer; fix the file.') from None
  missing = [name for name in names if name not in table]
  if missing:
    raise InputError(
        f'{len(missing)} image(s) have no label in {path}, e.g.'
        f' {missing[0]!r}: add them to the file or evaluate without'
        ' --classifier.')
  return np.asarray([table[name] for name in names], np.int32)


# Model directories ---------------------------------------------------------


def save(directory: str, config: ClassifierConfig, variables: Any,
         metadata: dict[str, Any] | None = None) -> str:
  """Writes classifier_config.json + orbax variables/; returns the path."""
  return checkpoints.save_network(
      directory, CONFIG_FILE,
      {'classifier': config.to_dict(), 'metadata': metadata or {}}, variables)


def restore(directory: str) -> tuple[ClassifierConfig, Any, dict[str, Any]]:
  """(config, variables, metadata) of a classifier model directory.

  Raises:
    MissingInputError: no classifier there.
    InputError: the config is damaged or the weights fail their checksum.
  """
  config, variables, saved = checkpoints.restore_network(
      directory, CONFIG_FILE, 'classifier',
      'pass --classifier=DIR written by experiments.train_classifier, or'
      ' --classifier= to evaluate without one.',
      lambda saved: ClassifierConfig.from_dict(saved['classifier']),
      lambda config: init_variables(config, jax.random.PRNGKey(0)))
  return config, variables, saved.get('metadata', {})


def semantic_inputs(semantic: Any, n: int):
  """(predict_fn, labels (n,) int, ceiling_fn or None) of `evaluate`'s
  `semantic` ((model, labels) or (model, labels, ceiling_fn)), or Nones."""
  if semantic is None:
    return None, None, None
  model, labels, ceiling_fn = (*semantic, None)[:3]
  if isinstance(ceiling_fn, dict):
    raise InputError('semantic holds the ceilings of every mask kind; pick'
                     ' one with semantic.for_mask(semantic, kind).')
  labels = np.asarray(labels)
  if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
    raise InputError(f'semantic labels have shape {labels.shape} and dtype'
                     f' {labels.dtype}; give one integer label per image'
                     f' ({n}).')
  if callable(model):
    return model, labels, ceiling_fn
  return (lambda x: predict(model, x)), labels, ceiling_fn


def semantic_scores(predict_fn, labels, images, masks, inpainted,
                    ceiling_fn=None) -> tuple[np.ndarray, dict[str, float]]:
  """Per-image 'correct' (float32 1/0) and the semantic accuracies (with
  `ceiling_fn`, also `ceiling_scores`')."""
  def hits(x):
    return (np.asarray(predict_fn(x)) == labels).astype(np.float32)

  correct = hits(inpainted)
  originals = float(np.mean(hits(images)))
  inpainted_accuracy = float(np.mean(correct))
  accuracies = {
      'semantic_accuracy': inpainted_accuracy,
      'semantic_accuracy_originals': originals,
      'semantic_accuracy_masked': float(np.mean(hits(images * masks))),
      'semantic_accuracy_ratio': (inpainted_accuracy / originals
                                  if originals else None),
  }
  if ceiling_fn is not None:
    accuracies.update(ceiling_scores(ceiling_fn, labels, images, masks,
                                     inpainted_accuracy))
  return correct, accuracies


def ceiling_accuracy(ceiling_fn, labels, images, masks) -> float:
  """The masked-input classifier's accuracy on `images` (N, H, W, C) in
  [-1, 1] with their missing pixels (masks (N, H, W, 1), 0) at 0."""
  masked = np.asarray(images, np.float32) * np.asarray(masks, np.float32)
  return float(np.mean(np.asarray(ceiling_fn(masked)) == labels))


def ceiling_scores(ceiling_fn, labels, images, masks,
                   inpainted_accuracy: float) -> dict[str, float | None]:
  """'semantic_accuracy_ceiling' (`ceiling_accuracy`) and
  'semantic_accuracy_of_ceiling': `inpainted_accuracy` as a fraction of it
  (None if it is 0)."""
  ceiling = ceiling_accuracy(ceiling_fn, labels, images, masks)
  return {'semantic_accuracy_ceiling': ceiling,
          'semantic_accuracy_of_ceiling': (inpainted_accuracy / ceiling
                                           if ceiling else None)}

"""The models the page offers and the test photos of their data sets.

`ModelRegistry` lists the model directories under --models_dir, resolves a
typed model (a path relative to that folder; any directory only when the
server allows models outside it) and keeps the one restored last in memory;
`TestImages` reads the test split of a model's data set from --data_dir.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any

import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax import encoder as encoder_lib
from inpaint_jax.config import SearchConfig
from inpaint_jax.data import images as images_lib
from inpaint_jax.data import input_pipeline
from inpaint_jax.data import preprocessing
from inpaint_jax.errors import InputError


def default_models_dir() -> str:
  """`<project root>/models`, where the shipped models are."""
  package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return os.path.join(os.path.dirname(package), 'models')


def model_dataset(directory: str, metadata: dict[str, Any]) -> str | None:
  """The data set (one of preprocessing.DATASETS) a model learnt, or None.

  From the metadata's 'dataset', else the data folder its 'data' names
  (e.g. '../shared/data/celeba/train: ...'), else the directory's name
  (celeba64 -> celeba).
  """
  if metadata.get('dataset') in preprocessing.DATASETS:
    return metadata['dataset']
  data = str(metadata.get('data', ''))
  for name in preprocessing.DATASETS:
    if re.search(rf'(^|[/\\\s]){name}([/\\\s:]|$)', data):
      return name
  base = os.path.basename(os.path.normpath(directory)).lower()
  return next((name for name in preprocessing.DATASETS
               if base.startswith(name)), None)


def model_window(directory: str) -> int:
  """The importance window its model card used (evaluation.json's
  --window), else SearchConfig's default."""
  try:
    with open(os.path.join(directory, 'evaluation.json')) as f:
      command = str(json.load(f).get('command', ''))
    found = re.search(r'--window[= ](\d+)', command)
    if found:
      return int(found.group(1))
  except (OSError, ValueError, AttributeError):
    pass
  return SearchConfig.window


class ModelRegistry:
  """The model directories under `models_dir`; keeps the one restored last
  in memory.

  A request names a model by its path relative to models_dir (e.g.
  'celeba64'); nothing outside models_dir is reachable (no '..', absolute
  path or symlink out of it) unless `allow_outside` (the server's
  --allow_models_outside), which lets a request name any model directory.
  """

  def __init__(self, models_dir: str, allow_outside: bool = False):
    self.models_dir = os.path.abspath(models_dir)
    self.allow_outside = allow_outside
    self._lock = threading.Lock()
    self._cached: tuple[str, float, Any] | None = None

  def names(self) -> list[str]:
    """Sorted names of the subdirectories holding a model_config.json (and,
    unless allow_outside, not links out of models_dir)."""
    if not os.path.isdir(self.models_dir):
      return []
    return sorted(
        name for name in os.listdir(self.models_dir) if os.path.isfile(
            os.path.join(self.models_dir, name, checkpoints.CONFIG_FILE))
        and (self.allow_outside or self._inside(name)))

  def _inside(self, path: str) -> bool:
    """Whether models_dir/path, links followed, lies strictly inside it."""
    root = os.path.realpath(self.models_dir)
    real = os.path.realpath(os.path.join(self.models_dir, path))
    return real != root and os.path.commonpath([real, root]) == root

  def resolve(self, model: Any) -> str:
    """A typed model (see the class) -> the absolute path of its directory.

    Raises:
      InputError: no model, one outside models_dir (not allowed), or no
        model directory (holding model_config.json) there.
    """
    if not isinstance(model, str) or not model.strip():
      raise InputError('No model chosen: pick one from the list or type the'
                       ' path of a model directory.')
    model = model.strip()
    if not model.isprintable() or len(model) > 4096:
      raise InputError('The model name has control characters or is too'
                       ' long; pick a model from the list.')
    if self.allow_outside:  # Under models_dir first, else from the cwd.
      path = os.path.join(self.models_dir, os.path.expanduser(model))
      if not os.path.isfile(os.path.join(path, checkpoints.CONFIG_FILE)):
        path = os.path.abspath(os.path.expanduser(model))
    elif (os.path.isabs(model) or model.startswith('~') or '..' in
          re.split(r'[/\\]', model) or not self._inside(model)):
      raise InputError(
          f'The model {model!r} is outside the models folder: name one'
          f' under it (one of {self.names()}), or start the server with'
          ' --allow_models_outside.')
    else:
      path = os.path.join(self.models_dir, model)
    path = os.path.normpath(path)
    if os.path.isfile(os.path.join(path, checkpoints.CONFIG_FILE)):
      return path
    raise InputError(
        f'Unknown model {model!r}: pick one of {self.names()} or type the'
        ' path of a model directory (one holding model_config.json).')

  def key(self, path: str) -> str:
    """How requests name the model at `path` (resolved): its path relative
    to models_dir, or (outside it) the absolute path."""
    relative = os.path.relpath(path, self.models_dir)
    if relative == '..' or relative.startswith('..' + os.sep):
      return path
    return relative

  def info(self, path: str, test_images: 'TestImages') -> dict[str, Any]:
    """What the page shows of a model: name, data set, size, test images."""
    config, metadata = checkpoints.load_model_config(path)
    dataset = model_dataset(path, metadata)
    count, note = test_images.count(dataset)
    return dict(
        name=self.key(path), path=self.key(path), dataset=dataset,
        resolution=config.resolution, window=model_window(path),
        crop='celeba' if dataset == 'celeba' else 'center',
        test_images=count, data_note=note, steps=metadata.get('steps'),
        encoder=has_encoder(path))

  def load_encoder(self, path: str) -> encoder_lib.LoadedEncoder:
    """The z encoder made for the model at `path` (`encoder_path`), checked
    against it (InputError if it was trained for another generator)."""
    config, _ = checkpoints.load_model_config(path)
    return encoder_lib.load_for(encoder_path(path), config, path)

  def load(self, path: str) -> tuple[Any, Any, Any]:
    """(config, G variables, D variables), restored once and kept until
    another model is loaded."""
    stamp = os.path.getmtime(os.path.join(path, checkpoints.CONFIG_FILE))
    with self._lock:
      if self._cached is None or self._cached[:2] != (path, stamp):
        self._cached = None  # Free the old one before loading the next.
        self._cached = (path, stamp, checkpoints.restore_model(path))
      return self._cached[2]


def encoder_path(model_path: str) -> str:
  """Where a model's z encoder lives: `<model dir>_encoder` beside it."""
  return os.path.normpath(model_path) + '_encoder'


def has_encoder(model_path: str) -> bool:
  """Whether the model has a z encoder (`encoder_path`) to start from."""
  return os.path.isfile(os.path.join(encoder_path(model_path),
                                     encoder_lib.CONFIG_FILE))


class TestImages:
  """The test split of each data set, `<data_dir>/<dataset>/test/`, as the
  photos on disk (full size), read with input_pipeline's file listing."""

  def __init__(self, data_dir: str | None = None):
    self.data_dir = os.path.abspath(data_dir or
                                    input_pipeline.default_data_dir())
    self._names: dict[str, list[str]] = {}

  def folder(self, dataset: str) -> str:
    """`<data_dir>/<dataset>/test`."""
    return os.path.join(self.data_dir, dataset, 'test')

  def names(self, dataset: str) -> list[str]:
    """Sorted image file names of the data set's test split."""
    if dataset not in self._names:
      self._names[dataset] = input_pipeline.list_images(self.folder(dataset))
    return self._names[dataset]

  def count(self, dataset: str | None) -> tuple[int, str | None]:
    """(number of test images, None) or (0, why there are none)."""
    if dataset is None:
      return 0, ('The data set of this model is unknown (not in its'
                 ' model_config.json nor its name): upload a photo.')
    try:
      return len(self.names(dataset)), None
    except InputError:
      return 0, (f'No {dataset} test images at {self.folder(dataset)}:'
                 ' start the server with --data_dir=<data root> (or set'
                 f' {input_pipeline.DATA_DIR_ENV}), or upload a photo.')

  def get(self, dataset: str | None, index: int) -> tuple[str, np.ndarray]:
    """(file name, uint8 (H, W, 3) photo) of test image `index`."""
    count, note = self.count(dataset)
    if not count:
      raise InputError(note)
    if not 0 <= index < count:
      raise InputError(f'index={index} is out of range: the {dataset} test'
                       f' split has images 0 to {count - 1}.')
    name = self.names(dataset)[index]
    photo = images_lib.open_rgb(os.path.join(self.folder(dataset), name))
    return name, np.asarray(photo, np.uint8)

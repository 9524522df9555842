"""A local web page to draw a mask on a photo and inpaint it (issue #14).

`python -m experiments.serve` serves the page in `inpaint_jax/web/` (plain
HTML, JavaScript and CSS, no external resources) and a small JSON API with
Python's standard library (`http.server.ThreadingHTTPServer`):

  GET  /api/models                 the models under --models_dir
  GET  /api/model?model=M          one model (a name or a directory path)
  GET  /api/test_image?model=M&index=I
                                   test image I of M's data set (full size)
  GET  /api/view?model=M&width=W&height=H&crop=C[&kind=K&seed=S]
                                   the square the model sees (box) and, with
                                   a mask kind, that mask at W x H
  POST /api/inpaint                start a job (JSON body, see `App.submit`)
  GET  /api/jobs/<id>              its status, progress, preview and results
  POST /api/jobs/<id>/cancel       stop it at the next progress report
  GET  /api/jobs/<id>/<name>.png   a result image

A photo of any size is inpainted through a (size x size) view of it
(`fullsize.model_view`); the hole drawn at the photo's resolution is used at
that resolution for the final paste-back (`fullsize.paste_back`), a mask kind
(`masks.make`) is drawn on the view and scaled up (`fullsize.full_mask`). Jobs
run one at a time in a background thread with `inpaint.search_progressive`,
so the page can show G(z) and the loss as the search goes.

Bad requests (an unreadable image, an empty or full mask, an unknown model,
settings out of range) raise `errors.InputError`; the handler answers them
with HTTP 400 and {"error": <its one-line message>}, which the page shows.
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import dataclasses
import http.server
import importlib.resources
import io
import itertools
import json
import math
import os
import queue
import re
import threading
import time
from typing import Any, Iterator
import urllib.parse
import warnings

from absl import logging
import jax
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from inpaint_jax import blending
from inpaint_jax import checkpoints
from inpaint_jax import encoder as encoder_lib
from inpaint_jax import fullsize
from inpaint_jax.data import images as images_lib
from inpaint_jax import inpaint
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks as masks_lib
from inpaint_jax.data import preprocessing
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.models import Discriminator, Generator

DEFAULT_ITERATIONS = 300  # The page's default: about a minute on a CPU.
ITERATIONS_RANGE = (1, 5000)
RESTARTS_RANGE = (1, 16)
CROPS = ('center', 'celeba')  # What fullsize.model_view takes.
MAX_BODY_BYTES = 64 * 2**20
MAX_PIXELS = 25_000_000  # An uploaded photo's limit (a 5000 x 5000 image).
MAX_WAITING_JOBS = 4  # Queued or running; more are refused (HTTP 503).
KEPT_JOBS = 8  # Finished jobs whose results stay available.
RESULT_NAMES = ('masked', 'generated', 'blended', 'result', 'mask')
_STATIC = {'/': 'index.html', '/index.html': 'index.html',
           '/app.js': 'app.js', '/style.css': 'style.css'}
_CONTENT_TYPES = {'.html': 'text/html; charset=utf-8',
                  '.js': 'text/javascript; charset=utf-8',
                  '.css': 'text/css; charset=utf-8'}


class NotFound(Exception):
  """An unknown URL or job (HTTP 404)."""


class Busy(Exception):
  """Too many jobs waiting (HTTP 503)."""


def default_models_dir() -> str:
  """`<project root>/models`, where the shipped models are."""
  return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
      __file__))), 'models')


def web_file(name: str) -> bytes:
  """The bytes of one of the page's files (package data `inpaint_jax/web/`)."""
  return (importlib.resources.files('inpaint_jax.serve') / 'web' / name).read_bytes()


# Images and masks in, PNGs out ---------------------------------------------


def png_bytes(pixels: np.ndarray) -> bytes:
  """uint8 (H, W, 3) RGB or (H, W) grey -> PNG file bytes."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format='PNG')
  return buffer.getvalue()


def data_url(png: bytes) -> str:
  """PNG bytes -> a 'data:image/png;base64,...' URL for an <img> src."""
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def decode_data_url(value: Any, what: str) -> bytes:
  """The bytes of a 'data:...;base64,...' URL (or of plain base64 text)."""
  if not isinstance(value, str) or not value:
    raise InputError(f'No {what} was sent: upload an image file (or pick a'
                     ' test image) first.')
  text = value.split(',', 1)[1] if value.startswith('data:') else value
  try:
    return base64.b64decode(text, validate=True)
  except (binascii.Error, ValueError):
    raise InputError(f'The {what} is not valid base64 data; send it as a'
                     ' data: URL (what FileReader.readAsDataURL gives).'
                     ) from None


def _open(data: bytes, what: str) -> Image.Image:
  """A decoded PIL image of the file bytes, refusing bombs and non-images."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      image = Image.open(io.BytesIO(data))
      if image.width * image.height > MAX_PIXELS:
        raise InputError(
            f'The {what} has {image.width}x{image.height} pixels, more than'
            f' the page takes ({MAX_PIXELS:,}); resize it (e.g. to 2000'
            ' pixels wide) first.')
      image.load()
      return image
  except InputError:
    raise
  except (Image.DecompressionBombError, Image.DecompressionBombWarning,
          UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
    raise InputError(f'The {what} cannot be read as an image'
                     f' ({e.__class__.__name__}); use a JPEG or PNG file.'
                     ) from None


def decode_photo(data: bytes) -> np.ndarray:
  """Uploaded image file bytes -> uint8 (H, W, 3) RGB as a browser shows it.

  EXIF orientation is applied (browsers do, so the mask drawn on the page
  has the same orientation); modes and transparency as `images.to_rgb`.
  """
  image = _open(data, 'image')
  image = ImageOps.exif_transpose(image)
  return np.asarray(images_lib.to_rgb(image, 'uploaded image'), np.uint8)


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
  """A mask PNG (white = known, black = hole) -> (H, W) bool, True = known.

  A pixel is known if its grey level is above half the image's brightest
  (as `masks.from_file`). The mask must be drawn at the photo's size
  `shape` (H, W) and have both a hole and known pixels.
  """
  image = _open(data, 'mask')
  grey = np.asarray(image.convert('L'), np.float32)
  if grey.shape != tuple(shape):
    raise InputError(
        f'The mask is {grey.shape[1]}x{grey.shape[0]} pixels but the photo'
        f' is {shape[1]}x{shape[0]}; draw the mask on this photo (press'
        ' Clear and draw again).')
  known = 2.0 * grey > grey.max()
  if known.all():
    raise InputError('The mask has no hole: paint the part to fill in with'
                     ' the brush, or choose a mask kind.')
  if not known.any():
    raise InputError('The mask covers the whole photo: nothing is left to'
                     ' condition on; leave some of it unpainted.')
  return known


def masked_view(view: np.ndarray, view_mask: np.ndarray) -> np.ndarray:
  """uint8 (S, S, 3) of the view (S, S, 3) in [-1, 1], the hole black."""
  return images_lib.to_uint8(
      images_lib.masked_for_display(view, view_mask))


# Request settings ----------------------------------------------------------


def _number(value: Any, name: str) -> float:
  if isinstance(value, bool) or value is None:
    number = math.nan
  elif isinstance(value, (int, float)):
    number = float(value)
  elif isinstance(value, str):
    try:
      number = float(value.strip())
    except ValueError:
      number = math.nan
  else:
    number = math.nan
  if not math.isfinite(number):
    raise InputError(f'{name}={value!r} is not a number; type a number.')
  return number


def whole_number(value: Any, name: str, lo: int, hi: int) -> int:
  """`value` (a JSON number or numeric text) as an int in [lo, hi]."""
  number = _number(value, name)
  if number != int(number) or not lo <= number <= hi:
    raise InputError(f'{name}={value!r} is out of range: use a whole number'
                     f' from {lo} to {hi}.')
  return int(number)


def nonnegative_number(value: Any, name: str) -> float:
  """`value` (a JSON number or numeric text) as a finite float >= 0."""
  number = _number(value, name)
  if number < 0:
    raise InputError(f'{name}={value!r} is negative: use a number >= 0'
                     ' (the paper: 0.003).')
  return number


def report_every(iterations: int, target: int = 40, most: int = 25) -> int:
  """Search steps between progress reports: about iterations / target.

  A divisor of `iterations` when one is near, so that every chunk has the
  same length and `search_progressive` compiles one chunk, not two.
  """
  wanted = max(1, min(most, iterations // target))
  for every in range(wanted, 0, -1):
    if iterations % every == 0 and every * 3 >= wanted:
      return every
  return wanted


# Models and test images ----------------------------------------------------


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
  """The model directories under `models_dir` (or any typed path); keeps
  the one restored last in memory."""

  def __init__(self, models_dir: str):
    self.models_dir = os.path.abspath(models_dir)
    self._lock = threading.Lock()
    self._cached: tuple[str, float, Any] | None = None

  def names(self) -> list[str]:
    """Sorted names of the subdirectories holding a model_config.json."""
    if not os.path.isdir(self.models_dir):
      return []
    return sorted(
        name for name in os.listdir(self.models_dir) if os.path.isfile(
            os.path.join(self.models_dir, name, checkpoints.CONFIG_FILE)))

  def resolve(self, model: Any) -> str:
    """A model name under models_dir, or a directory path -> absolute path."""
    if not isinstance(model, str) or not model.strip():
      raise InputError('No model chosen: pick one from the list or type the'
                       ' path of a model directory.')
    model = model.strip()
    if model in self.names():
      return os.path.join(self.models_dir, model)
    path = os.path.abspath(os.path.expanduser(model))
    if os.path.isfile(os.path.join(path, checkpoints.CONFIG_FILE)):
      return path
    raise InputError(
        f'Unknown model {model!r}: pick one of {self.names()} or type the'
        ' path of a model directory (one holding model_config.json).')

  def info(self, path: str, test_images: 'TestImages') -> dict[str, Any]:
    """What the page shows of a model: name, data set, size, test images."""
    config, metadata = checkpoints.load_model_config(path)
    dataset = model_dataset(path, metadata)
    count, note = test_images.count(dataset)
    parent = os.path.dirname(path)
    return dict(
        name=os.path.basename(path) if parent == self.models_dir else path,
        path=path, dataset=dataset, resolution=config.resolution,
        window=model_window(path), crop='celeba' if dataset == 'celeba'
        else 'center', test_images=count, data_note=note,
        steps=metadata.get('steps'), encoder=has_encoder(path))

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


# Jobs ----------------------------------------------------------------------


@dataclasses.dataclass
class Job:
  """One inpainting request, validated, and what became of it.

  photo: uint8 (H, W, 3); known: (H, W) bool, True = known pixel; view:
  (S, S, 3) float32 in [-1, 1] and view_mask (S, S, 1) float32, 1 = known,
  the model's view of them; box: (left, top, side) of the view in the photo.
  The photo and masks are dropped once the job ends (its PNGs stay).
  """
  id: str
  model_path: str
  model_name: str
  photo: np.ndarray | None
  known: np.ndarray | None
  view: np.ndarray | None
  view_mask: np.ndarray | None
  box: tuple[int, int, int]
  search_config: SearchConfig
  seed: int
  settings: dict[str, Any]
  status: str = 'queued'  # queued, running, done, error, cancelled
  phase: str = 'waiting for the job before it'
  step: int = 0
  loss: float | None = None
  preview: str | None = None
  error: str | None = None
  started: float | None = None
  seconds: float | None = None
  files: dict[str, bytes] = dataclasses.field(default_factory=dict)
  sizes: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
  cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

  def to_json(self) -> dict[str, Any]:
    """What GET /api/jobs/<id> returns."""
    return dict(
        id=self.id, status=self.status, phase=self.phase, step=self.step,
        total=self.search_config.iterations, loss=self.loss,
        preview=self.preview, error=self.error, model=self.model_name,
        settings=self.settings, box=list(self.box),
        seconds=self.seconds if self.seconds is not None else (
            time.time() - self.started if self.started else None),
        results={name: dict(url=f'/api/jobs/{self.id}/{name}.png',
                            width=self.sizes[name][1],
                            height=self.sizes[name][0])
                 for name in RESULT_NAMES if name in self.files})


class App:
  """The page's state: models, test images and the job runner thread.

  Call `close()` when done (stops the current job and the thread).
  """

  def __init__(self, models_dir: str | None = None,
               data_dir: str | None = None):
    self.registry = ModelRegistry(models_dir or default_models_dir())
    self.test_images = TestImages(data_dir)
    self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
    self._lock = threading.Lock()
    self._queue: queue.Queue[Job | None] = queue.Queue()
    self._ids = itertools.count(1)
    self._thread = threading.Thread(target=self._work, name='inpaint-jobs',
                                    daemon=True)
    self._thread.start()

  def close(self) -> None:
    """Cancels queued and running jobs and joins the runner thread."""
    with self._lock:
      for job in self._jobs.values():
        job.cancel.set()
    self._queue.put(None)
    self._thread.join()

  # The API, one method per route.

  def models(self) -> dict[str, Any]:
    """GET /api/models: every model under models_dir (unreadable ones with
    their error)."""
    listed = []
    for name in self.registry.names():
      path = os.path.join(self.registry.models_dir, name)
      try:
        listed.append(self.registry.info(path, self.test_images))
      except InputError as e:
        listed.append(dict(name=name, path=path, error=str(e)))
    return dict(models=listed, models_dir=self.registry.models_dir,
                data_dir=self.test_images.data_dir,
                defaults=dict(iterations=DEFAULT_ITERATIONS, restarts=1,
                              lam=SearchConfig.lam),
                limits=dict(iterations=ITERATIONS_RANGE,
                            restarts=RESTARTS_RANGE))

  def model(self, model: Any) -> dict[str, Any]:
    """GET /api/model?model=: one model by name or directory path."""
    return self.registry.info(self.registry.resolve(model), self.test_images)

  def test_image(self, model: Any, index: Any) -> dict[str, Any]:
    """GET /api/test_image: the photo (PNG data URL), its size and name."""
    info = self.model(model)
    count = info['test_images']
    if not count:
      raise InputError(info['data_note'])
    index = whole_number(index, 'index', 0, count - 1)
    name, photo = self.test_images.get(info['dataset'], index)
    return dict(index=index, count=count, name=name, dataset=info['dataset'],
                width=photo.shape[1], height=photo.shape[0],
                crop=info['crop'], image=data_url(png_bytes(photo)))

  def view(self, model: Any, width: Any, height: Any, crop: Any,
           kind: Any = None, seed: Any = 0) -> dict[str, Any]:
    """GET /api/view: the model's square in a W x H photo ([left, top,
    side]) and, for a mask kind, that mask at W x H (PNG data URL)."""
    path = self.registry.resolve(model)
    config, _ = checkpoints.load_model_config(path)
    width = whole_number(width, 'width', 1, MAX_PIXELS)
    height = whole_number(height, 'height', 1, MAX_PIXELS)
    crop = _crop(crop)
    box = _box(width, height, crop)
    out = dict(box=list(box))
    if kind:
      view_mask = _kind_mask(kind, whole_number(seed, 'seed', 0, 2**31 - 1),
                             config.resolution)
      known = fullsize.full_mask(view_mask, box, (height, width))
      out['mask'] = data_url(png_bytes(np.where(known, 255, 0)))
    return out

  def submit(self, request: Any) -> dict[str, Any]:
    """POST /api/inpaint: validates the request and queues a job.

    request: a JSON object with
      model: a name under models_dir or a model directory path;
      image: the photo, a data: URL of a PNG/JPEG/... file (any size);
      mask: a data: URL of a PNG at the photo's size (white = known, black
        = hole), or mask_kind: one of masks.KINDS (drawn on the model's view);
      crop: 'center' (default) or 'celeba' (the view of `fullsize`);
      iterations (1..5000, default 300), restarts (1..16, default 1),
      lam (>= 0, default 0.003), window (odd, default the model card's),
      seed (>= 0, default 0: the mask kind and initial z);
      encoder (true/false, default false): start the search from the
        model's z encoder (`encoder_path`; beyond the paper).

    Returns:
      The job's JSON (status 'queued').

    Raises:
      InputError: a bad field (one line: what and how to fix it).
      Busy: MAX_WAITING_JOBS jobs are waiting already.
    """
    if not isinstance(request, dict):
      raise InputError('The request must be a JSON object; reload the page.')
    path = self.registry.resolve(request.get('model'))
    config, _ = checkpoints.load_model_config(path)
    size = config.resolution
    iterations = whole_number(request.get('iterations', DEFAULT_ITERATIONS),
                              'iterations', *ITERATIONS_RANGE)
    restarts = whole_number(request.get('restarts', 1), 'restarts',
                            *RESTARTS_RANGE)
    lam = nonnegative_number(request.get('lam', SearchConfig.lam), 'lambda')
    window = whole_number(request.get('window', model_window(path)),
                          'window', 1, 4 * size + 1)
    seed = whole_number(request.get('seed', 0), 'seed', 0, 2**31 - 1)
    crop = _crop(request.get('crop', 'center'))
    use_encoder = request.get('encoder', False)
    if not isinstance(use_encoder, bool):
      raise InputError(f'encoder={use_encoder!r} must be true or false.')
    if use_encoder and not has_encoder(path):
      raise InputError(
          f'The model has no z encoder at {encoder_path(path)}: train one with'
          ' experiments.train_encoder, or untick "Start from the encoder".')
    search_config = SearchConfig(iterations=iterations, lam=lam,
                                 restarts=restarts, window=window)
    photo = decode_photo(decode_data_url(request.get('image'), 'image'))
    height, width = photo.shape[:2]
    view, box = fullsize.model_view(photo, crop, size)
    kind = request.get('mask_kind')
    if kind:
      if request.get('mask'):
        raise InputError('Send either a drawn mask or a mask kind, not both.')
      view_mask = _kind_mask(kind, seed, size)
      known = fullsize.full_mask(view_mask, box, (height, width))
    else:
      if not request.get('mask'):
        raise InputError('No mask: paint the hole with the brush, or choose'
                         ' a mask kind.')
      known = decode_mask(decode_data_url(request['mask'], 'mask'),
                          (height, width))
      view_mask = np.asarray(fullsize.view_mask(known, box, size),
                             np.float32)
    masks_lib.check_masks(
        view_mask[None], f"The mask at the model's {size}x{size} view",
        missing_fix='paint a bigger hole', known_fix='leave more unpainted')
    settings = dict(iterations=iterations, restarts=restarts, lam=lam,
                    window=window, seed=seed, crop=crop, encoder=use_encoder,
                    mask=kind or 'drawn', width=width, height=height)
    with self._lock:
      waiting = sum(j.status in ('queued', 'running')
                    for j in self._jobs.values())
      if waiting >= MAX_WAITING_JOBS:
        raise Busy(f'{waiting} jobs are waiting already; wait for them or'
                   ' cancel one.')
      job = Job(id=str(next(self._ids)), model_path=path,
                model_name=os.path.basename(path), photo=photo, known=known,
                view=np.asarray(view, np.float32),
                view_mask=view_mask.reshape(size, size, 1), box=tuple(
                    int(v) for v in box), search_config=search_config,
                seed=seed, settings=settings)
      self._jobs[job.id] = job
      self._forget_old_jobs()
      self._queue.put(job)
      return job.to_json()

  def job(self, job_id: str) -> dict[str, Any]:
    """GET /api/jobs/<id>."""
    with self._lock:
      return self._get(job_id).to_json()

  def cancel(self, job_id: str) -> dict[str, Any]:
    """POST /api/jobs/<id>/cancel: stops it at its next progress report."""
    with self._lock:
      job = self._get(job_id)
      job.cancel.set()
      return job.to_json()

  def file(self, job_id: str, name: str) -> bytes:
    """GET /api/jobs/<id>/<name>.png: a result image (PNG bytes)."""
    with self._lock:
      files = self._get(job_id).files
      if name not in files:
        raise NotFound(f'Job {job_id} has no {name}.png (yet).')
      return files[name]

  def _get(self, job_id: str) -> Job:
    if job_id not in self._jobs:
      raise NotFound(f'No job {job_id!r}: it finished long ago or never'
                     ' existed; start it again.')
    return self._jobs[job_id]

  def _forget_old_jobs(self) -> None:
    finished = [k for k, j in self._jobs.items()
                if j.status not in ('queued', 'running')]
    for key in finished[:max(0, len(self._jobs) - KEPT_JOBS)]:
      del self._jobs[key]

  # The runner thread.

  def _work(self) -> None:
    while True:
      job = self._queue.get()
      if job is None:
        return
      try:
        self._run(job)
      except InputError as e:
        self._update(job, status='error', error=str(e), phase='failed')
      except Exception as e:  # A bug: keep the trace in the log.
        logging.exception('Inpainting job %s failed.', job.id)
        self._update(job, status='error', phase='failed',
                     error=f'Internal error ({e.__class__.__name__}: {e});'
                     ' see the server log.')
      finally:
        with self._lock:
          if job.started is not None:
            job.seconds = time.time() - job.started
          job.photo = job.known = job.view = job.view_mask = None

  def _update(self, job: Job, **fields) -> None:
    with self._lock:
      for name, value in fields.items():
        setattr(job, name, value)

  def _run(self, job: Job) -> None:
    if job.cancel.is_set():
      self._update(job, status='cancelled', phase='cancelled')
      return
    self._update(job, status='running', phase='loading the model',
                 started=time.time())
    config, g_vars, d_vars = self.registry.load(job.model_path)
    generator, discriminator = Generator(config), Discriminator(config)
    _, z_key = jax.random.split(jax.random.PRNGKey(job.seed))
    corrupted = (job.view * job.view_mask)[None]
    view_mask = job.view_mask[None]
    total = job.search_config.iterations
    initial_z = None
    if job.settings['encoder']:
      self._update(job, phase="predicting z with the model's encoder")
      initial_z = encoder_lib.initial_latents(
          self.registry.load_encoder(job.model_path), corrupted, view_mask,
          z_key, job.search_config.restarts)
    self._update(job, phase='compiling the search (slow the first time)')
    progress = inpaint.search_progressive(
        generator, discriminator, g_vars, d_vars, corrupted, view_mask, z_key,
        job.search_config, every=report_every(total), initial_z=initial_z)
    result = None
    try:
      for report in progress:
        if job.cancel.is_set():
          self._update(job, status='cancelled', phase='cancelled')
          return
        self._update(job, step=report.step, loss=float(report.loss[0]),
                     phase='searching z',
                     preview=data_url(png_bytes(images_lib.to_uint8(
                         np.asarray(report.generated[0])))))
        result = report.result
    finally:
      progress.close()
    self._update(job, phase='blending')
    generated = np.asarray(result.generated[0])
    blended = blending.poisson_blend(result.generated, corrupted, view_mask,
                                     clip=True)
    full = fullsize.paste_back(job.photo, job.known, generated, job.box,
                               blend=True)
    pictures = dict(
        masked=masked_view(job.view, job.view_mask),
        generated=images_lib.to_uint8(generated),
        blended=images_lib.to_uint8(np.asarray(blended[0])),
        result=np.asarray(full, np.uint8),
        mask=np.where(job.known, 255, 0).astype(np.uint8))
    files = {name: png_bytes(pixels) for name, pixels in pictures.items()}
    sizes = {name: pixels.shape[:2] for name, pixels in pictures.items()}
    self._update(job, files=files, sizes=sizes, status='done', phase='done',
                 loss=float(result.loss[0]))


def _crop(crop: Any) -> str:
  if crop not in CROPS:
    raise InputError(f'crop={crop!r} is unknown: use one of {CROPS}.')
  return crop


def _kind_mask(kind: Any, seed: int, size: int) -> np.ndarray:
  """(size, size, 1) float32 mask of a kind, keyed as zsearch_method does."""
  if kind not in masks_lib.KINDS:
    raise InputError(f'Unknown mask kind {kind!r}; use one of'
                     f' {masks_lib.KINDS}.')
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  return np.asarray(masks_lib.make(kind, mask_key, 1, size)[0], np.float32)


def _box(width: int, height: int, crop: str) -> tuple[int, int, int]:
  """(left, top, side): the square of a W x H photo the model view shows."""
  return tuple(int(v) for v in preprocessing.crop_box(width, height, crop))


# HTTP ----------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes the page's files and the JSON API to `self.server.app` (App)."""

  server_version = 'inpaint_jax'

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    """Request lines go to the debug log, not stderr (the page polls)."""
    logging.debug('%s %s', self.address_string(), format % args)

  def do_GET(self):  # pylint: disable=invalid-name
    """Serves the page's files and the GET routes of the API."""
    self._respond(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    """Serves the POST routes of the API (JSON bodies)."""
    self._respond(self._post)

  def _get(self, path: str, query: dict[str, str]):
    app = self.server.app
    if path in _STATIC:
      name = _STATIC[path]
      return 200, _CONTENT_TYPES[os.path.splitext(name)[1]], web_file(name)
    if path == '/api/models':
      return _json(app.models())
    if path == '/api/model':
      return _json(app.model(query.get('model')))
    if path == '/api/test_image':
      return _json(app.test_image(query.get('model'), query.get('index', 0)))
    if path == '/api/view':
      return _json(app.view(query.get('model'), query.get('width'),
                            query.get('height'), query.get('crop', 'center'),
                            query.get('kind'), query.get('seed', 0)))
    found = re.fullmatch(r'/api/jobs/(\w+)', path)
    if found:
      return _json(app.job(found.group(1)))
    found = re.fullmatch(r'/api/jobs/(\w+)/(\w+)\.png', path)
    if found:
      return 200, 'image/png', app.file(*found.groups())
    raise NotFound(f'Nothing at {path}.')

  def _post(self, path: str, query: dict[str, str]):
    del query
    app = self.server.app
    found = re.fullmatch(r'/api/jobs/(\w+)/cancel', path)
    if found:
      return _json(app.cancel(found.group(1)))
    if path != '/api/inpaint':
      raise NotFound(f'Nothing to POST to at {path}.')
    # JSON only: a cross-site form cannot send it without a preflight.
    if self.headers.get('Content-Type', '').split(';')[0] != (
        'application/json'):
      raise InputError('Send the request as JSON (Content-Type:'
                       ' application/json).')
    length = whole_number(self.headers.get('Content-Length'),
                          'Content-Length', 1, MAX_BODY_BYTES)
    body = self.rfile.read(length)
    try:
      request = json.loads(body)
    except ValueError:
      raise InputError('The request body is not valid JSON; reload the'
                       ' page.') from None
    return _json(app.submit(request), 202)

  def _respond(self, route) -> None:
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    try:
      status, content_type, body = route(url.path, query)
    except InputError as e:
      status, content_type, body = _json({'error': str(e)}, 400)
    except NotFound as e:
      status, content_type, body = _json({'error': str(e)}, 404)
    except Busy as e:
      status, content_type, body = _json({'error': str(e)}, 503)
    except Exception as e:  # A bug: answer, and keep the trace in the log.
      logging.exception('Request %s failed.', self.path)
      status, content_type, body = _json(
          {'error': f'Internal error ({e.__class__.__name__}: {e}); see the'
                    ' server log.'}, 500)
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.end_headers()
    if self.command != 'HEAD':
      self.wfile.write(body)


def _json(payload: Any, status: int = 200) -> tuple[int, str, bytes]:
  return status, 'application/json', json.dumps(payload).encode()


class Server(http.server.ThreadingHTTPServer):
  """A ThreadingHTTPServer whose handlers reach the App as `server.app`."""

  daemon_threads = True

  def __init__(self, address: tuple[str, int], app: App):
    super().__init__(address, Handler)
    self.app = app


def make_server(app: App, host: str = '127.0.0.1', port: int = 8000) -> Server:
  """A bound (not yet serving) server; port 0 picks a free port."""
  try:
    return Server((host, port), app)
  except OSError as e:
    raise InputError(f'Cannot listen on {host}:{port} ({e.strerror}); pick'
                     ' another --port (or stop what uses it).') from None


@contextlib.contextmanager
def running(app: App, host: str = '127.0.0.1',
            port: int = 0) -> Iterator[str]:
  """Serves `app` in a thread; yields the base URL ('http://host:port').

  On exit the server is shut down, its socket closed and `app` closed, so
  no thread or port is left behind.
  """
  try:
    server = make_server(app, host, port)
  except BaseException:
    app.close()
    raise
  thread = threading.Thread(target=server.serve_forever, name='inpaint-http',
                            daemon=True)
  thread.start()
  try:
    yield f'http://{host}:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
    app.close()

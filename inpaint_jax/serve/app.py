"""The page's API: `App`, one method per route of `handler`.

A photo of any size is inpainted through a (size x size) view of it
(`fullsize.model_view`); the hole drawn at the photo's resolution is used at
that resolution for the final paste-back (`fullsize.paste_back`), a mask kind
(`masks.make`) is drawn on the view and scaled up (`fullsize.full_mask`).
POST /api/inpaint is checked in two steps (`parse_settings`, then
`decode_images`) before its job is queued (`jobs.JobQueue`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable

import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax import fullsize
from inpaint_jax import inpaint
from inpaint_jax import masks as masks_lib
from inpaint_jax import refine
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.serve import jobs as jobs_lib
from inpaint_jax.serve import registry as registry_lib
from inpaint_jax.serve import fields

DEFAULT_ITERATIONS = 300  # The page's default: about a minute on a CPU.
ITERATIONS_RANGE = (1, 5000)
RESTARTS_RANGE = (1, 16)


@dataclasses.dataclass(frozen=True)
class Settings:
  """The checked settings of a POST /api/inpaint request (`App.submit`).

  path: the model directory; size: its resolution S; crop: one of
  fields.CROPS; encoder: start the search from the model's z encoder;
  refine: '' or a name of `refine.PRESETS` (a search after the z-search).
  """
  path: str
  size: int
  search_config: SearchConfig
  seed: int
  crop: str
  encoder: bool
  refine: str = ''


@dataclasses.dataclass(frozen=True)
class Images:
  """The photo and mask of a POST /api/inpaint request, and the model's view.

  photo: uint8 (H, W, 3); known: (H, W) bool, True = known pixel; view:
  (S, S, 3) in [-1, 1]; view_mask: (S, S, 1) float32, 1 = known; box:
  (left, top, side) of the view in the photo; mask: the mask kind or None
  for a drawn mask.
  """
  photo: np.ndarray
  known: np.ndarray
  view: np.ndarray
  view_mask: np.ndarray
  box: tuple[int, int, int]
  mask: str | None


def parse_settings(request: Any,
                   registry: registry_lib.ModelRegistry) -> Settings:
  """The model and search settings of a request (see `App.submit`).

  Raises:
    InputError: a bad field, the first one in the order of `App.submit`.
  """
  if not isinstance(request, dict):
    raise InputError('The request must be a JSON object; reload the page.')
  path = registry.resolve(request.get('model'))
  config, _ = checkpoints.load_model_config(path)
  size = config.resolution
  iterations = fields.whole_number(
      request.get('iterations', DEFAULT_ITERATIONS), 'iterations',
      *ITERATIONS_RANGE)
  restarts = fields.whole_number(request.get('restarts', 1), 'restarts',
                                   *RESTARTS_RANGE)
  lam = fields.nonnegative_number(request.get('lam', SearchConfig.lam),
                                    'lambda')
  window = fields.whole_number(
      request.get('window', registry_lib.model_window(path)), 'window', 1,
      4 * size + 1)
  seed = fields.whole_number(request.get('seed', 0), 'seed', 0, 2**31 - 1)
  crop = fields.crop_name(request.get('crop', 'center'))
  use_encoder = request.get('encoder', False)
  if not isinstance(use_encoder, bool):
    raise InputError(f'encoder={fields.shown(use_encoder)} must be true or'
                     ' false.')
  if use_encoder and not registry_lib.has_encoder(path):
    raise InputError(
        'The model has no z encoder at'
        f' {registry_lib.encoder_path(path)}: train one with'
        ' experiments.train_encoder, or untick "Start from the encoder".')
  refinement = request.get('refine', '')
  if refinement not in ('', *refine.PRESETS):
    raise InputError(f'refine={fields.shown(refinement)}: use one of'
                     f' {", ".join(refine.PRESETS)}, or "" for none (the'
                     ' paper).')
  search_config = SearchConfig(iterations=iterations, lam=lam,
                               restarts=restarts, window=window,
                               **refine.PRESETS.get(refinement, {}))
  inpaint.check_search_config(search_config, config)
  return Settings(path=path, size=size, search_config=search_config,
                  seed=seed, crop=crop, encoder=use_encoder,
                  refine=refinement)


def decode_images(request: dict[str, Any], settings: Settings) -> Images:
  """The request's photo and its drawn mask or mask kind, checked.

  Raises:
    InputError: an unreadable photo or mask, both a mask and a kind or
      neither, or a mask whose view at S x S has no hole or nothing known.
  """
  size = settings.size
  photo = fields.decode_photo(
      fields.decode_data_url(request.get('image'), 'image'))
  height, width = photo.shape[:2]
  view, box = fullsize.model_view(photo, settings.crop, size)
  kind = request.get('mask_kind')
  if kind:
    if request.get('mask'):
      raise InputError('Send either a drawn mask or a mask kind, not both.')
    view_mask = fields.kind_mask(kind, settings.seed, size)
    known = fullsize.full_mask(view_mask, box, (height, width))
  else:
    if not request.get('mask'):
      raise InputError('No mask: paint the hole with the brush, or choose'
                       ' a mask kind.')
    known = fields.decode_mask(
        fields.decode_data_url(request['mask'], 'mask'), (height, width))
    view_mask = np.asarray(fullsize.view_mask(known, box, size), np.float32)
  masks_lib.check_masks(
      view_mask[None], f"The mask at the model's {size}x{size} view",
      missing_fix='paint a bigger hole', known_fix='leave more unpainted')
  return Images(photo=photo, known=known, view=np.asarray(view, np.float32),
                view_mask=view_mask.reshape(size, size, 1),
                box=tuple(int(v) for v in box), mask=kind or None)


class App:
  """The page's state: models, test images and the job runner thread.

  models_dir: the models offered; allow_models_outside: let a request name
  any model directory, not only one under models_dir; keep_seconds and
  kept_jobs: how long and how many ended jobs stay readable (`JobQueue`);
  clock: the clock of their expiry (tests set it).
  Call `close()` when done (stops the current job and the thread).
  """

  def __init__(self, models_dir: str | None = None,
               data_dir: str | None = None, *,
               allow_models_outside: bool = False,
               keep_seconds: float = jobs_lib.KEEP_SECONDS,
               kept_jobs: int = jobs_lib.KEPT_JOBS,
               clock: Callable[[], float] = time.monotonic):
    self.registry = registry_lib.ModelRegistry(
        models_dir or registry_lib.default_models_dir(),
        allow_outside=allow_models_outside)
    self.test_images = registry_lib.TestImages(data_dir)
    self.jobs = jobs_lib.JobQueue(self.registry, keep_seconds=keep_seconds,
                                  kept_jobs=kept_jobs, clock=clock)

  def close(self) -> None:
    """Cancels queued and running jobs and joins the runner thread."""
    self.jobs.close()

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
        listed.append(dict(name=name, path=name, error=str(e)))
    return dict(models=listed, models_dir=self.registry.models_dir,
                data_dir=self.test_images.data_dir,
                defaults=dict(iterations=DEFAULT_ITERATIONS, restarts=1,
                              lam=SearchConfig.lam),
                limits=dict(iterations=ITERATIONS_RANGE,
                            restarts=RESTARTS_RANGE))

  def model(self, model: Any) -> dict[str, Any]:
    """GET /api/model?model=: one model by name (`registry.resolve`)."""
    return self.registry.info(self.registry.resolve(model), self.test_images)

  def test_image(self, model: Any, index: Any) -> dict[str, Any]:
    """GET /api/test_image: the photo (PNG data URL), its size and name."""
    info = self.model(model)
    count = info['test_images']
    if not count:
      raise InputError(info['data_note'])
    index = fields.whole_number(index, 'index', 0, count - 1)
    name, photo = self.test_images.get(info['dataset'], index)
    return dict(index=index, count=count, name=name, dataset=info['dataset'],
                width=photo.shape[1], height=photo.shape[0],
                crop=info['crop'],
                image=fields.data_url(fields.png_bytes(photo)))

  def view(self, model: Any, width: Any, height: Any, crop: Any,
           kind: Any = None, seed: Any = 0) -> dict[str, Any]:
    """GET /api/view: the model's square in a W x H photo ([left, top,
    side]) and, for a mask kind, that mask at W x H (PNG data URL)."""
    path = self.registry.resolve(model)
    config, _ = checkpoints.load_model_config(path)
    width = fields.whole_number(width, 'width', 1, fields.MAX_PIXELS)
    height = fields.whole_number(height, 'height', 1, fields.MAX_PIXELS)
    crop = fields.crop_name(crop)
    box = fields.view_box(width, height, crop)
    out = dict(box=list(box))
    if kind:
      view_mask = fields.kind_mask(
          kind, fields.whole_number(seed, 'seed', 0, 2**31 - 1),
          config.resolution)
      known = fullsize.full_mask(view_mask, box, (height, width))
      out['mask'] = fields.data_url(fields.png_bytes(
          np.where(known, 255, 0)))
    return out

  def submit(self, request: Any) -> dict[str, Any]:
    """POST /api/inpaint: validates the request and queues a job.

    request: a JSON object with
      model: a name under models_dir (a directory path only when the
        server allows models outside it: `registry.ModelRegistry`);
      image: the photo, a data: URL of a PNG/JPEG/... file (any size);
      mask: a data: URL of a PNG at the photo's size (white = known, black
        = hole), or mask_kind: one of masks.KINDS (drawn on the model's view);
      crop: 'center' (default) or 'celeba' (the view of `fullsize`);
      iterations (1..5000, default 300), restarts (1..16, default 1),
      lam (>= 0, default 0.003), window (odd, default the model card's),
      seed (>= 0, default 0: the mask kind and initial z);
      encoder (true/false, default false): start the search from the
        model's z encoder (`registry.encoder_path`; beyond the paper);
      refine ('' default, or a name of `refine.PRESETS`): continue after
        the z-search on an intermediate layer and/or fine-tune G (beyond
        the paper).

    Returns:
      The job's JSON (status 'queued').

    Raises:
      InputError: a bad field (one line: what and how to fix it).
      jobs.Busy: MAX_WAITING_JOBS jobs are waiting already.
    """
    settings = parse_settings(request, self.registry)
    images = decode_images(request, settings)
    height, width = images.photo.shape[:2]
    search = settings.search_config
    return self.jobs.submit(
        model_path=settings.path,
        model_name=os.path.basename(settings.path), photo=images.photo,
        known=images.known, view=images.view, view_mask=images.view_mask,
        box=images.box, search_config=search, seed=settings.seed,
        settings=dict(iterations=search.iterations, restarts=search.restarts,
                      lam=search.lam, window=search.window,
                      seed=settings.seed, crop=settings.crop,
                      encoder=settings.encoder, refine=settings.refine,
                      mask=images.mask or 'drawn',
                      width=width, height=height))

  def job(self, job_id: str) -> dict[str, Any]:
    """GET /api/jobs/<id>: its status, progress, preview and results."""
    return self.jobs.job(job_id)

  def cancel(self, job_id: str) -> dict[str, Any]:
    """POST /api/jobs/<id>/cancel: stops it at its next progress report."""
    return self.jobs.cancel(job_id)

  def file(self, job_id: str, name: str) -> bytes:
    """GET /api/jobs/<id>/<name>.png: a result image (PNG bytes)."""
    return self.jobs.file(job_id, name)

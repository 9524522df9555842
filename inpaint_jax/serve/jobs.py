"""Inpainting jobs and the thread that runs them, one at a time.

A job holds a checked request (the photo, its mask and the model's view of
them) and what became of it: status, progress, a preview of G(z) and the
result PNGs. `JobQueue` runs the jobs with `inpaint.search_progressive`, so
the page can show G(z) and the loss as the search goes.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import secrets
import threading
import time
from typing import Any, Callable

from absl import logging
import jax
import numpy as np

from inpaint_jax import blending
from inpaint_jax import encoder as encoder_lib
from inpaint_jax import fullsize
from inpaint_jax import inpaint
from inpaint_jax.config import SearchConfig
from inpaint_jax.data import images as images_lib
from inpaint_jax.errors import InputError
from inpaint_jax.models import Discriminator, Generator
from inpaint_jax.serve import registry as registry_lib
from inpaint_jax.serve import fields

MAX_WAITING_JOBS = 4  # Queued or running; more are refused (HTTP 503).
KEPT_JOBS = 8  # Finished jobs whose results stay available (the newest).
KEEP_SECONDS = 30 * 60  # ... for this long after they ended, then forgotten.
ID_BYTES = 16  # A job id's random bytes: 128 bits, 22 URL-safe characters.
ID_PATTERN = r'[A-Za-z0-9_-]{1,64}'  # What the routes take as a job id.
_SWEEP_SECONDS = 30.0  # How often the runner forgets expired jobs when idle.
RESULT_NAMES = ('masked', 'generated', 'blended', 'result', 'mask')


class NotFound(Exception):
  """An unknown URL or job (HTTP 404)."""


class Busy(Exception):
  """Too many jobs waiting (HTTP 503)."""


def new_id() -> str:
  """An unguessable job id: ID_BYTES random bytes as URL-safe base64.

  A job's status and pictures are read through its id alone, so ids must not
  be guessable from one another (no counter).
  """
  return secrets.token_urlsafe(ID_BYTES)


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
  ended: float | None = None  # The queue's clock when the job ended.
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


class JobQueue:
  """The jobs and the thread that runs them with the models of `registry`.

  Kept: the queued and running jobs, and of the ended ones (done, error,
  cancelled) the newest `kept_jobs` for `keep_seconds` after they ended;
  older ones are forgotten (their JSON and PNGs; 404 from then on). A job is
  found only by its id (`new_id`); there is no listing.
  Call `close()` when done (stops the current job and the thread).
  """

  def __init__(self, registry: registry_lib.ModelRegistry,
               keep_seconds: float = KEEP_SECONDS,
               kept_jobs: int = KEPT_JOBS,
               clock: Callable[[], float] = time.monotonic):
    self.registry = registry
    self.keep_seconds = keep_seconds
    self.kept_jobs = kept_jobs
    self._clock = clock
    self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
    self._lock = threading.Lock()
    self._queue: queue.Queue[Job | None] = queue.Queue()
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

  def submit(self, **fields) -> dict[str, Any]:
    """Queues a new `Job(**fields)` (all but its id); returns its JSON.

    Raises:
      Busy: MAX_WAITING_JOBS jobs are waiting already.
    """
    with self._lock:
      waiting = sum(j.status in ('queued', 'running')
                    for j in self._jobs.values())
      if waiting >= MAX_WAITING_JOBS:
        raise Busy(f'{waiting} jobs are waiting already; wait for them or'
                   ' cancel one.')
      self._forget_old_jobs()
      job = Job(id=new_id(), **fields)
      self._jobs[job.id] = job
      self._queue.put(job)
      return job.to_json()

  def job(self, job_id: str) -> dict[str, Any]:
    """The JSON of job `job_id` (NotFound if it is gone or never was)."""
    with self._lock:
      return self._get(job_id).to_json()

  def cancel(self, job_id: str) -> dict[str, Any]:
    """Stops job `job_id`: a queued one at once, a running one at its next
    progress report; returns its JSON."""
    with self._lock:
      job = self._get(job_id)
      job.cancel.set()
      if job.status == 'queued':  # The runner skips it; free its photo now.
        job.status = job.phase = 'cancelled'
        self._end(job)
      return job.to_json()

  def file(self, job_id: str, name: str) -> bytes:
    """Result image `name` (one of RESULT_NAMES) of a job, as PNG bytes."""
    with self._lock:
      files = self._get(job_id).files
      if name not in files:
        raise NotFound(f'Job {job_id} has no {name}.png (yet).')
      return files[name]

  def _get(self, job_id: str) -> Job:
    self._forget_old_jobs()
    if not isinstance(job_id, str) or job_id not in self._jobs:
      raise NotFound('No such job: it ended more than'
                     f' {self.keep_seconds / 60:g} minutes ago, was pushed'
                     ' out by newer ones, or never existed; start it again.')
    return self._jobs[job_id]

  def _end(self, job: Job) -> None:
    """Marks `job` ended now and drops its photo and masks (lock held)."""
    job.ended = self._clock()
    if job.started is not None:
      job.seconds = time.time() - job.started
    job.photo = job.known = job.view = job.view_mask = None

  def _forget_old_jobs(self) -> None:
    """Forgets ended jobs past keep_seconds or beyond kept_jobs (lock
    held)."""
    ended = [k for k, j in self._jobs.items() if j.ended is not None]
    expired = set(ended[:max(0, len(ended) - self.kept_jobs)])
    now = self._clock()
    expired.update(k for k in ended
                   if now - self._jobs[k].ended >= self.keep_seconds)
    for key in expired:
      del self._jobs[key]

  # The runner thread.

  def _work(self) -> None:
    while True:
      try:
        job = self._queue.get(timeout=_SWEEP_SECONDS)
      except queue.Empty:
        with self._lock:
          self._forget_old_jobs()
        continue
      if job is None:
        return
      if job.ended is not None:  # Cancelled while it waited.
        continue
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
          self._end(job)

  def _update(self, job: Job, **fields) -> None:
    with self._lock:
      for name, value in fields.items():
        setattr(job, name, value)

  def _run(self, job: Job) -> None:
    with self._lock:  # Atomic with `cancel` of a queued job.
      if job.cancel.is_set():
        job.status = job.phase = 'cancelled'
        return
      job.status, job.phase = 'running', 'loading the model'
      job.started = time.time()
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
                     preview=fields.data_url(fields.png_bytes(
                         images_lib.to_uint8(np.asarray(
                             report.generated[0])))))
        result = report.result
    finally:
      progress.close()
    self._update(job, phase='blending')
    pictures = result_pictures(job, result.generated, corrupted, view_mask)
    files = {name: fields.png_bytes(pixels)
             for name, pixels in pictures.items()}
    sizes = {name: pixels.shape[:2] for name, pixels in pictures.items()}
    self._update(job, files=files, sizes=sizes, status='done', phase='done',
                 loss=float(result.loss[0]))


def result_pictures(job: Job, generated: Any, corrupted: Any,
                    view_mask: Any) -> dict[str, np.ndarray]:
  """The uint8 pictures of a finished search, named as RESULT_NAMES.

  generated: (1, S, S, 3) G(z_hat) in [-1, 1]; corrupted: (1, S, S, 3) the
  view with the hole zeroed; view_mask: (1, S, S, 1), 1 = known pixel.
  'masked', 'generated' and 'blended' are the model's view (S, S), 'result'
  (G(z_hat) pasted back into the photo) and 'mask' are at the photo's size.
  """
  blended = blending.poisson_blend(generated, corrupted, view_mask,
                                   clip=True)
  generated = np.asarray(generated[0])
  full = fullsize.paste_back(job.photo, job.known, generated, job.box,
                             blend=True)
  return dict(
      masked=fields.masked_view(job.view, job.view_mask),
      generated=images_lib.to_uint8(generated),
      blended=images_lib.to_uint8(np.asarray(blended[0])),
      result=np.asarray(full, np.uint8),
      mask=np.where(job.known, 255, 0).astype(np.uint8))

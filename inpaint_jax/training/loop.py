"""The training machinery every trainer shares.

A trainer (`train_dcgan`, `train_encoder`, `train_classifier`,
`train_context_encoder`) brings what is specific to its model: its state, a
pure `train_step(state, batch, rng, *, axis_name=None, ...) -> (state,
metrics)` and its data. This module brings the rest:

* `parallel_step`: the one place that wraps a step in `jax.pmap` (over every
  local device, axis `AXIS`); with the helpers a step uses on that axis
  (`device_mean`, `device_share`), a pmap over D devices computes the same
  step as one device on the global batch.
* `check_batch`: the global batch splits over the devices; the training
  images fit the model and hold a batch.
* `start_run`: refuses a resume with other settings (the run record,
  `run_state.check_run`), restores the latest intact checkpoint and records
  the run's settings.
* `train_loop`: steps to the config's num_steps with a tqdm bar,
  metrics.jsonl, sample grids and orbax checkpoints, with exact resume
  (everything random is a function of the seed and the step).

Every trainer's config has the same bookkeeping fields (`config.BOOKKEEPING`:
num_steps, checkpoint_every, keep_checkpoints, log_every and, where the
trainer draws samples, sample_every); a resumed run may change them.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any, Callable, Protocol

import flax
import jax
import numpy as np
from absl import logging

from inpaint_jax import distributed
from inpaint_jax.data import images as image_io
from inpaint_jax.errors import InputError
from inpaint_jax.training import run_state

AXIS = 'devices'
METRICS_FILE = 'metrics.jsonl'
SAMPLES_DIR = 'samples'


class Settings(Protocol):
  """The fields of a trainer's config that the loop reads."""
  batch_size: int
  num_steps: int
  checkpoint_every: int
  keep_checkpoints: int
  log_every: int


# The pmap wrapper and the collectives of a step --------------------------


def parallel_step(step_fn: Callable[..., tuple[Any, Any]], *,
                  broadcast: dict[str, Any] | None = None, **settings):
  """`jax.pmap` of step_fn over every local device: the one wrapper.

  Args:
    step_fn: step_fn(state, batch, rng, *, axis_name, **settings,
      **broadcast) -> (state, metrics); pure.
    broadcast: arrays passed to every device as arguments of the program
      (not constants of it: pmap would copy constants to the devices on
      every call, 7x slower for the encoder's generator).
    **settings: static keyword arguments of step_fn.

  Returns:
    f(replicated state, batch, rng) -> (replicated state, replicated
    metrics). `batch` is this process's share of the global batch (a pytree
    of arrays with a leading batch axis), split evenly over the local
    devices; rng is the same on every device; the state's buffers are
    donated.
  """
  names = tuple(broadcast or {})
  values = tuple((broadcast or {}).values())

  def step(state, batch, rng, *arguments):
    return step_fn(state, batch, rng, axis_name=AXIS, **settings,
                   **dict(zip(names, arguments)))

  p_step = jax.pmap(step, axis_name=AXIS,
                    in_axes=(0, 0, None) + (None,) * len(names),
                    donate_argnums=(0,))
  devices = jax.local_device_count()

  def run(state, batch, rng):
    shards = jax.tree_util.tree_map(
        lambda x: x.reshape((devices, -1) + x.shape[1:]), batch)
    return p_step(state, shards, rng, *values)

  return run


def device_mean(tree: Any, axis_name: str | None) -> Any:
  """The mean of every leaf over the devices of `axis_name` (None: as is)."""
  return jax.lax.pmean(tree, axis_name) if axis_name else tree


def device_share(rows: jax.Array, local: int,
                 axis_name: str | None) -> jax.Array:
  """This device's `local` rows of `rows`, drawn for the global batch.

  rows: (local * devices, ...), the same on every device (drawn from the
  step's rng); device i takes rows [i * local, (i + 1) * local), so D
  devices see what one device sees. Without `axis_name`, `rows` itself.
  """
  if axis_name is None:
    return rows
  return jax.lax.dynamic_slice_in_dim(
      rows, jax.lax.axis_index(axis_name) * local, local)


def global_rows(local: int, axis_name: str | None) -> int:
  """The global batch size of a step that sees `local` rows per device."""
  return local * (jax.lax.psum(1, axis_name) if axis_name else 1)


# Starting a run -----------------------------------------------------------


def check_batch(batch_size: int, images: Any = None,
                image_shape: tuple[int, ...] | None = None) -> None:
  """InputError for a batch the devices cannot share or unusable images.

  Args:
    batch_size: the global batch; it must split evenly over every device of
      every process.
    images: (N, H, W, C) training images, or None (a trainer without data).
    image_shape: the (H, W, C) the model takes.
  """
  devices = jax.local_device_count() * jax.process_count()
  if batch_size % devices:
    raise InputError(
        f'batch_size={batch_size} is not divisible by {devices} devices;'
        ' choose a multiple of the device count.')
  if images is None:
    return
  if tuple(images.shape[1:]) != tuple(image_shape):
    raise InputError(f'training images have shape {images.shape[1:]},'
                     f' the model needs {tuple(image_shape)}; fix'
                     ' --resolution.')
  if len(images) < batch_size:
    raise InputError(f'{len(images)} training images are fewer than one'
                     f' batch of {batch_size}; lower --batch_size.')


def start_run(workdir: str, trainer: str, record: dict[str, dict[str, Any]],
              settings: Settings, template: Any,
              fresh: Callable[[Any], tuple[Any, dict[str, Any]]] | None = None,
              defaults: dict[str, dict[str, Any]] | None = None
              ) -> tuple[Any, dict[str, Any], Any]:
  """Resumes the run in `workdir`, or starts it; records its settings.

  Args:
    workdir: the run directory.
    trainer: the trainer's name (`run_state.write_run`).
    record: {section: settings} of the run; on resume every setting but the
      bookkeeping ones must be the same.
    settings: the trainer's config (batch_size, keep_checkpoints).
    template: the initial state (step 0), the structure of the checkpoints.
    fresh: template -> (state, metadata) of a run without a checkpoint
      (e.g. weights of an exported model); default (template, {}).
    defaults: the record's settings at their defaults, for a record written
      before a setting existed (`run_state.check_run`).

  Returns:
    (the unreplicated state to continue from, the restored checkpoint's
    metadata, the run's `run_state.training_manager`). The run record is
    written only once every check passed.
  """
  check_batch(settings.batch_size)
  run_state.check_run(workdir, trainer, record, defaults)
  manager = run_state.training_manager(workdir, settings.keep_checkpoints,
                                       cleanup=True)
  restored = run_state.restore_train_state(manager, template)
  if restored is not None:
    state, meta, _ = restored
    logging.info('Resumed from step %d.', int(state.step))
  else:
    state, meta = fresh(template) if fresh else (template, {})
  run_state.write_run(workdir, trainer, record)
  return state, meta, manager


def machine() -> str:
  """The machine training runs on, for the metadata of checkpoints."""
  return (f'{os.cpu_count()}-CPU {platform.machine()}, '
          f'{jax.devices()[0].device_kind}, jax {jax.__version__}')


# The loop -----------------------------------------------------------------


@run_state.quiet_save_errors()
def train_loop(state: Any, step_fn: Callable[[Any, int], tuple[Any, Any]],
               manager, workdir: str, settings: Settings, *,
               stop_after: int | None,
               postfix: Callable[[dict[str, float]], dict[str, str]],
               meta: dict[str, Any] | None = None, desc: str = 'train',
               show_progress: bool = True,
               sample: Callable[[Any], np.ndarray] | None = None,
               extra_meta: dict[str, Any] | None = None
               ) -> tuple[Any, dict[str, Any]]:
  """The loop of every trainer: steps state.step+1 .. end, with exact resume.

  Runs `step_fn` on the replicated state with a tqdm bar; every
  `settings.log_every` steps appends {'step', 'steps_per_second',
  'wall_seconds', **metrics} to workdir/metrics.jsonl (process 0; lines past
  state.step, logged by a killed run, are dropped first); every
  `settings.sample_every` steps saves `sample`'s grid as
  workdir/samples/step_<step>.png (process 0); every
  `settings.checkpoint_every` steps saves an orbax checkpoint to `manager`;
  all three also at `end` (num_steps, or stop_after steps of this call).
  Then closes `manager`. A checkpoint that cannot be written (a full disk)
  stops the loop with `run_state.save_train_state`'s InputError.

  Args:
    state: the unreplicated state to continue from (`start_run`).
    step_fn: (replicated state, step) -> (replicated state, replicated
      metrics); everything random in it must be a function of the step.
    manager: the run's `run_state.training_manager`.
    workdir: the run directory.
    settings: the trainer's config (num_steps, log_every, checkpoint_every,
      and sample_every with `sample`).
    stop_after: if set, return after this many steps of this call.
    postfix: logged metrics -> the progress bar's {name: text}.
    meta: the restored checkpoint's metadata ('wall_seconds' adds up over
      invocations; 'metrics' is returned if no step runs).
    desc: the progress bar's label.
    show_progress: tqdm progress bar.
    sample: replicated state -> an image grid in [-1, 1] (HWC).
    extra_meta: saved in every checkpoint's metadata and returned.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics, **extra_meta}).
  """
  meta, extra_meta = meta or {}, extra_meta or {}
  wall_before = float(meta.get('wall_seconds', 0.0))
  start = int(state.step)
  end = settings.num_steps if stop_after is None else min(
      settings.num_steps, start + stop_after)
  write = jax.process_index() == 0  # Process 0 writes the logs.
  metrics_path = os.path.join(workdir, METRICS_FILE)
  if write:
    run_state.trim_metrics_log(metrics_path, start)
  state = flax.jax_utils.replicate(state)
  from tqdm import auto as tqdm
  progress = tqdm.tqdm(total=settings.num_steps, initial=start,
                       disable=not show_progress, desc=desc, unit='step',
                       dynamic_ncols=True)
  t0 = time.time()
  wall = lambda: wall_before + time.time() - t0
  window_t, window_steps = time.time(), 0
  last = meta.get('metrics', {})
  try:
    for step in range(start, end):
      state, metrics = step_fn(state, step)
      window_steps += 1
      done = step + 1
      if done % settings.log_every == 0 or done == end:
        last = {k: float(v)
                for k, v in distributed.unreplicate(metrics).items()}
        rate = window_steps / max(time.time() - window_t, 1e-9)
        window_t, window_steps = time.time(), 0
        if write:
          with run_state.writing(manager, metrics_path), open(
              metrics_path, 'a') as f:
            f.write(json.dumps({'step': done, 'steps_per_second': rate,
                                'wall_seconds': round(wall(), 1),
                                **last}) + '\n')
        progress.set_postfix(**postfix(last), sps=f'{rate:.2f}')
      if sample is not None and (done % settings.sample_every == 0
                                 or done == end):
        grid = sample(state)
        path = os.path.join(workdir, SAMPLES_DIR, f'step_{done:07d}.png')
        if write:
          with run_state.writing(manager, path):
            image_io.save_png(path, grid)
      if done % settings.checkpoint_every == 0 or done == end:
        run_state.save_train_state(
            manager, done, distributed.unreplicate(state),
            {'wall_seconds': wall(), 'metrics': last, **extra_meta})
      progress.update(1)
  finally:
    progress.close()  # before an error line, not on the bar's line
  run_state.finish_saves(manager)
  manager.close()
  return distributed.unreplicate(state), {'wall_seconds': wall(),
                                          'metrics': last, **extra_meta}

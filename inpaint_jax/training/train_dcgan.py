"""DCGAN training (Radford et al.; Sec. 3.4 of the paper), pmap-ed over devices.

* `create_state` builds the initial TrainState (both networks and optimisers).
* `train_step(state, batch, rng) -> (state, metrics)` is pure; given an
  `axis_name` it averages gradients and batch-norm statistics over that axis,
  so a pmap over D devices computes the same step as one device on the global
  batch.
* `parallel_step` is the one place that wraps a training step in `jax.pmap`
  (`make_parallel_step` for this one).
* `train_and_evaluate` trains: data, progress, metrics, sample grids and
  orbax checkpoints with exact resume (everything random is a function of the
  seed and the step, so a resumed run continues bit-for-bit).
* `train_loop` is that loop, shared by every trainer of the project (the
  classifier, the encoder and the Context Encoder too).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from inpaint_jax import checkpoints
from inpaint_jax.training import run_state
from inpaint_jax import distributed
from inpaint_jax.data import images as image_io
from inpaint_jax.data import input_pipeline
from inpaint_jax.config import ModelConfig, TrainConfig
from inpaint_jax.errors import InputError, MissingInputError
from inpaint_jax.models import Discriminator, Generator, init_variables, sample_z

AXIS = 'devices'


@flax.struct.dataclass
class TrainState:
  """Everything training needs to continue exactly (a pytree)."""
  step: jax.Array
  g_params: Any
  g_stats: Any
  d_params: Any
  d_stats: Any
  g_opt_state: Any
  d_opt_state: Any


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """Adam(lr, beta1) as in Radford et al."""
  return optax.adam(config.learning_rate, b1=config.beta1)


def create_state(model_config: ModelConfig, train_config: TrainConfig,
                 key: jax.Array) -> TrainState:
  """Initial TrainState for the given configs (step 0)."""
  g_vars, d_vars = init_variables(model_config, key)
  tx = optimizer(train_config)
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_vars['params'], g_stats=g_vars['batch_stats'],
      d_params=d_vars['params'], d_stats=d_vars['batch_stats'],
      g_opt_state=tx.init(g_vars['params']),
      d_opt_state=tx.init(d_vars['params']))


def _bce_real(logits):  # -log sigmoid(l)
  return jnp.mean(jax.nn.softplus(-logits))


def _bce_fake(logits):  # -log(1 - sigmoid(l))
  return jnp.mean(jax.nn.softplus(logits))


def _discriminator_loss(d_params, d_stats, discriminator, real, fake):
  """D's loss (real -> 1, G(z) -> 0) and (new batch stats, both logits).

  Two passes, real then generated, each with its own batch statistics. (One
  vmap-ed pass over both batches, combining the running statistics after,
  computes the same and was tried: the width-64 step took 1.6 s instead of
  1.0 s on the 2-core CPU.)
  """
  real_logits, upd = discriminator.apply(
      {'params': d_params, 'batch_stats': d_stats}, real, train=True,
      mutable=['batch_stats'])
  fake_logits, upd = discriminator.apply(
      {'params': d_params, 'batch_stats': upd['batch_stats']}, fake,
      train=True, mutable=['batch_stats'])
  loss = _bce_real(real_logits) + _bce_fake(fake_logits)
  return loss, (upd['batch_stats'], real_logits, fake_logits)


def train_step(state: TrainState, batch: jax.Array, rng: jax.Array, *,
               model_config: ModelConfig, train_config: TrainConfig,
               axis_name: str | None = None,
               impl: str = 'auto') -> tuple[TrainState, dict[str, jax.Array]]:
  """One D update then one G update (non-saturating G loss).

  Args:
    state: the TrainState.
    batch: (B, H, W, C) real images in [-1, 1] (this device's share).
    rng: key for this step, the same on every device: z is drawn for the
      global batch and each device takes its slice, so the step does not
      depend on the number of devices.
    model_config, train_config: static settings.
    axis_name: pmap axis to average gradients and batch statistics over.
    impl: layer implementation (one of layers.IMPLS).

  Returns:
    (new state, metrics dict of scalars: d_loss, g_loss, d_real, d_fake).
  """
  generator = Generator(model_config, impl=impl, axis_name=axis_name)
  discriminator = Discriminator(model_config, impl=impl, axis_name=axis_name)
  tx = optimizer(train_config)
  z = _device_latents(rng, batch.shape[0], model_config.z_dim, axis_name)
  mean = (lambda x: jax.lax.pmean(x, axis_name)) if axis_name else (lambda x: x)

  # G runs forward once; its VJP is kept for the G update after D's step.
  def g_forward(g_params):
    generated, upd = generator.apply(
        {'params': g_params, 'batch_stats': state.g_stats}, z, train=True,
        mutable=['batch_stats'])
    return generated, upd['batch_stats']

  fake, g_vjp, g_stats = jax.vjp(g_forward, state.g_params, has_aux=True)

  (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
      _discriminator_loss, has_aux=True)(state.d_params, state.d_stats,
                                         discriminator, batch, fake)
  d_grads = mean(d_grads)
  d_updates, d_opt_state = tx.update(d_grads, state.d_opt_state,
                                     state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  # Generator: make the updated D call G(z) real (non-saturating loss). D's
  # batch statistics from this pass are discarded: D is not trained here.
  def g_loss_fn(generated):
    logits, _ = discriminator.apply(
        {'params': d_params, 'batch_stats': d_stats}, generated, train=True,
        mutable=['batch_stats'])
    return _bce_real(logits)

  g_loss, d_loss_d_fake = jax.value_and_grad(g_loss_fn)(fake)
  (g_grads,) = g_vjp(d_loss_d_fake)
  g_grads = mean(g_grads)
  g_updates, g_opt_state = tx.update(g_grads, state.g_opt_state,
                                     state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)

  metrics = mean({
      'd_loss': d_loss, 'g_loss': g_loss,
      'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
      'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits))})
  new_state = TrainState(step=state.step + 1, g_params=g_params,
                         g_stats=g_stats, d_params=d_params, d_stats=d_stats,
                         g_opt_state=g_opt_state, d_opt_state=d_opt_state)
  return new_state, metrics


def _device_latents(rng: jax.Array, local: int, z_dim: int,
                    axis_name: str | None) -> jax.Array:
  """This device's (local, z_dim) slice of the global batch's latents."""
  if axis_name is None:
    return sample_z(rng, local, z_dim)
  devices = jax.lax.psum(1, axis_name)
  z_all = sample_z(rng, local * devices, z_dim)
  return jax.lax.dynamic_slice_in_dim(
      z_all, jax.lax.axis_index(axis_name) * local, local)


def parallel_step(step_fn, **settings):
  """pmap of step_fn(state, batch, rng, **settings, axis_name=AXIS) over all
  local devices: the one parallel wrapper of every pure training step
  (`train_step` here, `context_encoder_train.train_step`).

  Returns f(replicated_state, batch (D, B/D, ...), rng) ->
  (replicated_state, replicated metrics); rng is broadcast to every device
  and the state's buffers are donated.
  """
  step = functools.partial(step_fn, axis_name=AXIS, **settings)
  return jax.pmap(step, axis_name=AXIS, in_axes=(0, 0, None),
                  donate_argnums=(0,))


def make_parallel_step(model_config: ModelConfig, train_config: TrainConfig,
                       impl: str = 'auto'):
  """pmap-ed train_step over all local devices (`parallel_step`).

  Returns f(replicated_state, batch (D, B/D, H, W, C), rng) ->
  (replicated_state, replicated metrics); rng is broadcast to every device.
  """
  return parallel_step(train_step, model_config=model_config,
                       train_config=train_config, impl=impl)


def generator_variables(state: TrainState) -> dict[str, Any]:
  """G's {'params', 'batch_stats'} from an (unreplicated) state."""
  return {'params': state.g_params, 'batch_stats': state.g_stats}


def discriminator_variables(state: TrainState) -> dict[str, Any]:
  """D's {'params', 'batch_stats'} from an (unreplicated) state."""
  return {'params': state.d_params, 'batch_stats': state.d_stats}


def train_and_evaluate(model_config: ModelConfig, train_config: TrainConfig,
                       train_images: np.ndarray, workdir: str,
                       stop_after: int | None = None,
                       data_description: str = '',
                       show_progress: bool = True,
                       init_model_dir: str | None = None) -> TrainState:
  """Trains (or resumes) a DCGAN in `workdir` and returns the final state.

  Args:
    model_config, train_config: the settings; saved in workdir and checked on
      resume.
    train_images: (N, H, W, C) uint8 training images (this process's copy of
      the training set; each process reads its own share of each batch).
    workdir: directory for checkpoints/, metrics.jsonl, samples/ and
      train_config.json.
    stop_after: if set, return after this many steps of this call (for tests
      and preemption drills); the run can be resumed later.
    data_description: recorded in the metadata of the exported model.
    show_progress: show a tqdm progress bar.
    init_model_dir: an exported model directory (same ModelConfig) whose G and
      D weights start a new run (fine-tuning / continued training; Adam state
      starts fresh). Ignored when the run resumes from its own checkpoint.
  """
  devices = jax.local_device_count()
  processes = jax.process_count()
  global_batch = train_config.batch_size
  _check_inputs(model_config, global_batch, devices * processes,
                train_images)
  run_state.check_run_configs(workdir, model_config, train_config)
  base_key = jax.random.PRNGKey(train_config.seed)
  init_key, z_key, sample_key = jax.random.split(base_key, 3)
  state = create_state(model_config, train_config, init_key)
  manager = run_state.training_manager(workdir, train_config.keep_checkpoints)
  state, meta = _starting_state(state, manager, model_config, init_model_dir)
  initialised_from = meta.get('initialised_from')
  # Only now, with every setting and input accepted, does the run exist.
  run_state.write_run_configs(workdir, model_config, train_config)
  p_step = make_parallel_step(model_config, train_config)
  fixed_z = sample_z(sample_key, 64, model_config.z_dim)
  generator = Generator(model_config)
  sample_fn = jax.jit(lambda v, z: generator.apply(v, z, train=False))

  def step_fn(state, step):
    batch = input_pipeline.train_batch(
        train_images, global_batch, train_config.seed, step,
        flip=train_config.flip, process_index=jax.process_index(),
        process_count=processes)
    batch = batch.reshape((devices, -1) + batch.shape[1:])
    return p_step(state, batch, jax.random.fold_in(z_key, step))

  def sample(state, done):
    samples = sample_fn(generator_variables(distributed.unreplicate(state)),
                        fixed_z)
    if jax.process_index() == 0:
      image_io.save_png(
          os.path.join(workdir, 'samples', f'step_{done:07d}.png'),
          image_io.image_grid(np.asarray(samples), 8))

  state, _ = train_loop(
      state, step_fn, manager, workdir, meta=meta,
      num_steps=train_config.num_steps, stop_after=stop_after,
      log_every=train_config.log_every,
      checkpoint_every=train_config.checkpoint_every,
      sample_every=train_config.sample_every, sample=sample,
      postfix=lambda m: {'d': f"{m['d_loss']:.3f}", 'g': f"{m['g_loss']:.3f}"},
      log_rate=True, show_progress=show_progress,
      extra_meta={'data': data_description, 'machine': _machine(),
                  **({'initialised_from': initialised_from}
                     if initialised_from else {})})
  return state


def train_loop(state: Any, step_fn: Callable[[Any, int], tuple[Any, Any]],
               manager, workdir: str, *, num_steps: int,
               stop_after: int | None, log_every: int, checkpoint_every: int,
               postfix: Callable[[dict[str, float]], dict[str, str]],
               meta: dict[str, Any] | None = None, desc: str = 'train',
               show_progress: bool = True, log_rate: bool = False,
               log_wall: bool = False, sample_every: int | None = None,
               sample: Callable[[Any, int], None] | None = None,
               extra_meta: dict[str, Any] | None = None
               ) -> tuple[Any, dict[str, Any]]:
  """The loop of every trainer: steps state.step+1 .. end, with exact resume.

  Runs `step_fn` on the replicated state with a tqdm bar, appends a line to
  workdir/metrics.jsonl every `log_every` steps (process 0; lines past
  state.step, logged by a killed run, are dropped first), samples and saves
  orbax checkpoints to `manager` on their cadences and always at `end`, then
  closes `manager`.

  Args:
    state: the unreplicated state to continue from (restored or fresh).
    step_fn: (replicated state, step) -> (replicated state, replicated
      metrics); everything random in it must be a function of the step.
    manager: the run's `run_state.training_manager`.
    workdir: the run directory (metrics.jsonl).
    num_steps: the run's total steps.
    stop_after: if set, return after this many steps of this call.
    log_every: steps between metrics.jsonl lines.
    checkpoint_every: steps between checkpoints.
    postfix: logged metrics -> the progress bar's {name: text}.
    meta: the restored checkpoint's metadata ('wall_seconds' adds up over
      invocations; 'metrics' is returned if no step runs).
    desc: the progress bar's label.
    show_progress: tqdm progress bar.
    log_rate: metrics lines (and the bar, as 'sps') carry steps_per_second.
    log_wall: metrics lines carry wall_seconds (of all invocations).
    sample_every, sample: sample(replicated state, step) after every
      `sample_every` steps and at `end`.
    extra_meta: saved in every checkpoint's metadata and returned.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics, **extra_meta}).
  """
  meta, extra_meta = meta or {}, extra_meta or {}
  wall_before = float(meta.get('wall_seconds', 0.0))
  start = int(state.step)
  end = num_steps if stop_after is None else min(num_steps,
                                                 start + stop_after)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  if jax.process_index() == 0:
    run_state.trim_metrics_log(metrics_path, start)
  state = flax.jax_utils.replicate(state)
  from tqdm import auto as tqdm
  progress = tqdm.tqdm(total=num_steps, initial=start,
                       disable=not show_progress, desc=desc, unit='step',
                       dynamic_ncols=True)
  t0 = time.time()
  wall = lambda: wall_before + time.time() - t0
  window_t, window_steps = time.time(), 0
  last = meta.get('metrics', {})
  for step in range(start, end):
    state, metrics = step_fn(state, step)
    window_steps += 1
    done = step + 1
    if done % log_every == 0 or done == end:
      last = {k: float(v) for k, v in distributed.unreplicate(metrics).items()}
      record, shown = {'step': done}, postfix(last)
      if log_rate:
        rate = window_steps / max(time.time() - window_t, 1e-9)
        window_t, window_steps = time.time(), 0
        record['steps_per_second'], shown['sps'] = rate, f'{rate:.2f}'
      if log_wall:
        record['wall_seconds'] = round(wall(), 1)
      if jax.process_index() == 0:
        with open(metrics_path, 'a') as f:
          f.write(json.dumps({**record, **last}) + '\n')
      progress.set_postfix(**shown)
    if sample is not None and (done % sample_every == 0 or done == end):
      sample(state, done)
    if done % checkpoint_every == 0 or done == end:
      run_state.save_train_state(
          manager, done, distributed.unreplicate(state),
          {'wall_seconds': wall(), 'metrics': last, **extra_meta})
    progress.update(1)
  progress.close()
  manager.wait_until_finished()
  manager.close()
  return distributed.unreplicate(state), {'wall_seconds': wall(),
                                          'metrics': last, **extra_meta}


def _check_inputs(model_config: ModelConfig, global_batch: int,
                  devices: int, train_images) -> None:
  """InputError for a batch the devices cannot share or unusable images."""
  if global_batch % devices:
    raise InputError(
        f'batch_size={global_batch} is not divisible by {devices} devices;'
        ' choose a multiple of the device count.')
  expected = (model_config.resolution, model_config.resolution,
              model_config.channels)
  if train_images.shape[1:] != expected:
    raise InputError(f'training images have shape {train_images.shape[1:]},'
                     f' the model needs {expected}.')
  if len(train_images) < global_batch:
    raise InputError(f'{len(train_images)} training images are fewer than'
                     f' one batch of {global_batch}; lower --batch_size.')


def _starting_state(state: TrainState, manager, model_config: ModelConfig,
                    init_model_dir: str | None
                    ) -> tuple[TrainState, dict[str, Any]]:
  """The run's latest intact checkpoint, else `init_model_dir`'s weights,
  else `state`; with the metadata carried on (wall time, lineage)."""
  restored = run_state.restore_train_state(manager, state)
  if restored is not None:
    state, meta, _ = restored
    logging.info('Resumed from step %d.', int(state.step))
    return state, meta
  if not init_model_dir:
    return state, {}
  _, g_vars, d_vars = checkpoints.restore_model(init_model_dir, model_config)
  _, source = checkpoints.load_model_config(init_model_dir)
  lineage = {'model': os.path.abspath(init_model_dir),
             'steps': source.get('steps'),
             'wall_seconds': source.get('wall_seconds')}
  logging.info('Initialised from the weights in %s.', init_model_dir)
  return state.replace(g_params=g_vars['params'],
                       g_stats=g_vars['batch_stats'],
                       d_params=d_vars['params'],
                       d_stats=d_vars['batch_stats']), {
                           'initialised_from': lineage}


def _machine() -> str:
  import platform
  return (f'{os.cpu_count()}-CPU {platform.machine()}, '
          f'{jax.devices()[0].device_kind}, jax {jax.__version__}')


def restore_run(workdir: str, step: int | None = None
                ) -> tuple[ModelConfig, TrainState, dict[str, Any], int]:
  """(model config, train state, checkpoint metadata, step) of a run.

  The latest checkpoint of `workdir` (or the one at `step`), on the host.
  """
  model_config, train_config = run_state.run_configs(workdir)
  template = create_state(model_config, train_config, jax.random.PRNGKey(0))
  manager = run_state.training_manager(workdir, async_save=False)
  try:
    restored = run_state.restore_train_state(manager, template, step)
  finally:
    manager.close()
  if restored is None:
    raise MissingInputError(f'No training checkpoint under {workdir}.')
  state, meta, step = restored
  settings = {k: v for k, v in dataclasses.asdict(train_config).items()
              if k != 'num_steps'}  # not recorded: the run may be extended.
  return model_config, state, {'train': settings, **meta}, step


def export_model(workdir: str, output_dir: str,
                 weights_dtype: str = 'float32',
                 extra_metadata: dict[str, Any] | None = None,
                 step: int | None = None) -> str:
  """Writes a training checkpoint of `workdir` as a model directory.

  The latest checkpoint, or the one at `step`; returns the directory's path.
  """
  model_config, state, meta, step = restore_run(workdir, step)
  metadata = {'steps': step, 'machine': _machine(),
              'weights_dtype': weights_dtype, **meta, **(extra_metadata or {})}
  return checkpoints.save_model(output_dir, model_config,
                                generator_variables(state),
                                discriminator_variables(state), metadata,
                                weights_dtype)

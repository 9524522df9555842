"""DCGAN training (Radford et al.; Sec. 3.4 of the paper), pmap-ed over devices.

What is specific to the DCGAN; the loop, the pmap wrapper, the run record and
the checkpoints are `loop`'s, the export `export`'s.

* `create_state` builds the initial TrainState (both networks and optimisers,
  and G's moving average when `TrainConfig.ema_decay` > 0).
* `train_step(state, batch, rng) -> (state, metrics)` is pure; given an
  `axis_name` it averages gradients and batch-norm statistics over that axis,
  so a pmap over D devices (`loop.parallel_step`) computes the same step as
  one device on the global batch. With `TrainConfig.augment`, D sees every
  image through DiffAugment (`augment`).
* `train` trains (or resumes) a run: every process reads its share of each
  batch (`input_pipeline.train_batch`), sample grids come from a fixed z.
* `restore_run` reads a run's checkpoint back (for the validation curve and
  the export).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from inpaint_jax import checkpoints
from inpaint_jax import distributed
from inpaint_jax.config import ModelConfig, TrainConfig
from inpaint_jax.data import images as image_io
from inpaint_jax.data import input_pipeline
from inpaint_jax.errors import InputError
from inpaint_jax.models import (Discriminator, Generator, init_variables,
                                sample_z)
from inpaint_jax.training import augment as augment_lib
from inpaint_jax.training import loop
from inpaint_jax.training import run_state

TRAINER = 'dcgan'


@flax.struct.dataclass
class TrainState:
  """Everything training needs to continue exactly (a pytree).

  g_ema: G's moving average {'params', 'batch_stats'} (TrainConfig.ema_decay
  > 0), else None (the paper; the pytree of such a run is the one before the
  option existed, so its checkpoints still restore).
  """
  step: jax.Array
  g_params: Any
  g_stats: Any
  d_params: Any
  d_stats: Any
  g_opt_state: Any
  d_opt_state: Any
  g_ema: Any = None


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """Adam(lr, beta1) as in Radford et al."""
  return optax.adam(config.learning_rate, b1=config.beta1)


def create_state(model_config: ModelConfig, train_config: TrainConfig,
                 key: jax.Array) -> TrainState:
  """Initial TrainState for the given configs (step 0)."""
  g_vars, d_vars = init_variables(model_config, key)
  state = initial_pair_state(TrainState, optimizer(train_config), g_vars,
                             d_vars)
  return _with_fresh_average(state, keep=train_config.ema_decay > 0)


def _with_fresh_average(state: TrainState, keep: bool) -> TrainState:
  """`state` whose moving average of G starts at G's weights (None unless
  `keep`)."""
  if not keep:
    return state.replace(g_ema=None)
  return state.replace(g_ema=jax.tree_util.tree_map(
      jnp.array, {'params': state.g_params, 'batch_stats': state.g_stats}))


def initial_pair_state(cls: type, tx: optax.GradientTransformation,
                       first: dict[str, Any], second: dict[str, Any]) -> Any:
  """A step-0 state of two networks trained with `tx` (a GAN's).

  Args:
    cls: the state class; its fields, in order: step, the first network's
      params and batch stats, the second's, then the two optimizer states
      (`TrainState`, `train_context_encoder.ContextEncoderState`).
    tx: the optimizer of both networks.
    first, second: each network's {'params', 'batch_stats'} variables.
  """
  return cls(jnp.zeros((), jnp.int32),
             first['params'], first['batch_stats'],
             second['params'], second['batch_stats'],
             tx.init(first['params']), tx.init(second['params']))


def bce_real(logits):
  """Mean -log sigmoid(logits): the loss of D calling the inputs fake (the
  non-saturating G loss; D's loss on real images)."""
  return jnp.mean(jax.nn.softplus(-logits))


def _bce_fake(logits):  # -log(1 - sigmoid(l))
  return jnp.mean(jax.nn.softplus(logits))


def discriminator_loss(d_params, d_stats, discriminator, real, fake,
                       augment=lambda images, which: images):
  """D's loss (real -> 1, G(z) -> 0) and (new batch stats, both logits).

  Also the Context Encoder's adversary (fake: its inpainted images).
  `augment(images, which)` transforms what D sees ('real' or 'fake').

  Two passes, real then generated, each with its own batch statistics. (One
  vmap-ed pass over both batches, combining the running statistics after,
  computes the same and was tried: the width-64 step took 1.6 s instead of
  1.0 s on the 2-core CPU.)
  """
  real_logits, upd = discriminator.apply(
      {'params': d_params, 'batch_stats': d_stats}, augment(real, 'real'),
      train=True, mutable=['batch_stats'])
  fake_logits, upd = discriminator.apply(
      {'params': d_params, 'batch_stats': upd['batch_stats']},
      augment(fake, 'fake'), train=True, mutable=['batch_stats'])
  loss = bce_real(real_logits) + _bce_fake(fake_logits)
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
    With DiffAugment, D's outputs are those on the augmented images.
  """
  generator = Generator(model_config, impl=impl, axis_name=axis_name)
  discriminator = Discriminator(model_config, impl=impl, axis_name=axis_name)
  tx = optimizer(train_config)
  z = _device_latents(rng, batch.shape[0], model_config.z_dim, axis_name)
  mean = lambda tree: loop.device_mean(tree, axis_name)
  policy = train_config.augment_policy
  # Keys of the three augmented batches (D's real and fake, G's fake); z
  # keeps `rng` itself, so without augmentation the step is the paper's.
  augment_keys = {'real': jax.random.fold_in(rng, 1),
                  'fake': jax.random.fold_in(rng, 2),
                  'g_fake': jax.random.fold_in(rng, 3)}

  def augment(images, which):
    return augment_lib.diff_augment(images, augment_keys[which], policy,
                                    axis_name)

  # G runs forward once; its VJP is kept for the G update after D's step.
  def g_forward(g_params):
    generated, upd = generator.apply(
        {'params': g_params, 'batch_stats': state.g_stats}, z, train=True,
        mutable=['batch_stats'])
    return generated, upd['batch_stats']

  fake, g_vjp, g_stats = jax.vjp(g_forward, state.g_params, has_aux=True)

  (d_loss, (d_stats, real_logits, fake_logits)), d_grads = jax.value_and_grad(
      discriminator_loss, has_aux=True)(state.d_params, state.d_stats,
                                         discriminator, batch, fake, augment)
  d_grads = mean(d_grads)
  d_updates, d_opt_state = tx.update(d_grads, state.d_opt_state,
                                     state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  # Generator: make the updated D call G(z) real (non-saturating loss). D's
  # batch statistics from this pass are discarded: D is not trained here.
  def g_loss_fn(generated):
    logits, _ = discriminator.apply(
        {'params': d_params, 'batch_stats': d_stats},
        augment(generated, 'g_fake'), train=True, mutable=['batch_stats'])
    return bce_real(logits)

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
                         g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                         g_ema=_updated_average(state.g_ema, g_params,
                                                g_stats,
                                                train_config.ema_decay))
  return new_state, metrics


def _updated_average(g_ema: Any, g_params: Any, g_stats: Any,
                     decay: float) -> Any:
  """decay * g_ema + (1 - decay) * G's new weights (None stays None)."""
  if g_ema is None:
    return None
  return jax.tree_util.tree_map(
      lambda average, new: decay * average + (1 - decay) * new, g_ema,
      {'params': g_params, 'batch_stats': g_stats})


def _device_latents(rng: jax.Array, local: int, z_dim: int,
                    axis_name: str | None) -> jax.Array:
  """This device's (local, z_dim) slice of the global batch's latents."""
  z_all = sample_z(rng, loop.global_rows(local, axis_name), z_dim)
  return loop.device_share(z_all, local, axis_name)


def generator_variables(state: TrainState) -> dict[str, Any]:
  """G's {'params', 'batch_stats'} from an (unreplicated) state: its moving
  average when the run keeps one (for samples, validation and export)."""
  if state.g_ema is not None:
    return state.g_ema
  return {'params': state.g_params, 'batch_stats': state.g_stats}


def discriminator_variables(state: TrainState) -> dict[str, Any]:
  """D's {'params', 'batch_stats'} from an (unreplicated) state."""
  return {'params': state.d_params, 'batch_stats': state.d_stats}


def train(model_config: ModelConfig, train_config: TrainConfig,
          train_images: np.ndarray, workdir: str,
          stop_after: int | None = None, data_description: str = '',
          show_progress: bool = True,
          init_model_dir: str | None = None
          ) -> tuple[TrainState, dict[str, Any]]:
  """Trains (or resumes) a DCGAN in `workdir`.

  Args:
    model_config, train_config: the settings; recorded in workdir/run.json
      and checked on resume (all but the bookkeeping ones).
    train_images: (N, H, W, C) uint8 training images (this process's copy of
      the training set; each process reads its own share of each batch).
    workdir: directory for checkpoints/, metrics.jsonl, samples/ and run.json.
    stop_after: if set, return after this many steps of this call (for tests
      and preemption drills); the run can be resumed later.
    data_description: recorded in the metadata of the exported model.
    show_progress: show a tqdm progress bar.
    init_model_dir: an exported model directory (same ModelConfig) whose G and
      D weights start a new run (fine-tuning / continued training; Adam state
      starts fresh). Ignored when the run resumes from its own checkpoint.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics, 'data', 'machine'}).
  """
  loop.check_batch(train_config.batch_size, train_images,
                   (model_config.resolution, model_config.resolution,
                    model_config.channels))
  init_key, z_key, sample_key = jax.random.split(
      jax.random.PRNGKey(train_config.seed), 3)
  state, meta, manager = loop.start_run(
      workdir, TRAINER, _record(model_config, train_config), train_config,
      create_state(model_config, train_config, init_key),
      fresh=lambda template: _initial_weights(template, model_config,
                                              init_model_dir),
      defaults=_record(ModelConfig(), TrainConfig()))
  initialised_from = meta.get('initialised_from')
  p_step = loop.parallel_step(train_step, model_config=model_config,
                              train_config=train_config)
  fixed_z = sample_z(sample_key, 64, model_config.z_dim)
  generator = Generator(model_config)
  sample_fn = jax.jit(lambda v, z: generator.apply(v, z, train=False))

  def step_fn(state, step):
    batch = input_pipeline.train_batch(
        train_images, train_config.batch_size, train_config.seed, step,
        flip=train_config.flip, process_index=jax.process_index(),
        process_count=jax.process_count())
    return p_step(state, batch, jax.random.fold_in(z_key, step))

  def sample(state):
    samples = sample_fn(generator_variables(distributed.unreplicate(state)),
                        fixed_z)
    return image_io.image_grid(np.asarray(samples), 8)

  return loop.train_loop(
      state, step_fn, manager, workdir, train_config, meta=meta,
      stop_after=stop_after, sample=sample,
      postfix=lambda m: {'d': f"{m['d_loss']:.3f}", 'g': f"{m['g_loss']:.3f}"},
      show_progress=show_progress,
      extra_meta={'data': data_description, 'machine': loop.machine(),
                  **({'initialised_from': initialised_from}
                     if initialised_from else {})})


def _record(model_config: ModelConfig,
            train_config: TrainConfig) -> dict[str, dict[str, Any]]:
  """The run record's settings: {'model', 'train'}."""
  return {'model': model_config.to_dict(),
          'train': dataclasses.asdict(train_config)}


def _initial_weights(state: TrainState, model_config: ModelConfig,
                     init_model_dir: str | None
                     ) -> tuple[TrainState, dict[str, Any]]:
  """`state` with `init_model_dir`'s G and D weights and the metadata that
  records them (lineage), or `state` and {} without a directory."""
  if not init_model_dir:
    return state, {}
  _, g_vars, d_vars = checkpoints.restore_model(init_model_dir, model_config)
  _, source = checkpoints.load_model_config(init_model_dir)
  lineage = {'model': os.path.abspath(init_model_dir),
             'steps': source.get('steps'),
             'wall_seconds': source.get('wall_seconds')}
  logging.info('Initialised from the weights in %s.', init_model_dir)
  state = state.replace(g_params=g_vars['params'],
                        g_stats=g_vars['batch_stats'],
                        d_params=d_vars['params'],
                        d_stats=d_vars['batch_stats'])
  return (_with_fresh_average(state, keep=state.g_ema is not None),
          {'initialised_from': lineage})


def run_configs(workdir: str) -> tuple[ModelConfig, TrainConfig]:
  """The (ModelConfig, TrainConfig) of the DCGAN run in `workdir` (as its
  last invocation recorded them)."""
  record = run_state.read_run(workdir, TRAINER)
  try:
    return (ModelConfig.from_dict(record['model']),
            TrainConfig(**record['train']))
  except InputError:
    raise
  except (KeyError, TypeError, ValueError) as e:
    raise InputError(
        f'{os.path.join(workdir, run_state.RUN_FILE)} is damaged'
        f' ({e.__class__.__name__}: {e}); restore it, or train again in a new'
        ' --workdir.') from None


def restore_run(workdir: str, step: int | None = None
                ) -> tuple[ModelConfig, TrainState, dict[str, Any], int]:
  """(model config, train state, checkpoint metadata, step) of a run.

  The latest checkpoint of `workdir` (or the one at `step`), on the host.
  The metadata holds 'train': the TrainConfig's settings but num_steps (the
  run's target, not what the checkpoint saw).
  """
  model_config, train_config = run_configs(workdir)
  template = create_state(model_config, train_config, jax.random.PRNGKey(0))
  state, meta, step = run_state.restore_run_state(workdir, template, step)
  settings = {k: v for k, v in dataclasses.asdict(train_config).items()
              if k != 'num_steps'}
  return model_config, state, {'train': settings, **meta}, step

"""Training of the SVHN digit classifier (`classifier.Classifier`).

* `train_step(state, batch, labels, rng) -> (state, metrics)` is pure; given
  an `axis_name` it averages the gradients over that axis, so a pmap over D
  devices computes the same step as one device on the global batch.
* `make_parallel_step` is the one place that wraps it in `jax.pmap`.
* `train` is the loop (`train.train_loop`), with orbax checkpoints and exact
  resume (batches are a function of the seed and the step).
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from inpaint_jax.training import run_state
from inpaint_jax import masks as masks_lib
from inpaint_jax.training import train_dcgan as train_lib
from inpaint_jax.evaluation.semantic import (CONFIG_FILE, Classifier, ClassifierConfig,
                                    init_variables, to_float)
from inpaint_jax.errors import InputError

AXIS = 'devices'


@flax.struct.dataclass
class ClassifierState:
  """Everything training needs to continue exactly (a pytree)."""
  step: jax.Array
  params: Any
  opt_state: Any


def optimizer(config: ClassifierConfig) -> optax.GradientTransformation:
  return optax.adam(config.learning_rate)


def create_state(config: ClassifierConfig, key: jax.Array) -> ClassifierState:
  """Initial ClassifierState (step 0)."""
  params = init_variables(config, key)['params']
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params,
                         opt_state=optimizer(config).init(params))


def train_step(state: ClassifierState, batch: jax.Array, labels: jax.Array,
               rng: jax.Array, *, config: ClassifierConfig,
               axis_name: str | None = None
               ) -> tuple[ClassifierState, dict[str, jax.Array]]:
  """One Adam step on the mean cross-entropy.

  Args:
    state: the ClassifierState.
    batch: (B, R, R, 3) images in [-1, 1] (this device's share).
    labels: (B,) int digits 0..9.
    rng: key of this step's augmentation, the same on every device: it is
      drawn for the global batch and each device takes its rows, so the
      step does not depend on the number of devices.
    config: static settings.
    axis_name: pmap axis to average gradients and metrics over.

  Returns:
    (new state, {'loss', 'accuracy'} scalars of the (global) batch).
  """
  if config.augment:
    batch = augment(rng, batch, config.shift, axis_name)
  if config.mask:
    batch = hide_missing(jax.random.fold_in(rng, 1), batch, config.mask,
                         axis_name)
  model = Classifier(config)
  mean = (lambda x: jax.lax.pmean(x, axis_name)) if axis_name else (lambda x: x)

  def loss_fn(params):
    logits = model.apply({'params': params}, batch)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.mean(loss), logits

  (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  grads = mean(grads)
  updates, opt_state = optimizer(config).update(grads, state.opt_state,
                                                state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = mean({'loss': loss,
                  'accuracy': jnp.mean(jnp.argmax(logits, -1) == labels)})
  return ClassifierState(step=state.step + 1, params=params,
                         opt_state=opt_state), metrics


def augment(rng: jax.Array, batch: jax.Array, shift: int,
            axis_name: str | None = None) -> jax.Array:
  """Random shifts (edge-padded), contrast and polarity of (B, H, W, C).

  Drawn for the global batch from `rng`; with `axis_name` this device's
  rows are taken, so D devices augment as one device does.
  """
  local, h, w, c = batch.shape
  devices = jax.lax.psum(1, axis_name) if axis_name else 1
  k_shift, k_scale, k_flip = jax.random.split(rng, 3)
  total = local * devices
  shifts = jax.random.randint(k_shift, (total, 2), 0, 2 * shift + 1)
  scales = jax.random.uniform(k_scale, (total,), minval=0.7, maxval=1.3)
  flips = jax.random.bernoulli(k_flip, 0.5, (total,))
  if axis_name:
    start = jax.lax.axis_index(axis_name) * local
    shifts, scales, flips = (
        jax.lax.dynamic_slice_in_dim(x, start, local)
        for x in (shifts, scales, flips))
  padded = jnp.pad(batch, ((0, 0), (shift, shift), (shift, shift), (0, 0)),
                   mode='edge')
  moved = jax.vmap(lambda image, s: jax.lax.dynamic_slice(
      image, (s[0], s[1], 0), (h, w, c)))(padded, shifts)
  mean = jnp.mean(moved, axis=(1, 2, 3), keepdims=True)
  moved = (moved - mean) * scales[:, None, None, None] + mean
  moved = jnp.where(flips[:, None, None, None], -moved, moved)
  return jnp.clip(moved, -1.0, 1.0)


def hide_missing(rng: jax.Array, batch: jax.Array, kind: str,
                 axis_name: str | None = None) -> jax.Array:
  """(B, H, W, C) with the missing pixels of fresh `kind` masks at 0.

  Drawn for the global batch from `rng`, as `augment` draws.
  """
  local, size = batch.shape[0], batch.shape[1]
  devices = jax.lax.psum(1, axis_name) if axis_name else 1
  masks = masks_lib.make(kind, rng, local * devices, size)
  if axis_name:
    masks = jax.lax.dynamic_slice_in_dim(
        masks, jax.lax.axis_index(axis_name) * local, local)
  return batch * masks


def make_parallel_step(config: ClassifierConfig):
  """pmap-ed train_step over all local devices.

  Returns f(replicated_state, batch (D, B/D, R, R, 3), labels (D, B/D), rng)
  -> (replicated_state, replicated metrics); rng is broadcast.
  """
  step = functools.partial(train_step, config=config, axis_name=AXIS)
  return jax.pmap(step, axis_name=AXIS, in_axes=(0, 0, 0, None),
                  donate_argnums=(0,))


def batch_rows(n: int, batch_size: int, seed: int, step: int) -> np.ndarray:
  """Rows of the training batch of `step`: a fresh permutation per epoch.

  The same order as input_pipeline.train_batch (a pure function of the seed
  and the step; the remainder of an epoch is dropped).
  """
  if not 1 <= batch_size <= n:
    raise InputError(f'batch_size={batch_size} must lie in [1, {n}] (the'
                     ' number of training images); use a smaller batch.')
  epoch, position = divmod(step, n // batch_size)
  order = np.random.default_rng([seed, epoch, 0]).permutation(n)
  return order[position * batch_size:(position + 1) * batch_size]


def train(config: ClassifierConfig, images: np.ndarray, labels: np.ndarray,
          workdir: str, *, checkpoint_every: int = 250,
          stop_after: int | None = None, show_progress: bool = True
          ) -> tuple[ClassifierState, dict[str, Any]]:
  """Trains (or resumes) a classifier in `workdir`.

  Args:
    config: the settings; saved as workdir/classifier_config.json and checked
      on resume.
    images: (N, R, R, 3) uint8 (or float32 in [-1, 1]) training images.
    labels: (N,) int digits.
    workdir: directory for checkpoints/ and metrics.jsonl.
    checkpoint_every: steps between checkpoints.
    stop_after: if set, return after this many steps of this call.
    show_progress: tqdm progress bar.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last step's metrics}).
  """
  labels = np.asarray(labels, np.int32)
  if len(images) != len(labels):
    raise InputError(f'{len(images)} images but {len(labels)} labels.')
  devices = jax.local_device_count()
  if config.batch_size % devices:
    raise InputError(f'batch_size={config.batch_size} is not divisible by'
                     f' {devices} devices; choose a multiple of it.')
  run_state.check_run_record(
      workdir, CONFIG_FILE, 'a classifier run',
      lambda saved: run_state.changed_settings(saved, config.to_dict(),
                                                 ('num_steps',)))
  init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))
  manager = run_state.training_manager(workdir, keep=2)
  state, meta = run_state.resume_train_state(
      manager, create_state(config, init_key))
  run_state.write_run_record(workdir, CONFIG_FILE, config.to_dict())
  p_step = make_parallel_step(config)

  def step_fn(state, step):
    rows = batch_rows(len(images), config.batch_size, config.seed, step)
    batch = to_float(images[rows]).reshape((devices, -1) + images.shape[1:])
    return p_step(state, batch, labels[rows].reshape(devices, -1),
                  jax.random.fold_in(step_key, step))

  return train_lib.train_loop(
      state, step_fn, manager, workdir, meta=meta, num_steps=config.num_steps,
      stop_after=stop_after, log_every=50, checkpoint_every=checkpoint_every,
      postfix=lambda m: {'loss': f"{m['loss']:.3f}",
                         'acc': f"{m['accuracy']:.3f}"},
      desc='train classifier', show_progress=show_progress)

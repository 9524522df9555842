"""Training of the SVHN digit classifier (`classifier.Classifier`).

* `train_step(state, (images, labels), rng) -> (state, metrics)` is pure;
  given an `axis_name` it averages the gradients over that axis, so a pmap
  over D devices (`loop.parallel_step`) computes the same step as one device
  on the global batch.
* `train` trains (or resumes) a run with `loop.train_loop` (batches are a
  function of the seed and the step: `input_pipeline.train_batch`).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from inpaint_jax import masks as masks_lib
from inpaint_jax.data import input_pipeline
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation.semantic import (Classifier, ClassifierConfig,
                                             init_variables)
from inpaint_jax.training import loop

TRAINER = 'classifier'


@flax.struct.dataclass
class ClassifierState:
  """Everything training needs to continue exactly (a pytree)."""
  step: jax.Array
  params: Any
  opt_state: Any


def optimizer(config: ClassifierConfig) -> optax.GradientTransformation:
  """Adam(lr)."""
  return optax.adam(config.learning_rate)


def create_state(config: ClassifierConfig, key: jax.Array) -> ClassifierState:
  """Initial ClassifierState (step 0)."""
  params = init_variables(config, key)['params']
  return ClassifierState(step=jnp.zeros((), jnp.int32), params=params,
                         opt_state=optimizer(config).init(params))


def train_step(state: ClassifierState,
               batch: tuple[jax.Array, jax.Array], rng: jax.Array, *,
               config: ClassifierConfig, axis_name: str | None = None
               ) -> tuple[ClassifierState, dict[str, jax.Array]]:
  """One Adam step on the mean cross-entropy.

  Args:
    state: the ClassifierState.
    batch: (images (B, R, R, 3) in [-1, 1], labels (B,) int digits 0..9),
      this device's share.
    rng: key of this step's augmentation, the same on every device: it is
      drawn for the global batch and each device takes its rows, so the
      step does not depend on the number of devices.
    config: static settings.
    axis_name: pmap axis to average gradients and metrics over.

  Returns:
    (new state, {'loss', 'accuracy'} scalars of the (global) batch).
  """
  batch, labels = batch
  if config.augment:
    batch = augment(rng, batch, config.shift, axis_name)
  if config.mask:
    batch = hide_missing(jax.random.fold_in(rng, 1), batch, config.mask,
                         axis_name)
  model = Classifier(config)
  mean = lambda tree: loop.device_mean(tree, axis_name)

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
  k_shift, k_scale, k_flip = jax.random.split(rng, 3)
  total = loop.global_rows(local, axis_name)
  shifts, scales, flips = (loop.device_share(x, local, axis_name) for x in (
      jax.random.randint(k_shift, (total, 2), 0, 2 * shift + 1),
      jax.random.uniform(k_scale, (total,), minval=0.7, maxval=1.3),
      jax.random.bernoulli(k_flip, 0.5, (total,))))
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
  masks = masks_lib.make(kind, rng, loop.global_rows(local, axis_name), size)
  return batch * loop.device_share(masks, local, axis_name)


def train(config: ClassifierConfig, images: np.ndarray, labels: np.ndarray,
          workdir: str, *, stop_after: int | None = None,
          show_progress: bool = True
          ) -> tuple[ClassifierState, dict[str, Any]]:
  """Trains (or resumes) a classifier in `workdir`.

  Args:
    config: the settings (and bookkeeping); recorded in workdir/run.json and
      checked on resume (all but the bookkeeping must match).
    images: (N, R, R, 3) uint8 (or float32 in [-1, 1]) training images.
    labels: (N,) int digits.
    workdir: directory for checkpoints/, metrics.jsonl and run.json.
    stop_after: if set, return after this many steps of this call.
    show_progress: tqdm progress bar.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics}).
  """
  labels = np.asarray(labels, np.int32)
  if len(images) != len(labels):
    raise InputError(f'{len(images)} images but {len(labels)} labels.')
  loop.check_batch(config.batch_size, images,
                   (config.resolution, config.resolution, 3))
  init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))
  state, meta, manager = loop.start_run(
      workdir, TRAINER, {'classifier': config.to_dict()}, config,
      create_state(config, init_key))
  p_step = loop.parallel_step(train_step, config=config)

  def step_fn(state, step):
    batch = input_pipeline.train_batch(images, config.batch_size, config.seed,
                                       step, flip=False)
    rows = input_pipeline.batch_rows(len(images), config.batch_size,
                                     config.seed, step)
    return p_step(state, (batch, labels[rows]),
                  jax.random.fold_in(step_key, step))

  return loop.train_loop(
      state, step_fn, manager, workdir, config, meta=meta,
      stop_after=stop_after,
      postfix=lambda m: {'loss': f"{m['loss']:.3f}",
                         'acc': f"{m['accuracy']:.3f}"},
      desc='train classifier', show_progress=show_progress)

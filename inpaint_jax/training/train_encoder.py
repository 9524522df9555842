"""Training of the z encoder (`encoder.Encoder`) on a generator's own samples.

No data set is needed: every step draws z ~ U[-1, 1]^z_dim, x = G(z) (batch
norm in inference mode, G frozen) and one random mask per image (a kind from
config.mask_kinds drawn uniformly per image, then `masks.make`'s mask), and
takes an Adam step on the encoder's loss (EncoderConfig.loss): the latent
error (E(x * M, M) - z)^2, the L1 between G(E(x * M, M)) and x on the known
pixels, or both.

* `train_step(state, batch, rng) -> (state, metrics)` is pure; given an
  `axis_name` it averages gradients and batch statistics over that axis, so
  a pmap over D devices (`loop.parallel_step`, G's variables broadcast)
  computes the same step as one device on the global batch (up to float
  rounding).
* `train` trains (or resumes) a run with `loop.train_loop` (every batch is
  a function of the seed and the step).
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from inpaint_jax import masks as masks_lib
from inpaint_jax.config import ModelConfig
from inpaint_jax.encoder import Encoder, EncoderConfig, init_variables
from inpaint_jax.models import Generator, sample_z
from inpaint_jax.training import loop

TRAINER = 'encoder'


@flax.struct.dataclass
class EncoderState:
  """Everything training needs to continue exactly (a pytree)."""
  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any


def optimizer(config: EncoderConfig) -> optax.GradientTransformation:
  """Adam(lr)."""
  return optax.adam(config.learning_rate)


def create_state(model: ModelConfig, config: EncoderConfig,
                 key: jax.Array) -> EncoderState:
  """Initial EncoderState (step 0)."""
  variables = init_variables(model, config, key)
  return EncoderState(step=jnp.zeros((), jnp.int32),
                      params=variables['params'],
                      batch_stats=variables['batch_stats'],
                      opt_state=optimizer(config).init(variables['params']))


def draw_batch(rng: jax.Array, n: int, model: ModelConfig,
               kinds: tuple[str, ...]) -> tuple[jax.Array, jax.Array]:
  """(z (n, z_dim) uniform in [-1, 1], masks (n, R, R, 1), 1 = known).

  Each image's mask kind is drawn uniformly from `kinds`, then its mask from
  `masks.make` of that kind.
  """
  k_z, k_kind, k_mask = jax.random.split(rng, 3)
  z = sample_z(k_z, n, model.z_dim)
  size = model.resolution
  candidates = jnp.stack([
      masks_lib.make(kind, jax.random.fold_in(k_mask, i), n, size)
      for i, kind in enumerate(kinds)])  # (K, n, R, R, 1)
  choice = jax.random.randint(k_kind, (n,), 0, len(kinds))
  return z, candidates[choice, jnp.arange(n)]


def train_step(state: EncoderState, batch: jax.Array, rng: jax.Array, *,
               model: ModelConfig, config: EncoderConfig, g_vars: Any,
               axis_name: str | None = None
               ) -> tuple[EncoderState, dict[str, jax.Array]]:
  """One Adam step of the encoder.

  Args:
    state: the EncoderState.
    batch: (B, z_dim) latents in [-1, 1], this device's rows of the global
      batch (`draw_batch`).
    rng: key of this step's masks, the same on every device: the masks are
      drawn for the global batch and each device takes its rows.
    model: the generator's config (static).
    config: the encoder settings (static).
    g_vars: the generator's variables (frozen; batch norm in inference mode).
    axis_name: pmap axis to average gradients, statistics and metrics over.

  Returns:
    (new state, {'loss', 'latent_loss', 'pixel_loss'} of the global batch).
  """
  local = batch.shape[0]
  _, masks = draw_batch(rng, loop.global_rows(local, axis_name), model,
                        config.mask_kinds)
  masks = loop.device_share(masks, local, axis_name)
  z = batch
  generator = Generator(model)
  images = jax.lax.stop_gradient(generator.apply(g_vars, z, train=False))
  net = Encoder(model, config.width, axis_name=axis_name)
  mean = lambda tree: loop.device_mean(tree, axis_name)

  def loss_fn(params):
    predicted, updates = net.apply(
        {'params': params, 'batch_stats': state.batch_stats},
        images * masks, masks, train=True, mutable=['batch_stats'])
    latent = jnp.mean((predicted - z)**2)
    if config.loss == 'latent':
      pixel = jnp.zeros(())
    else:
      fake = generator.apply(g_vars, predicted, train=False)
      known = jnp.sum(masks, axis=(1, 2, 3)) * images.shape[-1]
      pixel = jnp.mean(jnp.sum(jnp.abs(fake - images) * masks, axis=(1, 2, 3))
                       / jnp.maximum(known, 1.0))
    total = {'latent': latent, 'pixel': pixel,
             'both': latent + config.pixel_weight * pixel}[config.loss]
    return total, (latent, pixel, updates['batch_stats'])

  (loss, (latent, pixel, batch_stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.params)
  grads = mean(grads)
  updates, opt_state = optimizer(config).update(grads, state.opt_state,
                                                state.params)
  params = optax.apply_updates(state.params, updates)
  metrics = mean({'loss': loss, 'latent_loss': latent, 'pixel_loss': pixel})
  return EncoderState(step=state.step + 1, params=params,
                      batch_stats=mean(batch_stats),
                      opt_state=opt_state), metrics


def step_keys(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(initial weights, latents, masks) keys of a run; step s uses
  fold_in(key, s) of the last two."""
  return tuple(jax.random.split(jax.random.PRNGKey(seed), 3))


def train(model: ModelConfig, config: EncoderConfig, g_vars: Any,
          workdir: str, *, generator: dict[str, Any] | None = None,
          stop_after: int | None = None, show_progress: bool = True
          ) -> tuple[EncoderState, dict[str, Any]]:
  """Trains (or resumes) an encoder in `workdir`.

  Args:
    model: the generator's ModelConfig.
    config: the settings (and bookkeeping); recorded in workdir/run.json
      with `model` and `generator` and checked on resume (all but the
      bookkeeping must match).
    g_vars: the generator's variables.
    workdir: directory for checkpoints/, metrics.jsonl and run.json.
    generator: `encoder.generator_record` of the generator (checked on
      resume).
    stop_after: if set, return after this many steps of this call.
    show_progress: tqdm progress bar.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics}).
  """
  init_key, z_key, mask_key = step_keys(config.seed)
  record = {'model': model.to_dict(), 'encoder': config.to_dict(),
            'generator': generator or {}}
  state, meta, manager = loop.start_run(
      workdir, TRAINER, record, config, create_state(model, config, init_key))
  p_step = loop.parallel_step(train_step, model=model, config=config,
                              broadcast={'g_vars': g_vars})
  latents = jax.jit(lambda key: sample_z(key, config.batch_size, model.z_dim))

  def step_fn(state, step):
    return p_step(state, latents(jax.random.fold_in(z_key, step)),
                  jax.random.fold_in(mask_key, step))

  return loop.train_loop(
      state, step_fn, manager, workdir, config, meta=meta,
      stop_after=stop_after, postfix=lambda m: {'loss': f"{m['loss']:.4f}"},
      desc='train encoder', show_progress=show_progress)

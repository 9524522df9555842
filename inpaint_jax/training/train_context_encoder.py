"""Training of the Context Encoder (`context_encoder.ContextEncoder`).

Pathak et al.'s joint loss: lambda_rec * the L2 reconstruction error (1 in
the hole, overlap_weight on a thin border of known context around it, see
`context_encoder.reconstruction_weights`) + lambda_adv * the adversarial loss
of the inpainted image (known pixels real, the prediction pasted into the
hole) under a DCGAN discriminator trained alongside it. Each training image
gets one random mask, its kind drawn uniformly from config.mask_kinds (all
four by default), so one model serves every mask of a data set.

* `train_step(state, batch, rng) -> (state, metrics)` is pure; given an
  `axis_name` it averages gradients and batch-norm statistics over that
  axis, and the masks are drawn for the global batch, so a pmap over D
  devices (`loop.parallel_step`) computes the same step as one device on
  the global batch.
* `train` trains (or resumes) a run with `loop.train_loop`: data
  (`input_pipeline.train_batch`), sample grids of fixed images and masks
  (everything random is a function of the seed and the step).
* `export` writes the model directory; `validation_scores` the card's PSNRs.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from inpaint_jax import distributed
from inpaint_jax import masks as masks_lib
from inpaint_jax import metrics as metrics_lib
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.data import images as image_io
from inpaint_jax.data import input_pipeline
from inpaint_jax.evaluation import evaluate
from inpaint_jax.models import Discriminator
from inpaint_jax.training import loop
from inpaint_jax.training import run_state
from inpaint_jax.training import train_dcgan

TRAINER = 'context_encoder'
SAMPLE_IMAGES = 8


@flax.struct.dataclass
class ContextEncoderState:
  """Everything training needs to continue exactly (a pytree)."""
  step: jax.Array
  params: Any
  batch_stats: Any
  d_params: Any
  d_stats: Any
  opt_state: Any
  d_opt_state: Any


def optimizer(config: ce.ContextEncoderConfig) -> optax.GradientTransformation:
  """Adam(lr, beta1), for both networks (Pathak et al.: 2e-4, 0.5)."""
  return optax.adam(config.learning_rate, b1=config.beta1)


def create_state(config: ce.ContextEncoderConfig,
                 key: jax.Array) -> ContextEncoderState:
  """Initial ContextEncoderState (step 0)."""
  ce_key, d_key = jax.random.split(key)
  variables = ce.init_variables(config, ce_key)
  side = config.resolution
  d_vars = jax.jit(Discriminator(ce.discriminator_config(config)).init,
                   static_argnames='train')(
                       d_key, jnp.zeros((1, side, side, config.channels)),
                       train=False)
  return train_dcgan.initial_pair_state(ContextEncoderState, optimizer(config),
                                        variables, d_vars)


def device_masks(rng: jax.Array, local: int, config: ce.ContextEncoderConfig,
                 axis_name: str | None) -> jax.Array:
  """This device's (local, R, R, 1) slice of the global batch's masks."""
  every = ce.draw_masks(rng, loop.global_rows(local, axis_name),
                        config.resolution, config.mask_kinds)
  return loop.device_share(every, local, axis_name)


def train_step(state: ContextEncoderState, batch: jax.Array, rng: jax.Array,
               *, config: ce.ContextEncoderConfig,
               axis_name: str | None = None, impl: str = 'auto'
               ) -> tuple[ContextEncoderState, dict[str, jax.Array]]:
  """One discriminator update, then one Context Encoder update.

  Args:
    state: the ContextEncoderState.
    batch: (B, R, R, C) real images in [-1, 1] (this device's share).
    rng: key of this step's masks, the same on every device: the masks are
      drawn for the global batch and each device takes its rows.
    config: static settings.
    axis_name: pmap axis to average gradients, batch statistics and metrics
      over.
    impl: stride-2 layer implementation (one of layers.IMPLS).

  Returns:
    (new state, scalars: loss (the CE's joint loss), rec_loss, adv_loss,
    d_loss, d_real, d_fake (D's mean probabilities), psnr_hole (dB, of the
    pasted images on the hole, batch mean)).
  """
  net = ce.ContextEncoder(config, impl=impl, axis_name=axis_name)
  discriminator = Discriminator(ce.discriminator_config(config), impl=impl,
                                axis_name=axis_name)
  tx = optimizer(config)
  mean = lambda tree: loop.device_mean(tree, axis_name)
  masks = device_masks(rng, batch.shape[0], config, axis_name)
  weights = ce.reconstruction_weights(masks, config.overlap,
                                      config.overlap_weight)

  # The CE runs forward once; its VJP is kept for its update after D's.
  def forward(params):
    predicted, upd = net.apply(
        {'params': params, 'batch_stats': state.batch_stats}, batch * masks,
        masks, train=True, mutable=['batch_stats'])
    return predicted, upd['batch_stats']

  predicted, ce_vjp, batch_stats = jax.vjp(forward, state.params,
                                           has_aux=True)
  inpainted = masks * batch + (1.0 - masks) * predicted

  # D: real images -> 1, inpainted ones -> 0 (the DCGAN's D loss).
  (d_loss, (d_stats, real_logits, fake_logits)), d_grads = (
      jax.value_and_grad(train_dcgan.discriminator_loss, has_aux=True)(
          state.d_params, state.d_stats, discriminator, batch, inpainted))
  d_updates, d_opt_state = tx.update(mean(d_grads), state.d_opt_state,
                                     state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)

  # CE: reconstruction + make the updated D call the inpainted image real.
  def loss_fn(predicted):
    rec = ce.reconstruction_loss(predicted, batch, weights)
    logits, _ = discriminator.apply(
        {'params': d_params, 'batch_stats': d_stats},
        masks * batch + (1.0 - masks) * predicted, train=True,
        mutable=['batch_stats'])
    adv = train_dcgan.bce_real(logits)
    return config.lambda_rec * rec + config.lambda_adv * adv, (rec, adv)

  (loss, (rec, adv)), d_predicted = jax.value_and_grad(
      loss_fn, has_aux=True)(predicted)
  (grads,) = ce_vjp(d_predicted)
  updates, opt_state = tx.update(mean(grads), state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)

  hole_psnr = metrics_lib.psnr_in(inpainted, batch, 1.0 - masks)
  metrics = mean({
      'loss': loss, 'rec_loss': rec, 'adv_loss': adv, 'd_loss': d_loss,
      'd_real': jnp.mean(jax.nn.sigmoid(real_logits)),
      'd_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
      'psnr_hole': jnp.mean(hole_psnr)})
  return ContextEncoderState(
      step=state.step + 1, params=params, batch_stats=batch_stats,
      d_params=d_params, d_stats=d_stats, opt_state=opt_state,
      d_opt_state=d_opt_state), metrics


def network_variables(state: ContextEncoderState) -> dict[str, Any]:
  """The CE's {'params', 'batch_stats'} from an (unreplicated) state."""
  return {'params': state.params, 'batch_stats': state.batch_stats}


def sample_masks(config: ce.ContextEncoderConfig) -> np.ndarray:
  """The fixed (8, R, R, 1) masks of the sample grids: two per kind."""
  key = jax.random.PRNGKey(config.seed)
  return np.concatenate([
      np.asarray(masks_lib.make(kind, jax.random.fold_in(key, i), 2,
                                config.resolution))
      for i, kind in enumerate(masks_lib.KINDS)])


def train(config: ce.ContextEncoderConfig, train_images, workdir: str, *,
          stop_after: int | None = None, data_description: str = '',
          show_progress: bool = True
          ) -> tuple[ContextEncoderState, dict[str, Any]]:
  """Trains (or resumes) a Context Encoder in `workdir`.

  Args:
    config: the settings (and bookkeeping); recorded in workdir/run.json and
      checked on resume (all but the bookkeeping must match).
    train_images: (N, R, R, C) uint8 training images (or float32 in [-1, 1],
      or input_pipeline.TfdsImages): train minus the validation slice.
    workdir: directory for checkpoints/, metrics.jsonl, samples/ and
      run.json.
    stop_after: if set, return after this many steps of this call.
    data_description: recorded in the checkpoints' metadata.
    show_progress: tqdm progress bar.

  Returns:
    (the final unreplicated state, {'wall_seconds': training time of all
    invocations, 'metrics': the last logged metrics, 'data', 'machine'}).
  """
  loop.check_batch(config.batch_size, train_images,
                   (config.resolution, config.resolution, config.channels))
  init_key, step_key = jax.random.split(jax.random.PRNGKey(config.seed))
  state, meta, manager = loop.start_run(
      workdir, TRAINER, {TRAINER: config.to_dict()}, config,
      create_state(config, init_key))
  p_step = loop.parallel_step(train_step, config=config)
  sample_images = np.asarray(
      train_images[np.arange(min(SAMPLE_IMAGES, len(train_images)))])
  sample_images = (image_io.from_uint8(sample_images)
                   if sample_images.dtype == np.uint8
                   else sample_images.astype(np.float32))
  fixed_masks = sample_masks(config)[:len(sample_images)]

  def step_fn(state, step):
    batch = input_pipeline.train_batch(train_images, config.batch_size,
                                       config.seed, step, flip=config.flip)
    return p_step(state, batch, jax.random.fold_in(step_key, step))

  def sample(state):
    variables = network_variables(distributed.unreplicate(state))
    predicted = ce.predict(config, variables, sample_images, fixed_masks)
    return sample_grid(sample_images, fixed_masks, predicted)

  return loop.train_loop(
      state, step_fn, manager, workdir, config, meta=meta,
      stop_after=stop_after, sample=sample,
      postfix=lambda m: {'rec': f"{m['rec_loss']:.4f}",
                         'd': f"{m['d_loss']:.3f}"},
      desc='train CE', show_progress=show_progress,
      extra_meta={'data': data_description, 'machine': loop.machine()})


def sample_grid(images: np.ndarray, masks: np.ndarray,
                predicted: np.ndarray) -> np.ndarray:
  """Rows of (masked input, CE output, pasted, original), in [-1, 1]."""
  return image_io.make_grid([
      image_io.masked_for_display(images, masks), predicted,
      np.asarray(ce.paste(predicted, images, masks)), images])


def restore_run(workdir: str) -> tuple[ce.ContextEncoderConfig,
                                       ContextEncoderState, dict, int]:
  """(config, state, checkpoint metadata, step) of a run's latest checkpoint
  (the config as the run's last invocation recorded it)."""
  config = ce.ContextEncoderConfig.from_dict(
      run_state.read_run(workdir, TRAINER)[TRAINER])
  state, meta, step = run_state.restore_run_state(
      workdir, create_state(config, jax.random.PRNGKey(0)))
  return config, state, meta, step


def validation_scores(config: ce.ContextEncoderConfig, variables: Any,
                      images: np.ndarray, seed: int = 0
                      ) -> dict[str, dict[str, float]]:
  """Per mask kind: mean PSNR (whole image and hole) and SSIM of the pasted
  CE output, and the mean-colour fill's PSNR, on `images`.

  images: (N, R, R, C) float32 in [-1, 1]; the masks are those of
  `reproduce.run_cell` (evaluate.make_masks from split(PRNGKey(seed))[0]).
  """
  from inpaint_jax import methods  # Only for the mean-fill reference.
  mask_key, _ = jax.random.split(jax.random.PRNGKey(seed))
  images = np.asarray(images, np.float32)
  scores = {}
  for kind in masks_lib.KINDS:
    masks = evaluate.make_masks(kind, None, len(images), images.shape[1],
                                mask_key)
    filled = np.asarray(ce.paste(ce.predict(config, variables, images, masks),
                                 images, masks))
    mean_fill = np.asarray(methods.mean_fill(images * masks, masks))
    scores[kind] = {
        'psnr': float(np.mean(metrics_lib.psnr(filled, images))),
        'psnr_hole': float(np.mean(metrics_lib.psnr_in(filled, images,
                                                       1.0 - masks))),
        'ssim': float(np.mean(metrics_lib.ssim(filled, images))),
        'mean_fill_psnr': float(np.mean(metrics_lib.psnr(mean_fill, images))),
    }
  return scores


def export(workdir: str, output_dir: str,
           extra_metadata: dict[str, Any] | None = None) -> str:
  """Writes the latest checkpoint of `workdir` as a model directory (the
  CE's variables only; the discriminator is for training)."""
  config, state, meta, step = restore_run(workdir)
  metadata = {'steps': step, **meta, **(extra_metadata or {})}
  return ce.save(output_dir, config, network_variables(state), metadata)

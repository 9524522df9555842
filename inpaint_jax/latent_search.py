"""The z-search of Sec. 3.3 on one batch: Eq. 2 minimised over z, jitted.

Structure (the design card): a per-image `lax.fori_loop` of optax Adam updates
with z clipped to [-1, 1] after every step (`adam_clip_step` on the loss of
`latent_loss`), `vmap`-ed over the batch and `jit`-compiled once per shape
(`search_latents`; `search_chunk` runs a given number of steps from a given
optimizer state, for early stopping and progress reports). G and D run with
batch norm in inference mode, so an image's result does not depend on the
other images in its batch. With K restarts per image the K latents are
searched in the same vmap and the one with the lowest final loss is kept.
Beyond the paper, the kept result may then be refined in the same vmap
(`refine`: a search on an intermediate activation, fine-tuning G).

What users call, with input checks, initial latents, device placement, early
stopping and progress reports, is `inpaint.search` / `search_progressive`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from inpaint_jax import losses
from inpaint_jax import refine
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Discriminator, Generator


def latent_loss(z: jax.Array, g_vars: Any, d_vars: Any, image: jax.Array,
                weights: jax.Array, *, generator: Generator,
                discriminator: Discriminator, lam: float
                ) -> tuple[losses.InpaintingLoss, jax.Array]:
  """Eq. 2 as a function of latents: G(z), D(G(z)), context + prior loss.

  Args:
    z: (K, z_dim) latents in [-1, 1].
    g_vars, d_vars: G and D variables (batch norm in inference mode).
    image: the corrupted image y, (H, W, C) (shared by the K latents) or
      (K, H, W, C), in [-1, 1].
    weights: importance weights W (Eq. 3), (H, W, 1) or (K, H, W, 1).
    generator, discriminator: the modules.
    lam: prior loss weight lambda.

  Returns:
    (losses.InpaintingLoss with (K,) terms, G(z) (K, H, W, C) in [-1, 1]).
  """
  generated = generator.apply(g_vars, z, train=False)
  logits = discriminator.apply(d_vars, generated, train=False)
  loss = losses.inpainting_loss(
      generated, jnp.broadcast_to(image, generated.shape),
      jnp.broadcast_to(weights, generated.shape[:3] + (1,)), logits, lam)
  return loss, generated


def adam_clip_step(z: jax.Array, opt_state: Any, grads: jax.Array,
                   optimizer: optax.GradientTransformation
                   ) -> tuple[jax.Array, Any]:
  """One step of the search of Sec. 3.3: an Adam update, then clip to [-1, 1].

  z and grads: (K, z_dim); returns the new (z, optimizer state).
  """
  updates, opt_state = optimizer.update(grads, opt_state, z)
  return jnp.clip(optax.apply_updates(z, updates), -1.0, 1.0), opt_state


def search_optimizer(config: SearchConfig) -> optax.GradientTransformation:
  """Adam with the search's learning rate and betas (Sec. 3.3)."""
  return optax.adam(config.learning_rate, config.beta1, config.beta2)


def _search_step(g_vars, d_vars, image, weights, *, generator, discriminator,
                 config: SearchConfig):
  """The pieces of one image's search, shared by `search_latents` and
  `search_chunk`: (optimizer, objective z -> (InpaintingLoss, G(z)),
  step (i, (z, opt_state, curve)) -> (z, opt_state, curve))."""
  optimizer = search_optimizer(config)
  objective = functools.partial(latent_loss, g_vars=g_vars, d_vars=d_vars,
                                image=image, weights=weights,
                                generator=generator,
                                discriminator=discriminator, lam=config.lam)

  def summed_loss(z):
    per_restart = objective(z)[0].total
    return per_restart.sum(), per_restart

  grad_fn = jax.grad(summed_loss, has_aux=True)

  def step(i, carry):
    z, opt_state, curve = carry
    grads, per_restart = grad_fn(z)
    z, opt_state = adam_clip_step(z, opt_state, grads, optimizer)
    if curve is not None:
      curve = curve.at[:, i].set(per_restart)
    return z, opt_state, curve

  return optimizer, objective, step


def _best_restart(objective, z):
  """(index, SearchResult fields) of the restart with the lowest loss at z."""
  loss, generated = objective(z)
  best = jnp.argmin(loss.total)
  return best, dict(z=z[best], generated=generated[best],
                    loss=loss.total[best], context_loss=loss.context[best],
                    prior_loss=loss.prior[best])


def _per_image_search(g_vars, d_vars, image, weights, z0, *, generator,
                      discriminator, config: SearchConfig):
  """The fori_loop of `adam_clip_step` on the (restarts, z_dim) latents of
  one image (H, W, C); returns the fields of SearchResult for it."""
  optimizer, objective, step = _search_step(
      g_vars, d_vars, image, weights, generator=generator,
      discriminator=discriminator, config=config)
  (z, _, curve), frames = _run_search_loop(
      step, z0, optimizer.init(z0), config,
      lambda z: generator.apply(g_vars, z, train=False))
  best, out = _best_restart(objective, z)
  out.update(refine.refine(g_vars, d_vars, image, weights, out['z'],
                           generator=generator, discriminator=discriminator,
                           config=config))
  if curve is not None:
    out['loss_curve'] = curve[best]
    out['frames'] = frames[best]
  return out


def _run_search_loop(step, z0, opt_state, config: SearchConfig, generate):
  """Runs `step` for config.iterations; with record_every > 0 also keeps the
  loss curve and G(z) every record_every steps. Returns (carry, frames)."""
  if config.record_every <= 0:
    carry = jax.lax.fori_loop(0, config.iterations, step,
                              (z0, opt_state, None))
    return carry, None
  carry = (z0, opt_state,
           jnp.zeros((z0.shape[0], config.iterations), jnp.float32))
  every = config.record_every
  frame_list = [generate(z0)]
  for start in range(0, config.iterations, every):
    carry = jax.lax.fori_loop(start, min(start + every, config.iterations),
                              step, carry)
    frame_list.append(generate(carry[0]))
  return carry, jnp.stack(frame_list, axis=1)  # (restarts, F, H, W, C)


@functools.partial(jax.jit,
                   static_argnames=('generator', 'discriminator', 'config'))
def search_latents(g_vars, d_vars, images, masks, z0, *, generator: Generator,
                   discriminator: Discriminator,
                   config: SearchConfig) -> dict[str, jax.Array]:
  """The jitted, vmapped search from given initial latents, without checks.

  Args:
    g_vars, d_vars: G and D variables ({'params', 'batch_stats'}).
    images: (N, H, W, C) in [-1, 1].
    masks: (N, H, W, 1), 1 = known pixel.
    z0: (N, restarts, z_dim) initial latents in [-1, 1].
    generator, discriminator: the modules (static).
    config: search settings (static).

  Returns:
    A dict with the fields of SearchResult.
  """
  weights = losses.importance_weights(masks, config.window)
  per_image = functools.partial(_per_image_search, generator=generator,
                                discriminator=discriminator, config=config)
  return jax.vmap(per_image, in_axes=(None, None, 0, 0, 0))(
      g_vars, d_vars, images, weights, z0)


@functools.partial(jax.jit,
                   static_argnames=('generator', 'discriminator', 'config'))
def refine_batch(g_vars, d_vars, images, weights, z, *, generator: Generator,
                 discriminator: Discriminator,
                 config: SearchConfig) -> dict[str, jax.Array]:
  """`refine.refine` of every image's searched latent, jitted and vmapped
  (for a search run in chunks, `search_chunk`).

  Args:
    g_vars, d_vars: G and D variables.
    images: (N, H, W, C) in [-1, 1]; weights: (N, H, W, 1) their importance
      weights; z: (N, z_dim) each image's kept latent.
    generator, discriminator, config: as for `search_latents`.

  Returns:
    The SearchResult fields generated, loss, context_loss, prior_loss.
  """
  per_image = functools.partial(refine.refine, generator=generator,
                                discriminator=discriminator, config=config)
  return jax.vmap(per_image, in_axes=(None, None, 0, 0, 0))(
      g_vars, d_vars, images, weights, z)


@functools.partial(jax.jit, static_argnames=('generator', 'discriminator',
                                             'config', 'num_steps'))
def search_chunk(g_vars, d_vars, images, weights, z, opt_state, *,
                 generator: Generator, discriminator: Discriminator,
                 config: SearchConfig, num_steps: int):
  """`num_steps` more search steps from (z, opt_state), vmapped over images.

  The search of `search_latents` in pieces: the Adam state carries over, so
  chunks of n1, n2, ... steps end where one run of n1 + n2 + ... steps does.

  Args:
    g_vars, d_vars: G and D variables ({'params', 'batch_stats'}).
    images: (N, H, W, C) in [-1, 1].
    weights: (N, H, W, 1) importance weights (`losses.importance_weights`).
    z: (N, restarts, z_dim) latents in [-1, 1].
    opt_state: the (N,)-batched state of `search_optimizer(config)`.
    generator, discriminator: the modules (static).
    config: search settings (static; its iterations and recording unused).
    num_steps: steps to run (static).

  Returns:
    (z, opt_state, a dict with the SearchResult fields z, generated, loss,
    context_loss and prior_loss of each image's best restart).
  """

  def per_image(image, image_weights, image_z, image_opt_state):
    _, objective, step = _search_step(
        g_vars, d_vars, image, image_weights, generator=generator,
        discriminator=discriminator, config=config)
    image_z, image_opt_state, _ = jax.lax.fori_loop(
        0, num_steps, step, (image_z, image_opt_state, None))
    return image_z, image_opt_state, _best_restart(objective, image_z)[1]

  return jax.vmap(per_image)(images, weights, z, opt_state)

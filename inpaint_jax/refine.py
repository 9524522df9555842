"""Searches beyond the paper that continue from the z-search's result.

The paper's search has 100 numbers to fit the known pixels with; a weak
generator's best z still misses them. Two refinements of one image's result,
each optional (`SearchConfig.ilo_steps`, `finetune_steps`; 0 = the paper)
and run inside the same jitted `vmap` over the batch as the z-search
(`latent_search`), so that results stay per-image deterministic:

* Intermediate layer optimisation (Daras et al. 2021): Adam on the
  activation h of G's stage `ilo_layer` (`models.Generator`'s `stop`/`start`)
  instead of z, the layers above it fixed, h kept within an L1 ball around
  G's own activation h0 of the found z (`project_l1_ball` after every step),
  radius `ilo_radius` x ||h0||_1.
* Generator fine-tuning (Pan et al. 2020, Deep Generative Prior; Roich et
  al. 2021, pivotal tuning): Adam on a per-image copy of the weights of G's
  top `finetune_layers` stages above the searched input (z, or h after the
  intermediate search),
  the input fixed, with `finetune_weight` x ||theta - theta_0||^2 added to
  Eq. 2's loss so that G stays near the trained one. Under `vmap` each image
  carries its own copy of those weights and of their Adam state.

Both minimise Eq. 2's loss (context + lambda prior, `losses`) unchanged.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from inpaint_jax import losses
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Discriminator, Generator

# The refinements by name, as SearchConfig changes (the web page's choice
# and the `ours_*` rows of experiments.reproduce), with the settings chosen
# on the validation slices (docs/inversion.md).
PRESETS = {
    'ilo': dict(ilo_steps=300, ilo_layer=0, ilo_radius=0.2,
                ilo_learning_rate=0.01),
    'finetune': dict(finetune_steps=300, finetune_layers=1,
                     finetune_learning_rate=1e-4, finetune_weight=1.0),
}
PRESETS['ilo_finetune'] = {**PRESETS['ilo'], **PRESETS['finetune']}

# Adam's epsilon for G's weights. Adam's first steps move every weight by
# about the learning rate whatever its gradient's size, so weights whose
# gradient is at the level of rounding noise (it cancels over the image)
# would move by the full step in a direction set by that noise, and the
# result would depend on how the convolutions sum (one device or two). With
# this epsilon, such weights move in proportion to their tiny gradient.
FINETUNE_ADAM_EPS = 1e-3


def project_l1_ball(v: jax.Array, radius: jax.Array) -> jax.Array:
  """The Euclidean projection of `v` (any shape) onto {x: ||x||_1 <= radius}.

  Duchi et al. (2008): soft-thresholding by the theta at which the
  thresholded L1 norm equals the radius, found from the sorted magnitudes;
  `v` itself when it is inside the ball.
  """
  flat = v.reshape(-1)
  magnitude = jnp.abs(flat)
  descending = -jnp.sort(-magnitude)
  cumulative = jnp.cumsum(descending)
  count = jnp.arange(1, flat.size + 1, dtype=flat.dtype)
  above = descending - (cumulative - radius) / count > 0
  rho = jnp.max(jnp.where(above, jnp.arange(flat.size), 0))
  theta = (cumulative[rho] - radius) / (rho + 1)
  projected = jnp.sign(flat) * jnp.maximum(magnitude - theta, 0.0)
  inside = jnp.sum(magnitude) <= radius
  return jnp.where(inside, flat, projected).reshape(v.shape)


def _objective(g_vars, d_vars, image, weights, *, generator, discriminator,
               lam, start):
  """x -> (InpaintingLoss of one image, G(x)) for G from stage `start`."""

  def objective(x, variables=g_vars):
    generated = generator.apply(variables, x, train=False, start=start)
    logits = discriminator.apply(d_vars, generated, train=False)
    loss = losses.inpainting_loss(
        generated, image[None], weights[None], logits, lam)
    return loss, generated

  return objective


def _result(loss: losses.InpaintingLoss, generated: jax.Array
            ) -> dict[str, jax.Array]:
  """The SearchResult fields a refinement replaces (one image)."""
  return dict(generated=generated[0], loss=loss.total[0],
              context_loss=loss.context[0], prior_loss=loss.prior[0])


def intermediate_search(g_vars: Any, d_vars: Any, image: jax.Array,
                        weights: jax.Array, z: jax.Array, *,
                        generator: Generator, discriminator: Discriminator,
                        config: SearchConfig) -> tuple[jax.Array, int]:
  """The searched activation of one image and the stage G continues from.

  Args:
    g_vars, d_vars: G and D variables (batch norm in inference mode).
    image: the corrupted image y (H, W, C) in [-1, 1].
    weights: its importance weights (H, W, 1).
    z: (z_dim,) the z-search's latent.
    generator, discriminator: the modules.
    config: config.ilo_steps Adam steps of config.ilo_learning_rate on the
      activation of stage config.ilo_layer, within the ball of
      config.ilo_radius.

  Returns:
    (h, (1, ...) the activation of stage `ilo_layer` after the search; the
    stage index G starts from to continue it, ilo_layer + 1).
  """
  start = config.ilo_layer + 1
  h0 = generator.apply(g_vars, z[None], train=False, stop=start)
  radius = config.ilo_radius * jnp.sum(jnp.abs(h0))
  objective = _objective(g_vars, d_vars, image, weights, generator=generator,
                         discriminator=discriminator, lam=config.lam,
                         start=start)
  optimizer = optax.adam(config.ilo_learning_rate, config.beta1, config.beta2)
  grad_fn = jax.grad(lambda h: objective(h)[0].total.sum())

  def step(_, carry):
    h, opt_state = carry
    updates, opt_state = optimizer.update(grad_fn(h), opt_state, h)
    h = h0 + project_l1_ball(optax.apply_updates(h, updates) - h0, radius)
    return h, opt_state

  h, _ = jax.lax.fori_loop(0, config.ilo_steps, step,
                           (h0, optimizer.init(h0)))
  return h, start


def _split_parameters(params: dict[str, Any], start: int,
                      num_layers: int) -> tuple[dict, dict]:
  """(the parameters of G's stages >= start, the others); stage s holds
  Dense_0 and BatchNorm_0 (s = 0), Upsample_{s-1} and BatchNorm_s, or the
  output layer Upsample_{num_layers - 1} (s = num_layers)."""
  names = ['Dense_0'] + [f'Upsample_{i}' for i in range(num_layers)]
  norms = [f'BatchNorm_{i}' for i in range(num_layers)]
  below = set(names[:start]) | set(norms[:start])
  tuned = {k: v for k, v in params.items() if k not in below}
  fixed = {k: v for k, v in params.items() if k in below}
  return tuned, fixed


def finetune_generator(g_vars: Any, d_vars: Any, image: jax.Array,
                       weights: jax.Array, x: jax.Array, start: int, *,
                       generator: Generator, discriminator: Discriminator,
                       config: SearchConfig) -> dict[str, jax.Array]:
  """Fine-tunes G's top config.finetune_layers stages (those at or above
  stage `start`) on one image; its result.

  Args:
    g_vars, d_vars: G and D variables (batch norm in inference mode).
    image, weights: y (H, W, C) in [-1, 1] and its weights (H, W, 1).
    x: (1, ...) G's input from stage `start`: z (start 0) or an activation.
    start: the first stage of G that runs (and is tuned).
    generator, discriminator: the modules.
    config: config.finetune_steps Adam steps of
      config.finetune_learning_rate; config.finetune_weight on the squared
      distance to the trained weights.

  Returns:
    The SearchResult fields generated, loss, context_loss and prior_loss
    (Eq. 2's terms, without the distance term) of the tuned G.
  """
  num_layers = generator.config.num_layers
  first_tuned = max(start, num_layers + 1 - config.finetune_layers)
  shared, fixed = _split_parameters(g_vars['params'], first_tuned,
                                    num_layers)
  # The image's own copy of the weights, made from its input so that it is
  # per-image from the start: a copy derived from the shared weights alone
  # is one value for the whole batch, and the gradient a device took with
  # respect to it summed over that device's images (measured: 2 devices gave
  # other results than 1). `x * 0` is 0 for the finite inputs G takes.
  tuned0 = jax.tree_util.tree_map(lambda w: w + jnp.sum(x) * 0, shared)
  objective = _objective(g_vars, d_vars, image, weights, generator=generator,
                         discriminator=discriminator, lam=config.lam,
                         start=start)

  def variables(tuned):
    return {**g_vars, 'params': {**fixed, **tuned}}

  def total(tuned):
    distance = sum(jnp.sum((a - b) ** 2) for a, b in zip(
        jax.tree_util.tree_leaves(tuned), jax.tree_util.tree_leaves(shared)))
    return (objective(x, variables(tuned))[0].total.sum()
            + config.finetune_weight * distance)

  optimizer = optax.adam(config.finetune_learning_rate, config.beta1,
                         config.beta2, eps=FINETUNE_ADAM_EPS)
  grad_fn = jax.grad(total)

  def step(_, carry):
    tuned, opt_state = carry
    updates, opt_state = optimizer.update(grad_fn(tuned), opt_state, tuned)
    return optax.apply_updates(tuned, updates), opt_state

  tuned, _ = jax.lax.fori_loop(0, config.finetune_steps, step,
                               (tuned0, optimizer.init(tuned0)))
  return _result(*objective(x, variables(tuned)))


def refine(g_vars: Any, d_vars: Any, image: jax.Array, weights: jax.Array,
           z: jax.Array, *, generator: Generator,
           discriminator: Discriminator,
           config: SearchConfig) -> dict[str, jax.Array]:
  """The refinements `config` asks for, after one image's z-search.

  Args: as `intermediate_search`'s (z: the kept restart's (z_dim,) latent).

  Returns:
    The SearchResult fields generated, loss, context_loss, prior_loss of the
    refined result ({} when config.refines is False: the paper's result).
  """
  if not config.refines:
    return {}
  x, start = z[None], 0
  if config.ilo_steps:
    x, start = intermediate_search(g_vars, d_vars, image, weights, z,
                                   generator=generator,
                                   discriminator=discriminator, config=config)
  if config.finetune_steps:
    return finetune_generator(g_vars, d_vars, image, weights, x, start,
                              generator=generator,
                              discriminator=discriminator, config=config)
  objective = _objective(g_vars, d_vars, image, weights, generator=generator,
                         discriminator=discriminator, lam=config.lam,
                         start=start)
  return _result(*objective(x))

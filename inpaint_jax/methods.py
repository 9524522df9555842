"""Inpainting methods, as `evaluate.evaluate` runs them.

A `Method` fills the holes of a batch of masked images. `zsearch_method` is
the paper's (the z-search of Sec. 3.3, then Poisson blending, Eq. 6);
`mean_fill_method` the simplest baseline; `average_method` the pixel mean of
several methods' fills. Other baselines and ablations plug into the same
evaluation by returning a `Method`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import blending
from inpaint_jax import inpaint
from inpaint_jax import encoder as encoder_lib
from inpaint_jax.config import ModelConfig, SearchConfig
from inpaint_jax.models import Discriminator, Generator


def mean_fill(images: jax.Array, masks: jax.Array) -> jax.Array:
  """Baseline: missing pixels set to the mean colour of the known ones.

  images (N, H, W, C) in [-1, 1], masks (N, H, W, 1), 1 = known.
  """
  known = jnp.sum(masks, axis=(1, 2), keepdims=True)
  mean = jnp.sum(images * masks, axis=(1, 2), keepdims=True) / jnp.maximum(
      known, 1.0)
  return images * masks + mean * (1.0 - masks)


def pad_batch(x: np.ndarray, n: int) -> np.ndarray:
  """x (k, ...) with k <= n, padded to n rows by repeating its last row (how
  `evaluate` fills a short last batch)."""
  if len(x) == n:
    return x
  return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def _paste(generated: jax.Array, corrupted: jax.Array, masks: jax.Array,
           blend: bool) -> np.ndarray:
  """G(z) put into the hole: Poisson-blended (Eq. 6) or overlaid, clipped to
  [-1, 1]. Arrays as `blending.poisson_blend`'s."""
  combine = blending.poisson_blend if blend else blending.overlay
  return np.asarray(jnp.clip(combine(generated, corrupted, masks), -1, 1))


@dataclasses.dataclass(frozen=True)
class Method:
  """An inpainting method, as `evaluate` runs it.

  Attributes:
    name: short name, e.g. 'zsearch'.
    fill: fill(images, masks, index_offset) -> {name: array} for a batch:
      images (B, H, W, C) in [-1, 1], 0 at missing pixels; masks
      (B, H, W, 1), 1 = known; index_offset: the index of images[0] in the
      whole set (the last batch is padded to B with its last image). Returns
      'generated' (B, H, W, C), the method's own fill, 'inpainted'
      (B, H, W, C) in [-1, 1], the final result, each of `scores` (B,) and
      optionally 'frames' (B, F, H, W, C), 'loss_curve' (B, T) and 'z'
      (B, z_dim), the latents found (kept only in resume files).
    scores: names of per-image numbers `fill` returns (metrics.csv columns).
    settings: JSON-able; in the resume fingerprint and the summary.
    variables: pytree of arrays (e.g. weights) in the fingerprint, or None.
  """
  name: str
  fill: Callable[[np.ndarray, np.ndarray, int], dict[str, Any]]
  scores: tuple[str, ...] = ()
  settings: dict[str, Any] = dataclasses.field(default_factory=dict)
  variables: Any = None


def zsearch_method(config: ModelConfig, g_vars: Any, d_vars: Any,
                   search_config: SearchConfig = SearchConfig(), *,
                   blend: bool = True, compute_dtype: str = 'float32',
                   seed: int = 0, encoder: Any = None) -> Method:
  """The paper's method: z-search (Eq. 2), then Poisson blending (Eq. 6).

  Args:
    config, g_vars, d_vars: the DCGAN (e.g. checkpoints.restore_model).
    search_config: z-search settings (iterations, lam, learning rate, ...).
    blend: Poisson-blend G(z) into the hole; else plain overlay.
    compute_dtype: 'float32', or 'bfloat16' for G and D's convolutions.
    seed: initial latents come from split(PRNGKey(seed))[1] ([0]: masks).
    encoder: optional `encoder.LoadedEncoder` trained for this generator
      (else InputError): each image's first restart starts from the
      encoder's z (`encoder.initial_latents`; other restarts random), beyond
      the paper. None: random latents (the paper).

  Returns:
    A Method giving G(z) as 'generated', the latents 'z' (B, z_dim) of the
    kept restart, the final z-search 'loss', with
    early stopping (search_config.stop_tolerance > 0) the iterations each
    image ran, 'steps', and with search_config.record_every > 0, 'frames'
    and 'loss_curve'.
  """
  dtype = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}[compute_dtype]
  generator = Generator(config, dtype=dtype)
  discriminator = Discriminator(config, dtype=dtype)
  _, z_key = jax.random.split(jax.random.PRNGKey(seed))
  inpaint.check_search_config(search_config, config)
  if encoder is not None:
    encoder_lib.check_generator(encoder, config)

  def fill(corrupted, masks, index_offset):
    initial_z = None
    if encoder is not None:
      initial_z = encoder_lib.initial_latents(
          encoder, corrupted, masks, z_key, search_config.restarts,
          index_offset)
    result = inpaint.search(generator, discriminator, g_vars, d_vars,
                            corrupted, masks, z_key, search_config,
                            index_offset=index_offset, initial_z=initial_z)
    arrays = {'generated': np.asarray(result.generated),
              'inpainted': _paste(result.generated, corrupted, masks, blend),
              'loss': np.asarray(result.loss), 'z': np.asarray(result.z)}
    if result.frames is not None:
      arrays['frames'] = np.asarray(result.frames)
      arrays['loss_curve'] = np.asarray(result.loss_curve)
    if result.steps is not None:
      arrays['steps'] = np.asarray(result.steps)
    return arrays

  early_stop = search_config.stop_tolerance > 0
  settings = dict(model=config.to_dict(),
                  search=dataclasses.asdict(search_config), blend=blend,
                  seed=seed, compute_dtype=compute_dtype)
  variables = (g_vars, d_vars)
  if encoder is not None:
    settings['encoder'] = dict(encoder.config.to_dict(),
                               generator=encoder.generator)
    variables += (encoder.variables,)
  return Method(
      'zsearch', fill, scores=('loss',) + (('steps',) if early_stop else ()),
      settings=settings, variables=variables)


def fill_method(name: str, inpaint: Callable[[np.ndarray, np.ndarray], Any],
                settings: dict[str, Any] | None = None) -> Method:
  """A Method from a function that fills the holes directly.

  inpaint(images, masks) -> (B, H, W, C): images in [-1, 1] with 0 at missing
  pixels, masks (B, H, W, 1), 1 = known. Its output, clipped to [-1, 1], is
  both the 'generated' and the 'inpainted' image (no separate blending).
  """

  def fill(images, masks, index_offset):
    del index_offset
    filled = np.clip(np.asarray(inpaint(images, masks)), -1.0, 1.0)
    return {'generated': filled, 'inpainted': filled}

  return Method(name, fill, settings=dict(settings or {}))


def mean_fill_method() -> Method:
  """Baseline: the hole filled with the mean colour of the known pixels."""
  return fill_method('mean_fill', mean_fill)


def reuse_generated_method(method: Method, generated: np.ndarray,
                           scores: dict[str, np.ndarray]) -> Method:
  """`method` (a `zsearch_method`) with its G(z) already found: no search.

  generated: (N, H, W, C) in [-1, 1], G(z) of the whole evaluated set from
  a z-search identical to `method`'s but for the blending (same model,
  search settings, seed, images and masks); scores: each of method.scores,
  (N,). The fill only blends (or overlays, as `method` does) the saved G(z)
  into each batch, so 'ours' and 'ours without blending' share one search
  and differ only where the paper's Fig. 5 says they do. Name, settings and
  variables stay `method`'s: the result is the one `method` would give.
  """
  blend = method.settings.get('blend', True)

  def fill(images, masks, index_offset):
    rows = slice(index_offset, index_offset + len(images))
    g = pad_batch(np.asarray(generated[rows]), len(images))
    return {'generated': g, 'inpainted': _paste(g, images, masks, blend),
            **{k: pad_batch(np.asarray(scores[k][rows]), len(images))
               for k in method.scores}}

  return dataclasses.replace(method, fill=fill)


def average_method(name: str, members: Sequence[Method]) -> Method:
  """A Method whose 'generated' and 'inpainted' images are the pixel-wise
  means of those of `members` on the same batch.

  With the z-search from K seeds this is beyond the paper: an estimate of
  the posterior mean of the hole under the model. PSNR rewards that mean
  over any single plausible fill (a sample's expected squared error is the
  mean's plus the posterior variance), which is what the comparison of
  'ours' with 'ours_average' in `reproduce` measures.
  """
  if not members:
    raise ValueError('average_method needs at least one member method.')

  def fill(images, masks, index_offset):
    filled = [member.fill(images, masks, index_offset) for member in members]
    return {key: np.mean([np.asarray(f[key]) for f in filled], axis=0)
            for key in ('generated', 'inpainted')}

  # Members sharing a model (seeds of one z-search) fingerprint it once.
  variables = list({id(m.variables): m.variables for m in members}.values())
  return Method(name, fill,
                settings={'members': [m.settings for m in members]},
                variables=variables)

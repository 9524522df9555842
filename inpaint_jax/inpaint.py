"""Inpainting by the z-search of Sec. 3.3: find z minimising Eq. 2.

`search` is what users call: it checks the inputs, draws the initial latents,
splits the batch over devices and runs the jitted, vmapped search of
`latent_search` (the loss, the Adam + clip step and the loop). The initial z
of image i is drawn from `fold_in(key, index_offset + i)`, so it does not
depend on how a data set is cut into batches.

Beyond the paper: `restarts=K` searches K random initialisations per image in
the same vmap and keeps the one with the lowest final loss;
`config.stop_tolerance > 0` stops each image once its loss no longer falls;
`search_progressive` reports after every few steps (the web page).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import latent_search
from inpaint_jax import losses
from inpaint_jax import masks as masks_lib
from inpaint_jax.config import ModelConfig, SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.models import Discriminator, Generator, sample_z


@dataclasses.dataclass(frozen=True)
class SearchResult:
  """What the z-search returns, for a batch of N images.

  Attributes:
    z: (N, z_dim) the best latent per image, in [-1, 1].
    generated: (N, H, W, C) G(z) in [-1, 1].
    loss: (N,) final total loss (context + prior) of the kept restart.
    context_loss: (N,) final weighted L1 context loss (Eq. 4).
    prior_loss: (N,) final prior loss (Eq. 5).
    loss_curve: (N, iterations) total loss of the kept restart at every step
      (before the step's update), or None unless `record_every > 0`.
    frames: (N, F, H, W, C) G(z) every `record_every` steps (the first frame
      is the initial z), or None unless `record_every > 0`.
    steps: (N,) iterations each image ran, with early stopping
      (config.stop_tolerance > 0); else None (all ran config.iterations).
  """
  z: jax.Array
  generated: jax.Array
  loss: jax.Array
  context_loss: jax.Array
  prior_loss: jax.Array
  loss_curve: jax.Array | None = None
  frames: jax.Array | None = None
  steps: jax.Array | None = None


def initial_latents(key: jax.Array, n: int, restarts: int, z_dim: int,
                    index_offset: int = 0) -> jax.Array:
  """(n, restarts, z_dim) uniform in [-1, 1].

  Image i's latents are drawn from fold_in(key, index_offset + i).
  """
  indices = jnp.arange(n) + index_offset
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)
  return jax.vmap(lambda k: sample_z(k, restarts, z_dim))(keys)


def validate_inputs(images: Any, masks: Any, resolution: int,
                    channels: int) -> None:
  """Raises InputError with a one-line fix for inputs the search cannot use.

  images: (N, R, R, channels) in [-1, 1]; masks: (N, R, R, 1) in {0, 1},
  1 = known pixel, each with at least one known and one missing pixel.
  """
  images = np.asarray(images)
  masks = np.asarray(masks)
  expected = (resolution, resolution, channels)
  if images.ndim != 4 or images.shape[1:] != expected:
    raise InputError(
        f'images have shape {images.shape}; the model needs (N, {resolution},'
        f' {resolution}, {channels}): resize/crop them with'
        ' inpaint_jax.input_pipeline first.')
  if masks.shape != images.shape[:3] + (1,):
    raise InputError(
        f'masks have shape {masks.shape}; expected {images.shape[:3] + (1,)}'
        ' (N, H, W, 1), one mask per image, 1 = known pixel.')
  if not np.all(np.isfinite(images)):
    raise InputError('images contain NaN or inf values.')
  lo, hi = float(images.min()), float(images.max())
  if lo < -1.001 or hi > 1.001:
    raise InputError(
        f'image values lie in [{lo:g}, {hi:g}]; the model needs [-1, 1]:'
        ' use uint8 / 127.5 - 1.')
  masks_lib.check_masks(masks)


def check_search_config(config: SearchConfig,
                        model_config: ModelConfig) -> None:
  """InputError when `config` asks for what the model does not have (an
  intermediate layer beyond G's hidden stages)."""
  if config.ilo_steps and config.ilo_layer >= model_config.num_layers:
    raise InputError(
        f'SearchConfig.ilo_layer={config.ilo_layer}: this generator has'
        f' {model_config.num_layers} hidden stages (0: the 4x4 projection'
        f' ... {model_config.num_layers - 1}); fix --ilo_layer.')


def _batch_mesh(devices: Sequence[jax.Device]) -> jax.sharding.Mesh:
  """The one-axis ('batch') mesh of `devices`."""
  return jax.sharding.Mesh(np.asarray(devices), ('batch',))


def shard_batch(tree: Any, devices: Sequence[jax.Device] | None) -> Any:
  """Places arrays split along their first axis over `devices` (one mesh axis).

  With one device (or None) the tree is returned as is. The leading dimension
  of every leaf must be divisible by the number of devices.
  """
  if not devices or len(devices) == 1:
    return tree
  mesh = _batch_mesh(devices)
  sharding = jax.sharding.NamedSharding(mesh,
                                        jax.sharding.PartitionSpec('batch'))
  return jax.device_put(tree, sharding)


def replicate(tree: Any, devices: Sequence[jax.Device] | None) -> Any:
  """Places a copy of every array on each of `devices` (no-op for one)."""
  if not devices or len(devices) == 1:
    return tree
  mesh = _batch_mesh(devices)
  return jax.device_put(tree, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec()))


def default_devices(batch_size: int) -> list[jax.Device]:
  """All local devices if they divide the batch, else the first one."""
  devices = jax.local_devices()
  return devices if batch_size % len(devices) == 0 else devices[:1]


def search(generator: Generator, discriminator: Discriminator, g_vars: Any,
           d_vars: Any, images: Any, masks: Any, key: jax.Array,
           config: SearchConfig = SearchConfig(),
           index_offset: int = 0,
           devices: Sequence[jax.Device] | None = None,
           initial_z: Any = None) -> SearchResult:
  """Inpainting z-search (Eq. 2) for a batch of images.

  Args:
    generator, discriminator: the DCGAN modules.
    g_vars, d_vars: their variables ({'params', 'batch_stats'}).
    images: (N, H, W, C) in [-1, 1], the corrupted images y (values at
      missing pixels are ignored).
    masks: (N, H, W, 1) in {0, 1}, 1 = known pixel (the paper's M).
    key: PRNG key for the initial latents.
    config: SearchConfig (iterations, lam, learning rate, restarts, ...).
    index_offset: global index of images[0], so that each image's initial z
      is the same whichever batch it is in.
    devices: devices to split the batch over (jit with a NamedSharding; the
      per-image results are the same as on one device). Default: all local
      devices when they divide the batch size, else one.
    initial_z: optional (N, config.restarts, z_dim) latents in [-1, 1] to
      start from instead of the random ones (e.g. an encoder's prediction,
      `encoder.initial_latents`); `key` is then unused.

  Returns:
    SearchResult with z, G(z), final losses and, if config.record_every > 0,
    the loss curve and intermediate frames.
  """
  cfg = generator.config
  validate_inputs(images, masks, cfg.resolution, cfg.channels)
  check_search_config(config, cfg)
  z0 = _starting_latents(key, len(images), config.restarts, cfg.z_dim,
                         index_offset, initial_z)
  if devices is None:
    devices = default_devices(len(images))
  if len(images) % len(devices):
    raise InputError(f'{len(images)} images cannot be split evenly over'
                     f' {len(devices)} devices; pad the batch.')
  g_vars, d_vars = replicate((g_vars, d_vars), devices)
  if config.stop_tolerance > 0:
    return _search_with_early_stop(generator, discriminator, g_vars, d_vars,
                                   images, masks, z0, config, devices)
  batch = shard_batch((np.asarray(images, np.float32),
                       np.asarray(masks, np.float32), z0), devices)
  if config.refines and len(devices) > 1:
    run = _per_device_search(generator, discriminator, config,
                             tuple(devices))
    return SearchResult(**run(g_vars, d_vars, *batch))
  out = latent_search.search_latents(
      g_vars, d_vars, *batch, generator=generator,
      discriminator=discriminator, config=config)
  return SearchResult(**out)


@functools.lru_cache(maxsize=8)
def _per_device_search(generator: Generator, discriminator: Discriminator,
                       config: SearchConfig,
                       devices: tuple[jax.Device, ...]) -> Any:
  """`latent_search.search_latents` run by every device on its share of the
  batch (`jax.shard_map`), compiled once per settings and devices.

  For the refinements (`refine`) on several devices: left to the compiler's
  sharding of one program, the fine-tuned images of the second device came
  out other than on one device (measured, XLA:CPU, 2 devices); each device
  searching its own images gives the one-device result.
  """
  mesh = _batch_mesh(devices)
  spec = jax.sharding.PartitionSpec
  search = functools.partial(latent_search.search_latents,
                             generator=generator, discriminator=discriminator,
                             config=config)
  return jax.jit(jax.shard_map(
      search, mesh=mesh,
      in_specs=(spec(), spec(), spec('batch'), spec('batch'), spec('batch')),
      out_specs=spec('batch')))


def _starting_latents(key, n, restarts, z_dim, index_offset, initial_z):
  """initial_z, checked, or the random latents of `initial_latents`."""
  if initial_z is None:
    return initial_latents(key, n, restarts, z_dim, index_offset)
  return _check_initial_z(initial_z, (n, restarts, z_dim))


def _check_initial_z(initial_z: Any, shape: tuple[int, int, int]
                     ) -> jax.Array:
  """initial_z as float32 after checking its shape and range."""
  z = np.asarray(initial_z, np.float32)
  if z.shape != shape:
    raise InputError(f'initial_z has shape {z.shape}; expected {shape}'
                     ' (images, restarts, z_dim).')
  if not np.all(np.isfinite(z)) or np.abs(z).max() > 1.0:
    raise InputError('initial_z must be finite and in [-1, 1] (the latent'
                     ' box of the search); clip it first.')
  return jnp.asarray(z)


def _bucket_size(active: int, batch: int, num_devices: int) -> int:
  """The padded batch for `active` images: the next power of two (so few
  shapes compile), a multiple of the device count, at most `batch`."""
  size = max(1 << max(active - 1, 0).bit_length(), num_devices)
  size = -(-size // num_devices) * num_devices
  return min(size, batch)


def _search_with_early_stop(generator, discriminator, g_vars, d_vars, images,
                            masks, z0, config: SearchConfig, devices):
  """`search` with config.stop_tolerance > 0: every config.check_every
  steps, images whose loss fell by less than that fraction since the last
  check keep their current result and leave the batch; the rest go on, in a
  batch padded to a power of two (`_bucket_size`)."""
  images = np.asarray(images, np.float32)
  weights = np.asarray(losses.importance_weights(
      jnp.asarray(masks, jnp.float32), config.window))
  optimizer = latent_search.search_optimizer(config)
  z = np.array(z0)
  opt_state = jax.tree.map(np.asarray, jax.vmap(optimizer.init)(z0))
  n = len(images)
  active = np.arange(n)
  previous = np.full(n, np.inf)
  steps = np.zeros(n, np.int32)
  out = {}
  done = 0
  while active.size:
    num_steps = min(config.check_every, config.iterations - done)
    size = _bucket_size(active.size, n, len(devices))
    rows = np.concatenate([active, np.repeat(active[-1:], size - active.size)])
    batch = shard_batch(
        (images[rows], weights[rows], z[rows],
         jax.tree.map(lambda x: x[rows], opt_state)), devices)
    new_z, new_state, chunk = latent_search.search_chunk(
        g_vars, d_vars, *batch, generator=generator,
        discriminator=discriminator, config=config, num_steps=num_steps)
    done += num_steps
    keep = slice(0, active.size)
    z[active] = np.asarray(new_z)[keep]
    opt_state = jax.tree.map(
        lambda old, new: _set_rows(old, active, np.asarray(new)[keep]),
        opt_state, new_state)
    chunk = {k: np.asarray(v)[keep] for k, v in chunk.items()}
    if not out:
      out = {k: np.zeros((n,) + v.shape[1:], v.dtype) for k, v in chunk.items()}
    loss = chunk['loss']
    before = previous[active]  # inf at the first check: never converged.
    converged = np.isfinite(before) & (
        before - loss <= config.stop_tolerance * np.abs(before))
    finished = converged | (done >= config.iterations)
    for k, v in chunk.items():
      out[k][active[finished]] = v[finished]
    steps[active[finished]] = done
    previous[active] = loss
    active = active[~finished]
  return SearchResult(**{k: jnp.asarray(v) for k, v in out.items()},
                      steps=jnp.asarray(steps))


def _set_rows(array: np.ndarray, rows: np.ndarray,
              values: np.ndarray) -> np.ndarray:
  array = array.copy()
  array[rows] = values
  return array


@dataclasses.dataclass(frozen=True)
class SearchProgress:
  """Where `search_progressive` stands after `step` of `total` iterations.

  Attributes:
    step: iterations done so far.
    total: config.iterations.
    generated: (N, H, W, C) G(z) in [-1, 1] of each image's best restart now.
    loss: (N,) its total loss (context + prior) now.
    result: the SearchResult once step == total (as `search` returns it),
      else None.
  """
  step: int
  total: int
  generated: jax.Array
  loss: jax.Array
  result: SearchResult | None = None


def search_progressive(generator: Generator, discriminator: Discriminator,
                       g_vars: Any, d_vars: Any, images: Any, masks: Any,
                       key: jax.Array, config: SearchConfig = SearchConfig(),
                       every: int = 25, index_offset: int = 0,
                       initial_z: Any = None) -> Iterator[SearchProgress]:
  """The z-search of `search` in chunks of `every` steps, reporting each.

  The same Adam state carries over from chunk to chunk, so the final result
  is that of `search` (same initial latents, same steps) on one device,
  refinements (`refine`) included: they run after the last chunk, before
  the last report; recording (config.record_every) is not done here. Use it to show progress
  (a web page, a progress bar) or to stop early.

  Args:
    generator, discriminator, g_vars, d_vars, images, masks, key, config,
      index_offset, initial_z: as for `search` (images (N, H, W, C) in
      [-1, 1], masks (N, H, W, 1), 1 = known; initial_z (N, restarts, z_dim)
      in [-1, 1], e.g. an encoder's prediction, or None).
    every: iterations per chunk (>= 1).

  Yields:
    SearchProgress after every chunk; the last one (step == total) carries
    the SearchResult.
  """
  if every < 1:
    raise InputError(f'every={every} must be >= 1 (search steps per report).')
  cfg = generator.config
  validate_inputs(images, masks, cfg.resolution, cfg.channels)
  check_search_config(config, cfg)
  z = _starting_latents(key, len(images), config.restarts, cfg.z_dim,
                        index_offset, initial_z)
  masks = jnp.asarray(masks, jnp.float32)
  images = jnp.asarray(images, jnp.float32)
  weights = losses.importance_weights(masks, config.window)
  optimizer = latent_search.search_optimizer(config)
  opt_state = jax.vmap(optimizer.init)(z)
  done = 0
  while done < config.iterations:
    num_steps = min(every, config.iterations - done)
    z, opt_state, out = latent_search.search_chunk(
        g_vars, d_vars, images, weights, z, opt_state, generator=generator,
        discriminator=discriminator, config=config, num_steps=num_steps)
    done += num_steps
    if done == config.iterations and config.refines:
      out = {**out, **latent_search.refine_batch(
          g_vars, d_vars, images, weights, out['z'], generator=generator,
          discriminator=discriminator, config=config)}
    result = SearchResult(**out) if done == config.iterations else None
    yield SearchProgress(done, config.iterations, out['generated'],
                         out['loss'], result)

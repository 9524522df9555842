"""The measured workloads, without flags, shared by the benchmark scripts.

* `zsearch`: seconds per Adam step of `latent_search.search_latents`.
* `zsearch_flops`: XLA FLOPs of one loss + gradient step of the z-search.
* `train`: seconds per `train.train_step`, with its FLOPs.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import common
from inpaint_jax import inpaint
from inpaint_jax import latent_search
from inpaint_jax import masks
from inpaint_jax import models
from inpaint_jax.training import train_dcgan as train_lib
from inpaint_jax.config import ModelConfig, SearchConfig, TrainConfig


def zsearch_flops(generator: models.Generator,
                  discriminator: models.Discriminator, g_vars: Any,
                  d_vars: Any, n: int, config: ModelConfig) -> float | None:
  """XLA FLOPs of one loss + gradient evaluation for n latents.

  This is the body of the search loop (XLA's cost analysis counts a while
  loop's body once, so the search itself cannot be analysed); Adam adds about
  10 FLOPs per latent entry, which is negligible.
  """
  size = config.resolution

  def loss_grad(z, images, weights):
    def total(z):
      loss, _ = latent_search.latent_loss(z, g_vars, d_vars, images, weights,
                                          generator=generator,
                                          discriminator=discriminator,
                                          lam=SearchConfig.lam)
      return jnp.sum(loss.total)
    return jax.grad(total)(z)

  return common.xla_flops(loss_grad, jnp.zeros((n, config.z_dim)),
                          jnp.zeros((n, size, size, config.channels)),
                          jnp.zeros((n, size, size, 1)))


def zsearch(width: int, batch: int, restarts: int = 1, impl: str = 'auto',
            dtype: Any = jnp.float32, iterations: int = 10, repeats: int = 3,
            kernel: int = 5, flops: bool = True) -> dict[str, Any]:
  """Times `latent_search.search_latents` (centre masks, 64x64, random G and D).

  The batch is split over the local devices that divide it, as in
  `inpaint.search` (on a CPU: one device, unless
  XLA_FLAGS=--xla_force_host_platform_device_count=N).

  step_s = (t(2N) - t(N)) / N from two compiled searches of N and 2N
  iterations (median of `repeats` calls each), so compilation, the importance
  weights and the final G(z) drop out; compile_s is the AOT compile time of
  the N-iteration search.
  """
  config = ModelConfig(width=width, kernel=kernel)
  g_vars, d_vars = models.init_variables(config, jax.random.PRNGKey(0))
  generator = models.Generator(config, impl=impl, dtype=dtype)
  discriminator = models.Discriminator(config, impl=impl, dtype=dtype)
  size = config.resolution
  images = jax.random.uniform(jax.random.PRNGKey(1), (batch, size, size, 3),
                              minval=-1, maxval=1)
  m = masks.center(batch, size)
  z0 = inpaint.initial_latents(jax.random.PRNGKey(2), batch, restarts,
                               config.z_dim)
  # Split over the local devices that divide the batch, as `inpaint.search`
  # does (one device: unchanged; several host devices: XLA_FLAGS below).
  devices = inpaint.default_devices(batch)
  args = (*inpaint.replicate((g_vars, d_vars), devices),
          *inpaint.shard_batch((images * m, m, z0), devices))

  def timed(n):
    kwargs = dict(generator=generator, discriminator=discriminator,
                  config=SearchConfig(iterations=n, restarts=restarts))
    return common.time_compiled(latent_search.search_latents, args, repeats,
                                kwargs)

  compile_s, short, _ = timed(iterations)
  _, long, _ = timed(2 * iterations)
  step = max(long - short, 1e-9) / iterations
  step_flops = (zsearch_flops(generator, discriminator, g_vars, d_vars,
                              batch * restarts, config) if flops else None)
  return {
      'width': width, 'batch': batch, 'restarts': restarts, 'impl': impl,
      'dtype': jnp.dtype(dtype).name, 'devices': len(devices), 'step_s': step,
      'img_per_s_1500': batch / (1500 * step),
      'search_1500_s': 1500 * step,
      'compile_s': compile_s, 't_N_s': short, 't_2N_s': long,
      'N': iterations,
      'gflop_step': step_flops / 1e9 if step_flops else None,
      'gflops': step_flops / step / 1e9 if step_flops else None,
  }


def train(width: int, impl: str = 'auto', batch_size: int = 64,
          repeats: int = 5, kernel: int = 5) -> dict[str, Any]:
  """Times the compiled single-device `train.train_step` on random images.

  The same state is fed to every call (the step is a pure function); FLOPs
  come from XLA's cost analysis of the compiled step.
  """
  model_config = ModelConfig(width=width, kernel=kernel)
  train_config = TrainConfig(batch_size=batch_size)
  state = train_lib.create_state(model_config, train_config,
                                 jax.random.PRNGKey(0))
  size = model_config.resolution
  batch = jax.random.uniform(jax.random.PRNGKey(1),
                             (batch_size, size, size, model_config.channels),
                             minval=-1, maxval=1)
  rng = jax.random.PRNGKey(2)
  step = functools.partial(train_lib.train_step, model_config=model_config,
                           train_config=train_config, impl=impl)
  compile_s, seconds, compiled = common.time_compiled(
      step, (state, batch, rng), repeats)
  flops = common.cost_flops(compiled)
  return {
      'width': width, 'impl': impl, 'batch': batch_size, 'step_s': seconds,
      'images_per_s': batch_size / seconds, 'compile_s': compile_s,
      'gflop_step': flops / 1e9 if flops else None,
      'gflops': flops / seconds / 1e9 if flops else None}

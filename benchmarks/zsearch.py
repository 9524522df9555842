r"""z-search throughput: seconds per Adam step, images/s, FLOP/s, roofline.

  python -m benchmarks.zsearch            # the full grid
  python -m benchmarks.zsearch --quick    # a few minutes on a 2-core CPU

Per-step time is the difference between a run of 2N and one of N iterations,
divided by N, so compilation and fixed costs drop out; compile time is the
first call's extra time. Images/s for the paper's 1500 iterations is
batch / (1500 * step time) (extrapolated from the per-step time). FLOPs per
step come from XLA's cost analysis of one loss + gradient evaluation; the
roofline ratio divides the achieved FLOP/s by a float32 matmul timed in the
same run.
"""

import functools

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import inpaint, losses, masks, models
from inpaint_jax.config import ModelConfig, SearchConfig

_QUICK = flags.DEFINE_bool('quick', False, 'A small grid for CPUs.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path.')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Computation dtype of G and D.')
_WIDTHS = flags.DEFINE_list('widths', None, 'Override the widths.')
_BATCHES = flags.DEFINE_list('batch_sizes', None, 'Override the batch sizes.')
_IMPLS = flags.DEFINE_list('impls', None, 'Override the layer impls.')


def step_flops(generator, discriminator, g_vars, d_vars, batch, config):
  """XLA FLOPs of one loss-and-gradient evaluation for a batch."""
  def loss(z, images, weights):
    generated = generator.apply(g_vars, z)
    return jnp.sum(losses.context_loss(generated, images, weights) +
                   losses.prior_loss(discriminator.apply(d_vars, generated),
                                     0.003))
  z = jnp.zeros((batch, config.z_dim))
  images = jnp.zeros((batch, config.resolution, config.resolution, 3))
  weights = jnp.zeros((batch, config.resolution, config.resolution, 1))
  return common.xla_flops(jax.jit(jax.grad(loss)), z, images, weights)


def measure(width, batch, restarts, impl, dtype, iterations, repeats):
  config = ModelConfig(width=width, kernel=5)
  g_vars, d_vars = models.init_variables(config, jax.random.PRNGKey(0))
  generator = models.Generator(config, impl=impl, dtype=dtype)
  discriminator = models.Discriminator(config, impl=impl, dtype=dtype)
  images = jax.random.uniform(jax.random.PRNGKey(1), (batch, 64, 64, 3),
                              minval=-1, maxval=1)
  m = masks.center(batch, 64)
  z0 = inpaint.initial_latents(jax.random.PRNGKey(2), batch, restarts,
                               config.z_dim)

  def run(n):
    search_config = SearchConfig(iterations=n, restarts=restarts)
    return functools.partial(
        inpaint.search_latents, g_vars, d_vars, images * m, m, z0,
        generator=generator, discriminator=discriminator, config=search_config)

  first_short, short = common.time_call(run(iterations), repeats)
  _, long = common.time_call(run(2 * iterations), repeats)
  step = max(long - short, 1e-9) / iterations
  flops = step_flops(generator, discriminator, g_vars, d_vars,
                     batch * restarts, config)
  return {
      'width': width, 'batch': batch, 'restarts': restarts, 'impl': impl,
      'dtype': jnp.dtype(dtype).name, 'step_s': step,
      'images_per_s_1500': batch / (1500 * step),
      'compile_s': max(first_short - short, 0.0),
      'gflop_per_step': flops / 1e9 if flops else None,
      'gflops': flops / step / 1e9 if flops else None,
  }


def main(argv):
  del argv
  quick = _QUICK.value
  dtype = jnp.bfloat16 if _DTYPE.value == 'bfloat16' else jnp.float32
  peak = common.matmul_peak(2048 if quick else 4096)
  widths = [int(w) for w in _WIDTHS.value] if _WIDTHS.value else [64, 32]
  batches = ([int(b) for b in _BATCHES.value] if _BATCHES.value else
             ([1, 64] if quick else [1, 8, 64, 256]))
  impls = _IMPLS.value or ['auto', 'stride1', 'lax']
  iterations, repeats = (3, 2) if quick else (10, 3)
  grid = []
  for width in widths:
    for batch in batches:
      for restarts in (1, 4):
        if restarts == 4 and (batch > 64 or quick and batch > 1):
          continue
        grid.append((width, batch, restarts, 'auto'))
    for impl in impls:
      if impl != 'auto':
        grid.append((width, 64, 1, impl))
  rows = []
  for width, batch, restarts, impl in grid:
    row = measure(width, batch, restarts, impl, dtype, iterations, repeats)
    if row['gflops']:
      row['roofline'] = row['gflops'] * 1e9 / peak
    rows.append(row)
    print(f'done: {row}', flush=True)
  print(f'\nfloat32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n')
  common.report('zsearch' + ('_bf16' if _DTYPE.value == 'bfloat16' else ''),
                rows, ['width', 'batch', 'restarts', 'impl', 'dtype', 'step_s',
                       'images_per_s_1500', 'compile_s', 'gflop_per_step',
                       'gflops', 'roofline'], _OUTPUT.value,
                {'matmul_peak_gflops': peak / 1e9})


if __name__ == '__main__':
  app.run(main)

r"""Per-layer forward / backward times of every stride-2 formulation.

  python -m benchmarks.layers            # batch 64, 3 timed calls each
  python -m benchmarks.layers --quick    # batch 16, 1 timed call each

The evidence for `layers.choose_formulation` (the rule behind impl='auto';
measured on the 2-core CPU, so it applies on 'cpu' only): for each stride-2
layer of the 64x64, width-64, 5x5 DCGAN (G: 4->8 ... 32->64, D: 64->32 ...
8->4) and each formulation of `layers.FORMULATIONS`, the median time of

* forward_s: y = layer(x, w);
* input_grad_s: d sum(y^2) / dx (forward included), what the z-search needs;
* all_grads_s: d sum(y^2) / d(x, w) (forward included), what training needs.

Each function is compiled ahead of time (compile time is not in the numbers)
and called once untimed before timing. The table marks the fastest
formulation per layer and column, and the one the rule picks on the backend
the benchmark runs on (plain 'lax' off CPU until measured there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import layers

_QUICK = flags.DEFINE_bool('quick', False, 'Batch 16 and one timed call.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/layers.json).')
_BATCH = flags.DEFINE_integer('batch_size', None, 'Batch (default 64; 16'
                              ' with --quick).')
_REPEATS = flags.DEFINE_integer('repeats', None, 'Timed calls per function'
                                ' (default 3; 1 with --quick).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Computation dtype.')

COLUMNS = ('forward_s', 'input_grad_s', 'all_grads_s')

# (name, upsample?, low-resolution side, channels in, channels out) of the
# width-64, 5x5, 64x64 DCGAN.
LAYERS = (('G 4->8', True, 4, 512, 256), ('G 8->16', True, 8, 256, 128),
          ('G 16->32', True, 16, 128, 64), ('G 32->64', True, 32, 64, 3),
          ('D 64->32', False, 32, 3, 64), ('D 32->16', False, 16, 64, 128),
          ('D 16->8', False, 8, 128, 256), ('D 8->4', False, 4, 256, 512))


def layer_functions(upsample: bool, formulation: str):
  """{column: function of (x, w)} for one layer formulation."""
  layer = layers.conv_transpose_stride2 if upsample else layers.conv_stride2

  def forward(x, w):
    return layer(x, w, formulation)

  def loss(x, w):
    return jnp.sum(jnp.square(forward(x, w).astype(jnp.float32)))

  return {'forward_s': forward, 'input_grad_s': jax.grad(loss),
          'all_grads_s': jax.grad(loss, argnums=(0, 1))}


def auto_impl(upsample: bool, low: int, cin: int, cout: int,
              training: bool = False) -> str:
  """The formulation impl='auto' picks for the layer on this backend."""
  image_side = cout if upsample else cin
  return layers.choose_formulation(upsample, image_side, low,
                                   training=training)


def main(argv):
  del argv
  quick = _QUICK.value
  batch = _BATCH.value or (16 if quick else 64)
  repeats = _REPEATS.value or (1 if quick else 3)
  dtype = jnp.dtype(_DTYPE.value)
  rows = []
  for name, up, low, cin, cout in LAYERS:
    side = low if up else 2 * low
    x = jax.random.normal(jax.random.PRNGKey(0),
                          (batch, side, side, cin)).astype(dtype)
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, cin, cout)) * 0.02
    for impl in layers.FORMULATIONS:
      row = {'layer': name, 'impl': impl, 'auto': impl == auto_impl(
          up, low, cin, cout)}
      for column, fn in layer_functions(up, impl).items():
        compile_s, seconds, _ = common.time_compiled(fn, (x, w), repeats)
        row[column] = seconds
        row[column.replace('_s', '_compile_s')] = compile_s
      rows.append(row)
      print(f'{name:9s} {impl:8s} ' + '  '.join(
          f'{c}={row[c]:.4g}' for c in COLUMNS), flush=True)

  # The fastest formulation per layer and column.
  winners = []
  for name, up, low, cin, cout in LAYERS:
    layer_rows = [r for r in rows if r['layer'] == name]
    winner = {'layer': name, 'auto': auto_impl(up, low, cin, cout),
              'auto_train': auto_impl(up, low, cin, cout, training=True)}
    for column in COLUMNS:
      best = min(layer_rows, key=lambda r, c=column: r[c])
      winner[column.replace('_s', '')] = best['impl']
      for r in layer_rows:
        r[column.replace('_s', '_vs_best')] = r[column] / best[column]
    auto_row = next(r for r in layer_rows if r['auto'])
    train_row = next(r for r in layer_rows if r['impl'] == winner['auto_train'])
    # How much slower auto is than the per-column best (1 = it is the best):
    # the z-search rule on the input gradient, the training rule on all.
    winner['auto_input_grad_vs_best'] = auto_row['input_grad_vs_best']
    winner['auto_train_all_grads_vs_best'] = train_row['all_grads_vs_best']
    winners.append(winner)

  common.report('layers', rows,
                ['layer', 'impl', 'auto', *COLUMNS, 'input_grad_vs_best',
                 'all_grads_vs_best'], _OUTPUT.value,
                {'batch': batch, 'repeats': repeats, 'dtype': dtype.name,
                 'kernel': 5, 'winners': winners})
  print('\nFastest formulation per layer (auto = layers.choose_formulation on'
        f' {jax.default_backend()!r}):\n')
  common.print_table(winners, ['layer', 'forward', 'input_grad', 'all_grads',
                               'auto', 'auto_input_grad_vs_best',
                               'auto_train', 'auto_train_all_grads_vs_best'])


if __name__ == '__main__':
  app.run(main)

r"""Per-layer forward / backward times of every stride-2 formulation.

  python -m benchmarks.layers [--quick]

The evidence for `models._resolve_impl`'s 'auto' rule: for each stride-2
layer of the 64x64, width-64, 5x5 DCGAN at batch 64 and each formulation
('lax', 'stride1', 'phase'), the time of the forward pass, of forward + input
gradient (what the z-search needs) and of forward + input + kernel gradient
(what training needs).
"""

import jax
import jax.numpy as jnp
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import models

_QUICK = flags.DEFINE_bool('quick', False, 'Batch 16 instead of 64.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path.')

# (name, upsample?, low-resolution side, channels in, channels out)
LAYERS = (('G 4->8', True, 4, 512, 256), ('G 8->16', True, 8, 256, 128),
          ('G 16->32', True, 16, 128, 64), ('G 32->64', True, 32, 64, 3),
          ('D 64->32', False, 32, 3, 64), ('D 32->16', False, 16, 64, 128),
          ('D 16->8', False, 8, 128, 256), ('D 8->4', False, 4, 256, 512))


def main(argv):
  del argv
  batch = 16 if _QUICK.value else 64
  rows = []
  for name, up, low, cin, cout in LAYERS:
    side = low if up else 2 * low
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, side, side, cin))
    w = jax.random.normal(jax.random.PRNGKey(1), (5, 5, cin, cout)) * 0.02
    layer = models.conv_transpose_stride2 if up else models.conv_stride2
    for impl in ('lax', 'stride1', 'phase'):
      loss = lambda x, w, impl=impl: jnp.sum(jnp.square(layer(x, w, impl)))
      fns = {'forward_s': jax.jit(lambda x, w, impl=impl: layer(x, w, impl)),
             'input_grad_s': jax.jit(jax.grad(loss)),
             'all_grads_s': jax.jit(jax.grad(loss, argnums=(0, 1)))}
      row = {'layer': name, 'impl': impl}
      for column, fn in fns.items():
        row[column] = common.time_call(lambda fn=fn: fn(x, w), 3)[1]
      rows.append(row)
      print(f'done: {row}', flush=True)
  auto = {}
  for name, up, low, cin, cout in LAYERS:
    image_side = cout if up else cin
    auto[name] = models._resolve_impl('auto', image_side, low)  # pylint: disable=protected-access
  for row in rows:
    row['auto_choice'] = auto[row['layer']] == row['impl']
  common.report('layers', rows, ['layer', 'impl', 'forward_s', 'input_grad_s',
                                 'all_grads_s', 'auto_choice'], _OUTPUT.value,
                {'batch': batch})


if __name__ == '__main__':
  app.run(main)

r"""DCGAN training step time (batch 64), FLOP/s and roofline ratio.

  python -m benchmarks.train_step [--quick]

Times the jitted single-device `train.train_step` (D update + G update) after
compilation; FLOPs from XLA's cost analysis; roofline = achieved FLOP/s over a
float32 matmul timed in the same run.
"""

import functools

import jax
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import train
from inpaint_jax.config import ModelConfig, TrainConfig

_QUICK = flags.DEFINE_bool('quick', False, 'Fewer repeats, smaller peak test.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path.')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Batch size.')


def main(argv):
  del argv
  repeats = 2 if _QUICK.value else 5
  peak = common.matmul_peak(2048 if _QUICK.value else 4096)
  rows = []
  for width, impl in ((64, 'auto'), (64, 'stride1'), (32, 'auto')):
    model_config, train_config = ModelConfig(width=width), TrainConfig()
    state = train.create_state(model_config, train_config,
                               jax.random.PRNGKey(0))
    batch = jax.random.uniform(jax.random.PRNGKey(1),
                               (_BATCH.value, 64, 64, 3), minval=-1, maxval=1)
    step = jax.jit(functools.partial(train.train_step,
                                     model_config=model_config,
                                     train_config=train_config, impl=impl))
    rng = jax.random.PRNGKey(2)
    first, seconds = common.time_call(lambda: step(state, batch, rng), repeats)
    flops = common.xla_flops(step, state, batch, rng)
    rows.append({
        'width': width, 'impl': impl, 'batch': _BATCH.value,
        'step_s': seconds, 'compile_s': max(first - seconds, 0.0),
        'gflop_per_step': flops / 1e9 if flops else None,
        'gflops': flops / seconds / 1e9 if flops else None,
        'roofline': flops / seconds / peak if flops else None})
    print(f'done: {rows[-1]}', flush=True)
  print(f'\nfloat32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n')
  common.report('train_step', rows, ['width', 'impl', 'batch', 'step_s',
                                     'compile_s', 'gflop_per_step', 'gflops',
                                     'roofline'], _OUTPUT.value,
                {'matmul_peak_gflops': peak / 1e9})


if __name__ == '__main__':
  app.run(main)

r"""DCGAN training step time, FLOP/s and roofline ratio.

  python -m benchmarks.train_step            # width 64 and 32, auto + stride1
  python -m benchmarks.train_step --quick    # width 64 and 32, auto only

Times the jitted single-device `train.train_step` (one D update on a real and
a generated batch, then one G update; Adam, batch norm in training mode) at
batch 64, 64x64, 5x5 kernels, on random images, after ahead-of-time
compilation (compile_s, reported separately). FLOPs come from XLA's cost
analysis of the compiled step; roofline = achieved FLOP/s over a float32
matmul timed in the same run.
"""

from __future__ import annotations

from absl import app
from absl import flags

from benchmarks import common
from benchmarks import workloads

_QUICK = flags.DEFINE_bool('quick', False, 'auto only, one timed call.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/train_step.json).')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Batch size.')
_WIDTHS = flags.DEFINE_list('widths', ['64', '32'], 'Base widths.')
_IMPLS = flags.DEFINE_list('impls', None, 'Layer formulations (default'
                           ' auto,stride1; auto with --quick).')
_REPEATS = flags.DEFINE_integer('repeats', None, 'Timed steps (default 5;'
                                ' 1 with --quick).')


def main(argv):
  del argv
  quick = _QUICK.value
  repeats = _REPEATS.value or (1 if quick else 5)
  impls = _IMPLS.value or (['auto'] if quick else ['auto', 'stride1'])
  peak = common.peaks(quick)
  rows = []
  for width in (int(w) for w in _WIDTHS.value):
    for impl in impls:
      row = workloads.train(width, impl, _BATCH.value, repeats)
      if row['gflops']:
        row['roofline'] = row['gflops'] / peak['matmul_float32_gflops']
      rows.append(row)
      print(f'width {width} {impl}: {row["step_s"]:.4g} s/step, compile'
            f' {row["compile_s"]:.3g} s', flush=True)
  common.report('train_step', rows,
                ['width', 'impl', 'batch', 'step_s', 'images_per_s',
                 'compile_s', 'gflop_step', 'gflops', 'roofline'],
                _OUTPUT.value, {**peak, 'repeats': repeats, 'kernel': 5})
  print(f'\nroofline = gflops / measured float32 matmul'
        f' ({peak["matmul_float32_gflops"]:.1f} GFLOP/s at'
        f' {peak["matmul_size"]}^2).')


if __name__ == '__main__':
  app.run(main)

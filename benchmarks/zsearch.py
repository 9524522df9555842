r"""z-search throughput: seconds per Adam step, images/s, FLOP/s, roofline.

  python -m benchmarks.zsearch                    # the full grid
  python -m benchmarks.zsearch --quick            # ~2 minutes on a 2-core CPU
  python -m benchmarks.zsearch --dtype=bfloat16   # G and D computing in bf16

What is timed is `latent_search.search_latents` (the jitted, vmapped Adam loop
of Sec. 3.3 with G and D in inference mode, centre masks, 64x64, 5x5 kernels,
randomly initialised G and D: the time does not depend on the weights).

* step_s: seconds per Adam step, from two compiled searches of N and 2N
  iterations: (t(2N) - t(N)) / N, so compilation, the importance weights and
  the final G(z) evaluation drop out.
* img_per_s_1500: batch / (1500 * step_s), images per second for the paper's
  1500 iterations, EXTRAPOLATED from step_s (no 1500-step run is timed).
* compile_s: trace + lower + compile of the N-iteration search (AOT).
* gflop_step: XLA cost-analysis FLOPs of one loss + gradient evaluation for
  the batch * restarts latents (the loop body; XLA counts a while loop's body
  only once, so the search itself is not analysed). Adam's own FLOPs are
  negligible (~10 per latent entry).
* gflops: gflop_step / step_s; roofline: that over the float32 (and, with
  --dtype=bfloat16, also the bfloat16) matmul rate measured in the same run.

Width 64 is the paper's DCGAN (512-256-128-64); width 32 the shipped models.
"""

from __future__ import annotations

import jax.numpy as jnp
from absl import app
from absl import flags

from benchmarks import common
from benchmarks import workloads

_QUICK = flags.DEFINE_bool('quick', False, 'A small grid with few steps.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/zsearch[_bfloat16].json).')
_DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'],
                           'Computation dtype of G and D.')
_WIDTHS = flags.DEFINE_list('widths', None, 'Widths (default 64,32).')
_BATCHES = flags.DEFINE_list('batch_sizes', None, 'Batch sizes (default'
                             ' 1,8,64,256; 1,64 with --quick).')
_RESTARTS = flags.DEFINE_list('restarts', None, 'Restarts (default 1,4;'
                               ' 1 with --quick).')
_IMPLS = flags.DEFINE_list('compare_impls', None, 'Formulations also timed'
                           ' at batch 64, restarts 1 (default stride1,lax;'
                           ' none with --quick).')
_ITERATIONS = flags.DEFINE_integer('iterations', None, 'N of the N / 2N'
                                   ' difference (default 10; 2 with'
                                   ' --quick).')
_REPEATS = flags.DEFINE_integer('repeats', None, 'Timed calls per search'
                                ' (default 3; 1 with --quick).')


def main(argv):
  del argv
  quick = _QUICK.value
  dtype = jnp.dtype(_DTYPE.value)
  peak = common.peaks(quick)
  widths = [int(w) for w in _WIDTHS.value] if _WIDTHS.value else [64, 32]
  batches = ([int(b) for b in _BATCHES.value] if _BATCHES.value else
             ([1, 64] if quick else [1, 8, 64, 256]))
  restarts_list = ([int(r) for r in _RESTARTS.value] if _RESTARTS.value
                   else ([1] if quick else [1, 4]))
  impls = (_IMPLS.value if _IMPLS.value is not None else
           ([] if quick else ['stride1', 'lax']))
  iterations = _ITERATIONS.value or (2 if quick else 10)
  repeats = _REPEATS.value or (1 if quick else 3)

  grid = []
  for width in widths:
    for batch in batches:
      for restarts in restarts_list:
        if restarts > 1 and batch * restarts > 256:
          continue  # restarts multiply the latents; cap them at 256.
        grid.append((width, batch, restarts, 'auto'))
    for impl in impls:
      if impl != 'auto':
        grid.append((width, 64, 1, impl))

  rows = []
  for width, batch, restarts, impl in grid:
    row = workloads.zsearch(width, batch, restarts, impl, dtype, iterations,
                            repeats)
    if row['gflops']:
      row['roofline'] = row['gflops'] / peak['matmul_float32_gflops']
      if dtype == jnp.bfloat16:
        row['roofline_bf16'] = row['gflops'] / peak['matmul_bfloat16_gflops']
    rows.append(row)
    print(f'width {width} batch {batch} restarts {restarts} {impl}:'
          f' {row["step_s"]:.4g} s/step, compile {row["compile_s"]:.3g} s',
          flush=True)

  name = 'zsearch' + ('' if dtype == jnp.float32 else f'_{dtype.name}')
  columns = ['width', 'batch', 'restarts', 'impl', 'dtype', 'step_s',
             'img_per_s_1500', 'compile_s', 'gflop_step', 'gflops',
             'roofline'] + (['roofline_bf16'] if dtype == jnp.bfloat16 else [])
  common.report(name, rows, columns, _OUTPUT.value,
                {**peak, 'iterations_N': iterations, 'repeats': repeats,
                 'note': 'img_per_s_1500 and search_1500_s are extrapolated'
                         ' from step_s = (t(2N) - t(N)) / N.'})
  print(f'\nstep_s = (t({2 * iterations} steps) - t({iterations} steps)) /'
        f' {iterations}; img_per_s_1500 = batch / (1500 * step_s) is'
        ' extrapolated, not a timed 1500-step run.')
  print(f'roofline = gflops / measured float32 matmul'
        f' ({peak["matmul_float32_gflops"]:.1f} GFLOP/s at'
        f' {peak["matmul_size"]}^2).')


if __name__ == '__main__':
  app.run(main)

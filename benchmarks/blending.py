r"""Poisson blending (Eq. 6): batched jitted CG vs a direct sparse solve.

  python -m benchmarks.blending            # scipy on all 64 images
  python -m benchmarks.blending --quick    # scipy on 8 images, extrapolated

For each mask type of `inpaint_jax.masks` and a batch of 64 64x64x3 images
(random 'images' y and 'generated' G(z) = y + noise, so the hole has structure
to carry over):

* cg_s: `blending.solve_poisson` (tol 1e-6, the `poisson_blend` default)
  after compilation, median of the timed calls; compile_s: the first call's
  extra time (first mask only: the others reuse the executable). blend_s: the public `poisson_blend` wrapper, likewise.
* iterations: CG iterations of the batch (it stops when its slowest system
  has converged); max_rel_residual: the largest final relative residual.
* scipy_s: `scipy.sparse.linalg.spsolve` (SuperLU) of the same discrete
  Poisson systems, one factorisation per image with the 3 channels as
  right-hand sides, built with vectorised numpy (scipy_build_s, not in
  scipy_s). With --quick, measured on 8 images and scaled to 64.
* max_abs_diff: the largest difference between the CG and direct solutions.
"""

from __future__ import annotations

import time

import jax
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import blending
from inpaint_jax import masks

_QUICK = flags.DEFINE_bool('quick', False, 'scipy on 8 images, scaled.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/blending.json).')
_NUM = flags.DEFINE_integer('num_images', 64, 'Batch size.')
_REPEATS = flags.DEFINE_integer('repeats', None, 'Timed CG calls (default'
                                ' 5; 3 with --quick).')
_TOL = flags.DEFINE_float('tol', blending.DEFAULT_TOL, 'CG tolerance.')


def poisson_system(generated: np.ndarray, image: np.ndarray,
                   unknown: np.ndarray):
  """Sparse A (U x U) and right-hand sides b (U x C) of Eq. 6 for one image.

  For each missing pixel i with in-image 4-neighbours j:
    deg_i x_i - sum_{j missing} x_j
        = sum_j (g_i - g_j) + sum_{j known} y_j.
  """
  h, w = unknown.shape
  g = generated.astype(np.float64)
  y = image.astype(np.float64)
  count = int(unknown.sum())
  index = np.full((h, w), -1, np.int64)
  index[unknown] = np.arange(count)
  ys, xs = np.nonzero(unknown)
  rows, cols, vals = [np.arange(count)], [np.arange(count)], []
  degree = np.zeros(count)
  b = np.zeros((count, g.shape[-1]))
  for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
    ny, nx = ys + dy, xs + dx
    inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
    i = index[ys[inside], xs[inside]]
    ny, nx = ny[inside], nx[inside]
    degree[i] += 1
    b[i] += g[ys[inside], xs[inside]] - g[ny, nx]
    neighbour_missing = unknown[ny, nx]
    b[i[~neighbour_missing]] += y[ny[~neighbour_missing], nx[~neighbour_missing]]
    rows.append(i[neighbour_missing])
    cols.append(index[ny[neighbour_missing], nx[neighbour_missing]])
  vals = np.concatenate([degree] + [-np.ones(len(r)) for r in rows[1:]])
  a = scipy.sparse.csc_matrix(
      (vals, (np.concatenate(rows), np.concatenate(cols))),
      shape=(count, count))
  return a, b


def scipy_blend(generated, images, m):
  """Direct solves for a batch; (blended, build seconds, solve seconds)."""
  out = images.astype(np.float64).copy()
  build_s = solve_s = 0.0
  for k in range(len(images)):
    unknown = m[k, ..., 0] < 0.5
    start = time.perf_counter()
    a, b = poisson_system(generated[k], images[k], unknown)
    build_s += time.perf_counter() - start
    start = time.perf_counter()
    x = scipy.sparse.linalg.spsolve(a, b)
    solve_s += time.perf_counter() - start
    out[k][unknown] = x.reshape(len(b), -1)
  return out, build_s, solve_s


def main(argv):
  del argv
  quick = _QUICK.value
  n, size = _NUM.value, 64
  repeats = _REPEATS.value or (3 if quick else 5)
  count = min(8, n) if quick else n
  key = jax.random.PRNGKey(0)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
  generated = np.clip(images + rng.normal(0, 0.2, images.shape), -1,
                      1).astype(np.float32)
  rows = []
  for kind in masks.KINDS:
    m = np.asarray(masks.make(kind, key, n, size))
    y = images * m
    first, seconds = common.time_call(
        lambda: blending.solve_poisson(generated, y, m, tol=_TOL.value),
        repeats)
    _, blend_s = common.time_call(
        lambda: blending.poisson_blend(generated, y, m, tol=_TOL.value),
        repeats)
    blended, iterations, residual = blending.solve_poisson(
        generated, y, m, tol=_TOL.value)
    reference, build_s, solve_s = scipy_blend(generated[:count], y[:count],
                                              m[:count])
    scale = n / count
    rows.append({
        'mask': kind, 'images': n,
        'missing': float(1 - m.mean()),
        'cg_s': seconds, 'blend_s': blend_s,
        # The executable is shared by all masks (same shapes): first only.
        'compile_s': None if rows else max(first - seconds, 0.0),
        'iterations': int(np.max(np.asarray(iterations))),
        'max_rel_residual': float(np.max(np.asarray(residual))),
        'scipy_s': solve_s * scale, 'scipy_build_s': build_s * scale,
        'speedup': solve_s * scale / seconds,
        'max_abs_diff': float(np.abs(np.asarray(blended)[:count]
                                     - reference).max())})
    print(f'{kind}: cg {seconds:.4g} s, scipy {solve_s * scale:.4g} s',
          flush=True)
  common.report('blending', rows,
                ['mask', 'images', 'missing', 'cg_s', 'blend_s', 'compile_s',
                 'iterations', 'max_rel_residual', 'scipy_s', 'scipy_build_s',
                 'speedup', 'max_abs_diff'], _OUTPUT.value,
                {'tol': _TOL.value, 'repeats': repeats,
                 'scipy_measured_on': count,
                 'note': 'scipy_s and scipy_build_s are scaled from'
                         f' {count} to {n} images.' if count < n else
                         'scipy measured on every image.'})
  if count < n:
    print(f'\nscipy_s is measured on {count} images and scaled to {n}.')


if __name__ == '__main__':
  app.run(main)

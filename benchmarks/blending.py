r"""Poisson blending (Eq. 6): batched jitted CG vs a direct sparse solve.

  python -m benchmarks.blending [--quick]

For each mask type, a batch of 64 64x64x3 images: time of
`blending.solve_poisson` after compilation, its iterations and final relative
residual, against scipy.sparse.linalg.spsolve on the same systems (one solve
per image and channel, as a direct solver does it), and the largest
difference between the two solutions.
"""

import time

import jax
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import blending, masks

_QUICK = flags.DEFINE_bool('quick', False, 'Fewer images for scipy.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path.')


def scipy_blend(generated, image, mask):
  """Direct solve of the same discrete Poisson problem for one (H, W, C) image."""
  h, w, c = image.shape
  unknown = mask[..., 0] < 0.5
  index = -np.ones((h, w), np.int64)
  index[unknown] = np.arange(unknown.sum())
  rows, cols, vals = [], [], []
  b = np.zeros((unknown.sum(), c))
  for y, x in zip(*np.nonzero(unknown)):
    i = index[y, x]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
      ny, nx = y + dy, x + dx
      if not (0 <= ny < h and 0 <= nx < w):
        continue
      rows.append(i), cols.append(i), vals.append(1.0)
      b[i] += generated[y, x] - generated[ny, nx]
      if unknown[ny, nx]:
        rows.append(i), cols.append(index[ny, nx]), vals.append(-1.0)
      else:
        b[i] += image[ny, nx]
  a = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(len(b), len(b)))
  out = image.astype(np.float64).copy()
  out[unknown] = scipy.sparse.linalg.spsolve(a.tocsc(), b).reshape(-1, c)
  return out


def main(argv):
  del argv
  n, size = 64, 64
  key = jax.random.PRNGKey(0)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32)
  generated = np.clip(images + rng.normal(0, 0.2, images.shape), -1,
                      1).astype(np.float32)
  rows = []
  for kind in masks.KINDS:
    m = np.asarray(masks.make(kind, key, n, size))
    solve = lambda: blending.solve_poisson(generated, images * m, m, tol=1e-5)
    first, seconds = common.time_call(solve, 3)
    blended, iterations, residual = solve()
    count = 4 if _QUICK.value else n
    start = time.perf_counter()
    reference = np.stack([scipy_blend(generated[i], images[i] * m[i], m[i])
                          for i in range(count)])
    scipy_seconds = (time.perf_counter() - start) * n / count
    rows.append({
        'mask': kind, 'images': n, 'cg_s': seconds,
        'compile_s': max(first - seconds, 0.0),
        'iterations': int(np.max(np.asarray(iterations))),
        'max_rel_residual': float(np.max(np.asarray(residual))),
        'scipy_s': scipy_seconds, 'speedup': scipy_seconds / seconds,
        'max_abs_diff': float(np.abs(np.asarray(blended)[:count] -
                                     reference).max())})
    print(f'done: {rows[-1]}', flush=True)
  common.report('blending', rows, ['mask', 'images', 'cg_s', 'compile_s',
                                   'iterations', 'max_rel_residual', 'scipy_s',
                                   'speedup', 'max_abs_diff'], _OUTPUT.value,
                {'scipy_extrapolated_from': 4 if _QUICK.value else n})


if __name__ == '__main__':
  app.run(main)

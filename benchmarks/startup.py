r"""Start-up cost: the inpainting experiment run twice on one compile cache.

  python -m benchmarks.startup            # the README's main command
  python -m benchmarks.startup --quick    # 8 images, 20 iterations

Runs `python -m experiments.inpaint` (shipped CelebA model, centre mask) as a
subprocess twice with `INPAINT_JAX_CACHE` pointing at a new, empty directory:
the first run compiles and fills JAX's persistent compilation cache, the
second reads it. Reported: wall time of each whole process (Python and JAX
import, data loading, compilation or cache reads, the z-search, blending,
writing results) and the size of the cache. The difference is what the cache
saves a user on every run after the first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import common

_QUICK = flags.DEFINE_bool('quick', False, '8 images and 20 iterations.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/startup.json).')
_ARGS = flags.DEFINE_list('inpaint_args', None, 'Extra flags for'
                          ' experiments.inpaint, e.g. --data_dir=...')

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dir_size(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def main(argv):
  del argv
  images, iterations = (8, 20) if _QUICK.value else (32, 300)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, 'cache')
    env = {**os.environ, 'INPAINT_JAX_CACHE': cache}
    command = [sys.executable, '-m', 'experiments.inpaint',
               f'--num_images={images}', f'--iterations={iterations}',
               f'--output_dir={os.path.join(tmp, "out")}'] + (_ARGS.value or [])
    for run in ('first (empty cache)', 'second (warm cache)'):
      start = time.perf_counter()
      done = subprocess.run(command, cwd=_ROOT, env=env, capture_output=True,
                            text=True, check=False)
      seconds = time.perf_counter() - start
      if done.returncode:
        sys.exit(f'experiments.inpaint failed:\n{done.stderr[-2000:]}')
      rows.append({'run': run, 'wall_s': seconds,
                   'cache_mb': _dir_size(cache) / 2**20})
      print(f'{run}: {seconds:.1f} s', flush=True)
  rows[1]['saved_s'] = rows[0]['wall_s'] - rows[1]['wall_s']
  common.report('startup', rows, ['run', 'wall_s', 'saved_s', 'cache_mb'],
                _OUTPUT.value, {'command': ' '.join(command[1:]),
                                'num_images': images,
                                'iterations': iterations})


if __name__ == '__main__':
  app.run(main)

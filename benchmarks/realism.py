r"""MS-SWD (`inpaint_jax.realism.ms_swd`) wall time on 64x64 images.

  python -m benchmarks.realism            # 64 and 1000 images
  python -m benchmarks.realism --quick    # 64 and 256 images, 1 timed call

Two sets of random structured images (smooth noise, so that every pyramid
level has content; the time does not depend on the content) per size, the
default settings (128 patches per image, 512 directions x 4 repeats, levels
64, 32, 16). first_s: the first call, compilation included; seconds: the
median of the timed calls with a new key each; max_rss_gb: the process's peak
resident memory so far. Prints a table and one JSON line; never asserts on
time.
"""

from __future__ import annotations

import json
import resource

import jax
import numpy as np
import scipy.ndimage
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import realism

_QUICK = flags.DEFINE_bool('quick', False, '64 and 256 images, 1 timed call.')
_SIZES = flags.DEFINE_list('images', None, 'Set sizes (default 64,1000;'
                           ' 64,256 with --quick).')
_REPEATS = flags.DEFINE_integer('repeats', None, 'Timed calls (default 3;'
                                ' 1 with --quick).')


def _images(seed: int, n: int) -> np.ndarray:
  rng = np.random.default_rng(seed)
  x = scipy.ndimage.gaussian_filter(
      rng.normal(0, 1, (n, 64, 64, 3)).astype(np.float32), (0, 1.5, 1.5, 0))
  return np.clip(x / np.abs(x).std() / 3, -1, 1)


def main(argv):
  del argv
  quick = _QUICK.value
  sizes = [int(s) for s in (_SIZES.value or (['64', '256'] if quick
                                               else ['64', '1000']))]
  repeats = _REPEATS.value or (1 if quick else 3)
  rows = []
  for n in sizes:
    a, b = _images(0, n), _images(1, n)
    for paired in (False, True):
      calls = iter(range(repeats + 1))
      def measure():
        return realism.ms_swd(a, b, jax.random.PRNGKey(next(calls)),
                              paired=paired)
      first, seconds = common.time_call(measure, repeats)
      rows.append({
          'images': n, 'positions': 'paired' if paired else 'independent',
          'descriptors_per_level': n * 128,
          'first_s': first, 'seconds': seconds,
          'images_per_s': 2 * n / seconds,
          'max_rss_gb': resource.getrusage(
              resource.RUSAGE_SELF).ru_maxrss / 2**20})
      print(f'{n} images, paired={paired}: {seconds:.3g} s', flush=True)
  columns = ['images', 'positions', 'descriptors_per_level', 'first_s',
             'seconds', 'images_per_s', 'max_rss_gb']
  print()
  common.print_table(rows, columns)
  print(json.dumps({'benchmark': 'realism', 'machine': common.machine(),
                    'repeats': repeats, 'rows': rows}))


if __name__ == '__main__':
  app.run(main)

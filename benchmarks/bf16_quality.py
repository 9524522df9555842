r"""Does bfloat16 compute change the inpainting? PSNR and time, f32 vs bf16.

  python -m benchmarks.bf16_quality                 # 64 images, 300 steps
  python -m benchmarks.bf16_quality --quick         # 16 images, 100 steps

Inpaints the same images with the same masks and initial latents through
`evaluate.evaluate_checkpoint` twice per mask type: G and D computing in
float32, then in bfloat16 (weights stay float32). Images come from the
validation slice (the last 256 train images, never used for training), so
the decision to offer bf16 is not made on test. Reported per mask: mean PSNR
(blended result vs original) for each dtype, their mean and largest
per-image difference, and wall time (compilation included).
"""

from __future__ import annotations

import os

import numpy as np
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax.evaluation import evaluate
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks
from inpaint_jax.config import SearchConfig

_QUICK = flags.DEFINE_bool('quick', False, '16 images, 100 iterations.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/bf16_quality.json).')
_MODEL = flags.DEFINE_string('model_dir', 'models/celeba64', 'Model directory.')
_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set of the validation images.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Data root (default:'
                                ' $INPAINT_DATA_DIR, else ../shared/data).')


def main(argv):
  del argv
  num, iterations = (16, 100) if _QUICK.value else (64, 300)
  images, names = input_pipeline.load_split(
      _DATASET.value, 'validation', data_dir=_DATA_DIR.value, limit=num)
  config = SearchConfig(iterations=iterations)
  rows = []
  for kind in masks.KINDS:
    row = {'mask': kind}
    psnr = {}
    for dtype in ('float32', 'bfloat16'):
      evaluated = evaluate.evaluate_checkpoint(
          _MODEL.value, images, names, mask_kind=kind, search_config=config,
          show_progress=False, compute_dtype=dtype)
      psnr[dtype] = evaluated.metrics['psnr']
      row[f'psnr_{dtype}'] = float(psnr[dtype].mean())
      row[f'seconds_{dtype}'] = evaluated.summary['seconds']
    difference = psnr['bfloat16'] - psnr['float32']
    row['mean_diff_db'] = float(difference.mean())
    row['max_abs_diff_db'] = float(np.abs(difference).max())
    rows.append(row)
    print(f'{kind}: f32 {row["psnr_float32"]:.2f} dB, bf16'
          f' {row["psnr_bfloat16"]:.2f} dB', flush=True)
  common.report('bf16_quality', rows,
                ['mask', 'psnr_float32', 'psnr_bfloat16', 'mean_diff_db',
                 'max_abs_diff_db', 'seconds_float32', 'seconds_bfloat16'],
                _OUTPUT.value, {'model_dir': os.path.abspath(_MODEL.value),
                                'num_images': num, 'iterations': iterations,
                                'images': f'{_DATASET.value} validation slice'})


if __name__ == '__main__':
  app.run(main)

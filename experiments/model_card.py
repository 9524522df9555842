r"""Evaluates a model on the paper's four masks and writes its model card.

  python -m experiments.model_card --model_dir=models/celeba64 --dataset=celeba

Writes README.md, samples.png, grid_<mask>.png and evaluation.json into
--model_dir; full per-mask results go to --work_dir.
"""

import sys

from absl import flags

from experiments import _cli
from inpaint_jax import input_pipeline
from inpaint_jax import model_card
from inpaint_jax.config import SearchConfig

_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'Model directory.',
                                 required=True)
_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set of the test images.')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split to evaluate on.')
_DATA_DIR = _cli.define_data_dir_flag()
_NUM_IMAGES = flags.DEFINE_integer('num_images', 64, 'Test images.')
_ITERATIONS = flags.DEFINE_integer('iterations', 300, 'z-search Adam steps.')
_LR = flags.DEFINE_float('learning_rate', SearchConfig.learning_rate,
                         'z-search learning rate.')
_LAM = flags.DEFINE_float('lam', SearchConfig.lam,
                          'Prior loss weight lambda (Eq. 5).')
_RESTARTS = flags.DEFINE_integer(
    'restarts', 1, 'Random initialisations per image; the best is kept.')
_WINDOW = flags.DEFINE_integer(
    'window', SearchConfig.window, 'Importance-weight window of Eq. 3.')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per batch.')
_WORK_DIR = flags.DEFINE_string('work_dir', 'results/model_card',
                                'Where full per-mask results go.')


def main(argv):
  del argv
  images, names = input_pipeline.load_split(
      _DATASET.value, _SPLIT.value, data_dir=_DATA_DIR.value,
      limit=_NUM_IMAGES.value)
  model_card.write_model_card(
      _MODEL_DIR.value, images, names,
      f'the first {len(images)} images of {_DATASET.value}/{_SPLIT.value}',
      _WORK_DIR.value,
      SearchConfig(iterations=_ITERATIONS.value, learning_rate=_LR.value,
                   lam=_LAM.value, restarts=_RESTARTS.value,
                   window=_WINDOW.value),
      'python -m experiments.model_card ' + ' '.join(sys.argv[1:]),
      batch_size=_BATCH.value)


if __name__ == '__main__':
  _cli.run(main)

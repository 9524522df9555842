r"""Evaluates a model on the paper's four masks and writes its model card.

  python -m experiments.model_card --model_dir=models/celeba64 --dataset=celeba

For SVHN the card also reports the semantic accuracy (the digit classifier
of --classifier, default models/svhn_classifier) per mask.
Writes README.md, samples.png, grid_<mask>.png and evaluation.json into
--model_dir; full per-mask results go to --work_dir. With --previous=<model
directory> (the model this one replaces) the card shows both on the same
images: scores, paired differences and versus_previous.png.
"""

import sys

from absl import flags

from experiments import _cli
from inpaint_jax.evaluation import semantic
from inpaint_jax.data import input_pipeline
from inpaint_jax.evaluation import model_card
from inpaint_jax.evaluation import sample_realism

_MODEL_DIR = flags.DEFINE_string('model_dir', None, 'Model directory.',
                                 required=True)
_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set of the test images.')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split to evaluate on.')
_DATA_DIR = _cli.define_data_dir_flag()
_NUM_IMAGES = flags.DEFINE_integer('num_images', 64, 'Test images.',
                                   lower_bound=1)
_SEARCH_CONFIG = _cli.define_search_flags()
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per batch.',
                              lower_bound=1)
_WORK_DIR = flags.DEFINE_string('work_dir', 'results/model_card',
                                'Where full per-mask results go.')
_CLASSIFIER = _cli.define_classifier_flag()
_REALISM_IMAGES = flags.DEFINE_integer(
    'realism_images', sample_realism.DEFAULT_IMAGES, 'Samples of G compared'
    ' (MS-SWD) with as many validation images, beside the floor of as many'
    ' train images; 0: no sample realism on the card.', lower_bound=0)
_PREVIOUS = flags.DEFINE_string(
    'previous', None, 'Model directory this one replaces: evaluated the same'
    ' way on the same images, shown beside it in the card (paired'
    ' differences, both models\' fills in versus_previous.png).')
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  search_config = _SEARCH_CONFIG()
  images, names = input_pipeline.load_split(
      _DATASET.value, _SPLIT.value, data_dir=_DATA_DIR.value,
      limit=_NUM_IMAGES.value)
  _cli.note_if_fewer(len(images), _NUM_IMAGES.value,
                     f'{_DATASET.value}/{_SPLIT.value}')
  model_card.write_model_card(
      _MODEL_DIR.value, images, names,
      f'the first {len(images)} images of {_DATASET.value}/{_SPLIT.value}',
      _WORK_DIR.value,
      search_config,
      'python -m experiments.model_card ' + ' '.join(sys.argv[1:]),
      batch_size=_BATCH.value,
      semantic=semantic.semantic_for_split(
          _DATASET.value, _SPLIT.value, names, _CLASSIFIER.value,
          _DATA_DIR.value, required=flags.FLAGS['classifier'].present),
      realism_sets=sample_realism.reference_sets(
          _DATASET.value, _REALISM_IMAGES.value, data_dir=_DATA_DIR.value,
          size=images.shape[1]) if _REALISM_IMAGES.value else None,
      previous_dir=_PREVIOUS.value)


if __name__ == '__main__':
  _cli.run(main)

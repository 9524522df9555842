r"""Trains the SVHN digit classifier behind the semantic accuracy metric.

  python -m experiments.train_classifier --workdir=runs/svhn_classifier \
      --export_dir=models/svhn_classifier

Trains on SVHN train minus the validation slice (labels from
<data_dir>/svhn/train/labels.csv), resumes from the checkpoints in --workdir
when run again, and with --export_dir writes the model directory with a
model card (README.md: architecture, steps, wall time, test and validation
accuracy, the command).

With --mask=center (or pattern, random, half) it trains and tests on images
with that mask's missing pixels at 0 instead: not a classifier to score
inpaintings with, but an estimate of how much of the digit the mask leaves
(an inpainting followed by a classifier is itself a classifier of the masked
input), e.g.

  python -m experiments.train_classifier --mask=center \
      --workdir=runs/svhn_classifier_center \
      --export_dir=results/svhn_classifier_center
"""

from __future__ import annotations

import os

from absl import flags

from experiments import _cli
from inpaint_jax.evaluation import model_card
from inpaint_jax.evaluation import semantic
from inpaint_jax.training import train_classifier
from inpaint_jax.data import input_pipeline

_DATA_DIR = _cli.define_data_dir_flag()
_WORKDIR, _STOP_AFTER = _cli.define_run_flags()
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the final classifier (and its card)'
    ' here, e.g. models/svhn_classifier.')
_CONFIG = _cli.define_config_flags(
    semantic.ClassifierConfig,
    ('batch_size', 'learning_rate', 'seed', 'mask')
    + _cli.bookkeeping_fields(semantic.ClassifierConfig),
    positive=('batch_size',)
    + _cli.bookkeeping_fields(semantic.ClassifierConfig),
    helps={'mask': "Train and test on inputs with this mask kind's missing"
                   " pixels at 0 (center, pattern, random, half); empty:"
                   " whole images, the classifier that scores inpaintings."})
flags.adopt_module_key_flags(_cli)

DATASET = 'svhn'


def _split_dir(split: str) -> str:
  return os.path.join(_DATA_DIR.value or input_pipeline.default_data_dir(),
                      DATASET, split)


def main(argv):
  del argv
  config = _CONFIG()
  _cli.check_run_outputs(_WORKDIR.value, _EXPORT_DIR.value)
  train_dir = _split_dir('train')
  images, description = input_pipeline.training_images(
      DATASET, data_dir=_DATA_DIR.value, size=config.resolution)
  names = input_pipeline.list_images(train_dir)[:len(images)]
  labels = semantic.load_labels(train_dir, names)
  state, meta = train_classifier.train(config, images, labels, _WORKDIR.value,
                                       stop_after=_STOP_AFTER.value)
  variables = {'params': state.params}
  test, test_names = input_pipeline.load_split(
      DATASET, 'test', data_dir=_DATA_DIR.value, size=config.resolution)
  val, val_names = input_pipeline.load_split(
      DATASET, 'validation', data_dir=_DATA_DIR.value,
      size=config.resolution)
  if config.mask:  # the masks experiments.inpaint draws for these images
    test = semantic.mask_inputs(test, config.mask)
    val = semantic.mask_inputs(val, config.mask)
  test_acc = semantic.accuracy(
      variables, test, semantic.load_labels(_split_dir('test'), test_names),
      config=config)
  val_acc = semantic.accuracy(
      variables, val, semantic.load_labels(train_dir, val_names),
      config=config)
  steps = int(state.step)
  print(f'{steps} steps, {meta["wall_seconds"]:.0f} s: test accuracy'
        f' {test_acc:.4f} ({len(test)} images), validation accuracy'
        f' {val_acc:.4f} ({len(val)} images).')
  if _EXPORT_DIR.value:
    command = _cli.command_line('experiments.train_classifier')
    metadata = {'steps': steps, 'wall_seconds': meta['wall_seconds'],
                'data': description, 'test_accuracy': test_acc,
                'test_images': len(test), 'validation_accuracy': val_acc,
                'validation_images': len(val), 'command': command}
    path = semantic.save(_EXPORT_DIR.value, config, variables, metadata)
    model_card.write_card(path)
    print(f'Classifier written to {path}')


if __name__ == '__main__':
  _cli.run(main)

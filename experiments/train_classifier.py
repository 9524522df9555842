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
import numpy as np

from experiments import _cli
from inpaint_jax.evaluation import semantic
from inpaint_jax.training import train_classifier
from inpaint_jax.data import input_pipeline
_DATA_DIR = _cli.define_data_dir_flag()
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory.',
                               required=True)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the final classifier (and its card)'
    ' here, e.g. models/svhn_classifier.')
_CONFIG = _cli.define_config_flags(
    semantic.ClassifierConfig,
    ('num_steps', 'batch_size', 'learning_rate', 'seed', 'mask'),
    positive=('num_steps', 'batch_size'),
    helps={'mask': "Train and test on inputs with this mask kind's missing"
                   " pixels at 0 (center, pattern, random, half); empty:"
                   " whole images, the classifier that scores inpaintings."})
_STOP_AFTER = flags.DEFINE_integer(
    'stop_after', None, 'Stop after this many steps of this invocation.',
    lower_bound=1)
flags.adopt_module_key_flags(_cli)

DATASET = 'svhn'


def _split_dir(split: str) -> str:
  return os.path.join(_DATA_DIR.value or input_pipeline.default_data_dir(),
                      DATASET, split)


def main(argv):
  del argv
  config = _CONFIG()
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
    with open(os.path.join(path, 'README.md'), 'w') as f:
      f.write(_card(os.path.basename(path), config, variables, metadata))
    print(f'Classifier written to {path}')


def _card(name: str, config: semantic.ClassifierConfig, variables,
          metadata: dict) -> str:
  count = sum(int(np.size(x)) for x in
              __import__('jax').tree_util.tree_leaves(variables))
  augmentation = (f'random shifts of up to {config.shift} px, contrast'
                  ' 0.7-1.3, polarity flips' if config.augment else 'none')
  if config.mask:
    purpose = f"""trained and tested on images with the {config.mask} mask's missing
pixels at 0 (the masks of `experiments.inpaint`, seed 0). Not for scoring
inpaintings: an estimate of how much of the digit the {config.mask} mask
leaves, since an inpainting followed by a classifier is itself a classifier
of the masked input."""
  else:
    purpose = """used to score inpaintings semantically: does the
filled image still show its labelled digit? (`experiments.inpaint` and
`experiments.model_card` report it as "semantic accuracy" for SVHN.)"""
  inputs = f', {config.mask}-masked' if config.mask else ''
  return f"""# {name}

A small CNN digit classifier for 64x64 SVHN crops in [-1, 1]
(`inpaint_jax.classifier`), {purpose}

- Architecture: 2x2 average pool to 32x32, 3x3 convolutions with ReLU of
  widths {list(config.widths)} (stride 2 from the second on), dense to
  {config.num_classes} logits; {count} float32 parameters
  ({count * 4 / 2**20:.2f} MB)
- Training: {metadata['steps']} steps, batch {config.batch_size}, Adam lr
  {config.learning_rate}, cross-entropy, seed {config.seed}; augmentation:
  {augmentation}
- Training data: {metadata['data']}; labels from svhn/train/labels.csv
- Training wall time: {metadata['wall_seconds'] / 60:.1f} min (2-core CPU,
  shared with other jobs)
- Test accuracy: {metadata['test_accuracy'] * 100:.1f} % (all
  {metadata['test_images']} svhn/test images{inputs})
- Validation accuracy: {metadata['validation_accuracy'] * 100:.1f} % (the
  {metadata['validation_images']}-image validation slice{inputs})

{_cli.card_command(metadata['command'])}"""


if __name__ == '__main__':
  _cli.run(main)

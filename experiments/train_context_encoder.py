r"""Trains the Context Encoder baseline (Pathak et al. 2016) on one data set.

  python -m experiments.train_context_encoder --dataset=svhn \
      --workdir=runs/svhn64_ce --num_steps=3000 --export_dir=models/svhn64_ce

Trains on <dataset> train minus the validation slice, masks of all four
kinds (one drawn per image), and resumes from the checkpoints in --workdir
when run again (the result-changing settings must stay the same). With
--export_dir it writes the model directory (the CE's weights with their
sha256) and its card: README.md (architecture, parameter counts beside the
DCGAN's, steps, wall time, data, validation PSNR per mask) and
samples.png (validation images: masked input, CE output, pasted, original).
`experiments.reproduce` picks it up as the 'ce' method.
"""

from __future__ import annotations

import dataclasses
import os

from absl import flags

from experiments import _cli
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.training import train_context_encoder as ce_train
from inpaint_jax.data import images as image_io
from inpaint_jax.data import input_pipeline
from inpaint_jax.evaluation import model_card

_DATASET = flags.DEFINE_enum('dataset', 'svhn', input_pipeline.DATASETS,
                             'Data set to train on.')
_DATA_DIR = _cli.define_data_dir_flag()
_SOURCE = _cli.define_source_flag()
_WORKDIR, _STOP_AFTER = _cli.define_run_flags()
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the final model and its card here,'
    ' e.g. models/svhn64_ce.')
_VALIDATION_IMAGES = flags.DEFINE_integer(
    'validation_images', 64, 'Validation-slice images the card is scored'
    ' on.', lower_bound=1)
# One flag per ContextEncoderConfig field.
_CONFIG = _cli.define_config_flags(
    ce.ContextEncoderConfig,
    tuple(f.name for f in dataclasses.fields(ce.ContextEncoderConfig)
          if f.name != 'mask_kinds'),
    helps={
        'resolution': 'Image side in pixels.',
        'channels': 'Image channels.',
        'width': 'Channels of the first encoder layer (doubling to 4x4; 32'
                 ' at 64x64: 32-64-128-256).',
        'kernel': 'Convolution kernel size (5 or 4).',
        'd_width': 'Width of the adversarial discriminator.',
        'lambda_rec': 'Weight of the L2 reconstruction loss.',
        'lambda_adv': 'Weight of the adversarial loss.',
        'overlap': 'Pixels of known context around the hole that the'
                   ' reconstruction loss also counts.',
        'overlap_weight': 'Weight of those border pixels (the hole: 1).',
        'flip': 'Random horizontal flips.',
    })
_MASK_KINDS = flags.DEFINE_multi_enum(
    'mask_kinds', list(ce.ContextEncoderConfig.mask_kinds),
    list(ce.ContextEncoderConfig.mask_kinds),
    'Mask kinds drawn in training (one uniformly per image).')
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  config = _CONFIG(mask_kinds=tuple(_MASK_KINDS.value))
  _cli.check_run_outputs(_WORKDIR.value, _EXPORT_DIR.value)
  dataset = _DATASET.value
  images, description = input_pipeline.training_images(
      dataset, source=_SOURCE.value, data_dir=_DATA_DIR.value,
      size=config.resolution)
  state, meta = ce_train.train(config, images, _WORKDIR.value,
                               stop_after=_STOP_AFTER.value,
                               data_description=description)
  steps = int(state.step)
  print(f'{steps} steps, {meta["wall_seconds"]:.0f} s of training.')
  if not _EXPORT_DIR.value:
    return
  variables = ce_train.network_variables(state)
  val, _ = input_pipeline.load_split(
      dataset, 'validation', source=_SOURCE.value, data_dir=_DATA_DIR.value,
      size=config.resolution, limit=_VALIDATION_IMAGES.value)
  scores = ce_train.validation_scores(config, variables, val)
  command = _cli.command_line('experiments.train_context_encoder')
  metadata = {'dataset': dataset, 'command': command,
              'validation': scores, 'validation_images': len(val)}
  path = ce_train.export(_WORKDIR.value, _EXPORT_DIR.value, metadata)
  masks = ce_train.sample_masks(config)
  shown = val[:len(masks)]
  image_io.save_png(os.path.join(path, 'samples.png'), ce_train.sample_grid(
      shown, masks[:len(shown)],
      ce.predict(config, variables, shown, masks[:len(shown)])))
  model_card.write_card(path)
  for kind, s in scores.items():
    print(f'{kind}: PSNR {s["psnr"]:.2f} dB (hole {s["psnr_hole"]:.2f} dB),'
          f' SSIM {s["ssim"]:.3f}; mean fill {s["mean_fill_psnr"]:.2f} dB')
  print(f'Context Encoder written to {path}')


if __name__ == '__main__':
  _cli.run(main)

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
import jax
import numpy as np

from experiments import _cli
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.training import train_context_encoder as ce_train
from inpaint_jax.data import images as image_io
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks as masks_lib
from inpaint_jax import models
from inpaint_jax.config import ModelConfig

_DATASET = flags.DEFINE_enum('dataset', 'svhn', input_pipeline.DATASETS,
                             'Data set to train on.')
_DATA_DIR = _cli.define_data_dir_flag()
_SOURCE = _cli.define_source_flag()
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory.',
                               required=True)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the final model and its card here,'
    ' e.g. models/svhn64_ce.')
_STOP_AFTER = flags.DEFINE_integer(
    'stop_after', None, 'Stop after this many steps of this invocation (the'
    ' run can be resumed).', lower_bound=1)
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
  _, _, metadata = ce.restore(path)
  masks = ce_train.sample_masks(config)
  shown = val[:len(masks)]
  image_io.save_png(os.path.join(path, 'samples.png'), ce_train.sample_grid(
      shown, masks[:len(shown)],
      ce.predict(config, variables, shown, masks[:len(shown)])))
  with open(os.path.join(path, 'README.md'), 'w') as f:
    f.write(_card(os.path.basename(path), config, variables, metadata))
  for kind, s in scores.items():
    print(f'{kind}: PSNR {s["psnr"]:.2f} dB (hole {s["psnr_hole"]:.2f} dB),'
          f' SSIM {s["ssim"]:.3f}; mean fill {s["mean_fill_psnr"]:.2f} dB')
  print(f'Context Encoder written to {path}')


def _count(tree) -> int:
  return sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(tree))


def _card(name: str, config: ce.ContextEncoderConfig, variables,
          metadata: dict) -> str:
  count = _count(variables['params'])
  d_count = _count(models.init_variables(
      ce.discriminator_config(config), jax.random.PRNGKey(0))[1]['params'])
  dcgan = ModelConfig(resolution=config.resolution, width=32,
                      kernel=config.kernel, channels=config.channels)
  g_vars, d_vars = models.init_variables(dcgan, jax.random.PRNGKey(0))
  g_count, dcgan_d = _count(g_vars['params']), _count(d_vars['params'])
  widths = [config.width * 2**i for i in range(config.num_layers)]
  side = 4
  rows = '\n'.join(
      f"| {kind} | {s['psnr']:.2f} | {s['psnr_hole']:.2f} | {s['ssim']:.3f} |"
      f" {s['mean_fill_psnr']:.2f} |"
      for kind, s in sorted(metadata['validation'].items(),
                            key=lambda item: masks_lib.KINDS.index(item[0])))
  train = metadata.get('wall_seconds', 0.0)
  return f"""# {name}

The Context Encoder baseline (Pathak et al., CVPR 2016) of the paper's
Table 1, for 64x64 {metadata['dataset']} images in [-1, 1]
(`inpaint_jax/context_encoder.py`, trained with
`experiments.train_context_encoder`). It sees the masked image and the mask
(4 channels: y * M, M) and predicts the whole image in one pass; the
prediction is pasted into the hole (known pixels kept exactly; no Poisson
blending). `experiments.reproduce` runs it as the method 'ce'.

## Model

- Encoder: {config.kernel}x{config.kernel} stride-2 convolutions of widths
  {widths} ({config.resolution}x{config.resolution} -> {side}x{side}), batch
  norm on all but the first, leaky ReLU 0.2
- Bottleneck: channel-wise fully connected ({widths[-1]} separate
  {side * side}x{side * side} dense layers, one per channel), then a 1x1
  convolution mixing the channels, batch norm, ReLU
- Decoder: {config.kernel}x{config.kernel} stride-2 transposed convolutions
  of widths {list(reversed(widths[:-1])) + [config.channels]}, batch norm,
  ReLU, tanh
- Parameters: {count:,} (float32, {count * 4 / 2**20:.1f} MB); its
  adversarial discriminator (`models.Discriminator`, width
  {config.d_width}, used in training only, not shipped): {d_count:,}. For
  comparison the width-32 DCGAN of `models/{metadata['dataset']}64`: G
  {g_count:,} + D {dcgan_d:,} = {g_count + dcgan_d:,}
- Settings: `context_encoder_config.json`

## Training

- Loss: {config.lambda_rec} x L2 reconstruction + {config.lambda_adv} x
  adversarial (non-saturating, on the whole inpainted image: known pixels
  real, prediction in the hole), as Pathak et al.'s 0.999 / 0.001. The L2
  weighs the hole 1 and known pixels within {config.overlap} px of it
  {config.overlap_weight} (Pathak et al. weigh their border 10x; with the
  random mask every known pixel is in the border, so here the hole
  dominates), each image normalised by its total weight
- Masks: one per image, its kind drawn uniformly from
  {', '.join(config.mask_kinds)} (`masks.make`)
- {metadata['steps']} steps, batch {config.batch_size}, Adam lr
  {config.learning_rate}, beta1 {config.beta1}, flips {config.flip}, seed
  {config.seed}
- Training data: {metadata.get('data', '')}
- Training wall time: {train / 60:.1f} min on {metadata.get('machine', '?')}
  (2-core CPU shared with other jobs)
- Last logged training metrics: {', '.join(
      f'{k} {v:.4g}' for k, v in sorted(metadata.get('metrics', {}).items()))}

## Validation

The first {metadata['validation_images']} images of the validation slice.

Masks as `experiments.reproduce` draws them (seed 0); PSNR (dB) over the
whole image and over the hole only; "mean fill" fills the hole with the
mean colour of the known pixels.

| mask | PSNR | PSNR hole | SSIM | mean-fill PSNR |
| --- | --- | --- | --- | --- |
{rows}

`samples.png`: validation images, two per mask kind; columns: masked input,
CE output, pasted, original.

![samples](samples.png)

{_cli.card_command(metadata['command'])}"""


if __name__ == '__main__':
  _cli.run(main)

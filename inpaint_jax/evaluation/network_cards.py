"""The cards of the single-network model directories (`checkpoints.save_network`).

The z encoder, the SVHN digit classifier and the Context Encoder baseline:
each card is built from what its directory stores (the config, the weights
for the parameter count, the metadata its trainer recorded: steps, wall
time, validation scores, the command), so `model_card.write_card` can
(re)write it from the directory alone. The Markdown is `report.cards`'.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax

from inpaint_jax import encoder
from inpaint_jax import masks as masks_lib
from inpaint_jax import models
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.config import ModelConfig
from inpaint_jax.errors import MissingInputError
from inpaint_jax.evaluation import semantic
from inpaint_jax.report import cards

# 2-core CPU wall times: say the machine was shared.
_SHARED_CPU = '(2-core CPU, shared with other jobs)'


def card(model_dir: str) -> str:
  """The card of the encoder, classifier or Context Encoder in `model_dir`.

  Raises:
    MissingInputError: none of these is there.
  """
  name = os.path.basename(os.path.normpath(model_dir))
  for config_file, card_of in KINDS.items():
    if os.path.isfile(os.path.join(model_dir, config_file)):
      return card_of(model_dir, name)
  raise MissingInputError(
      f'No model in {model_dir!r}: no model_config.json or'
      f' {", ".join(KINDS)}.')


def encoder_card(model_dir: str, name: str) -> str:
  """The card of an encoder directory (`encoder.save`)."""
  loaded = encoder.restore(model_dir)
  config, metadata = loaded.config, loaded.metadata
  generator = loaded.generator['path']
  count = models.parameter_count(loaded.variables)  # batch stats too
  last = ', '.join(f'{k} {v:.4f}' for k, v in metadata['metrics'].items()
                   if not (config.loss == 'latent' and k == 'pixel_loss'))
  validation = metadata['validation']
  # '<K> iterations' columns, by K (the stored JSON sorts them as text).
  columns = sorted(next(iter(validation.values())) if validation else [],
                   key=lambda column: int(column.split()[0]))
  return cards.render(
      cards.title(
          name,
          'An encoder E(y * M, M) -> z (`inpaint_jax.encoder`) that predicts'
          f' where the z-search starts, for the generator `{generator}` (and'
          ' only for it: its `variables_sha256` is recorded in'
          f' `{encoder.CONFIG_FILE}` and checked). `python -m'
          f' experiments.inpaint --checkpoint={generator}'
          f' --encoder=models/{name}` starts each image\'s search from the'
          ' predicted z (the first restart; any others random) instead of a'
          ' random z.'),
      cards.facts([
          ('Architecture', "the DCGAN discriminator's layout on 4 input"
           ' channels (y * M and M): stride-2 5x5 convolutions of widths'
           f' {[config.width * 2**i for i in range(4)]}, batch norm on all'
           ' but the first, leaky ReLU 0.2, dense to z_dim, tanh;'
           f' {count} float32 numbers ({cards.megabytes(count):.2f} MB)'),
          ('Training data', "none; the generator's own samples: z ~ U[-1, 1],"
           ' x = G(z) (batch norm in inference mode), one mask per image of a'
           f' kind drawn uniformly from {list(config.mask_kinds)}'),
          ('Loss', f'`{config.loss}` (latent: mean (E(x * M, M) - z)^2;'
           ' pixel: mean L1 of G(E(x * M, M)) - x on the known pixels; both:'
           f' latent + {config.pixel_weight:g} x pixel)'),
          ('Training', f'{metadata["steps"]} steps, batch {config.batch_size},'
           f' Adam lr {config.learning_rate}, seed {config.seed}; last {last}'),
          ('Training wall time',
           f'{metadata["wall_seconds"] / 60:.1f} min {_SHARED_CPU}'),
      ]),
      f'Validation ({metadata["dataset"]}, the first'
      f' {metadata.get("validation_images", 64)} images of the validation'
      ' slice, masks from PRNGKey(0) as in benchmarks/time_to_quality.py, the'
      ' model card\'s window), written by the command below: mean PSNR (dB) of'
      " the Poisson-blended result with the encoder's z alone (0 iterations)"
      ' and after K Adam steps from it:', '',
      cards.score_table(['mask', *columns], validation,
                        [(c, '.2f') for c in columns], order=masks_lib.KINDS)
      if validation else '(not scored)', '',
      cards.command(metadata['command']))


def classifier_card(model_dir: str, name: str) -> str:
  """The card of a digit classifier directory (`semantic.save`)."""
  config, variables, metadata = semantic.restore(model_dir)
  count = models.parameter_count(variables)
  if config.mask:
    purpose = (
        f"trained and tested on images with the {config.mask} mask's missing"
        ' pixels at 0 (the masks of `experiments.inpaint`, seed 0). Not for'
        ' scoring inpaintings: an estimate of how much of the digit the'
        f' {config.mask} mask leaves, since an inpainting followed by a'
        ' classifier is itself a classifier of the masked input.')
  else:
    purpose = ('used to score inpaintings semantically: does the filled image'
               ' still show its labelled digit? (`experiments.inpaint` and'
               ' `experiments.model_card` report it as "semantic accuracy"'
               ' for SVHN.)')
  inputs = f', {config.mask}-masked' if config.mask else ''
  augmentation = (f'random shifts of up to {config.shift} px, contrast'
                  ' 0.7-1.3, polarity flips' if config.augment else 'none')
  return cards.render(
      cards.title(name, 'A small CNN digit classifier for 64x64 SVHN crops in'
                  ' [-1, 1] (`inpaint_jax.evaluation.semantic`), ' + purpose),
      cards.facts([
          ('Architecture', '2x2 average pool to 32x32, 3x3 convolutions with'
           f' ReLU of widths {list(config.widths)} (stride 2 from the second'
           f' on), dense to {config.num_classes} logits; {count} float32'
           f' parameters ({cards.megabytes(count):.2f} MB)'),
          ('Training', f'{metadata["steps"]} steps, batch {config.batch_size},'
           f' Adam lr {config.learning_rate}, cross-entropy, seed'
           f' {config.seed}; augmentation: {augmentation}'),
          ('Training data',
           f'{metadata["data"]}; labels from svhn/train/labels.csv'),
          ('Training wall time',
           f'{metadata["wall_seconds"] / 60:.1f} min {_SHARED_CPU}'),
          ('Test accuracy', f'{metadata["test_accuracy"] * 100:.1f} % (all'
           f' {metadata["test_images"]} svhn/test images{inputs})'),
          ('Validation accuracy',
           f'{metadata["validation_accuracy"] * 100:.1f} % (the'
           f' {metadata["validation_images"]}-image validation slice'
           f'{inputs})'),
      ]),
      cards.command(metadata['command']))


def context_encoder_card(model_dir: str, name: str) -> str:
  """The card of a Context Encoder directory (`ce.save`), with parameter
  counts beside the width-32 DCGAN's."""
  config, variables, metadata = ce.restore(model_dir)
  widths = [config.width * 2**i for i in range(config.num_layers)]
  side = 4  # the encoder halves the image down to 4x4
  train = metadata.get('wall_seconds', 0.0)
  last = ', '.join(f'{k} {v:.4g}'
                   for k, v in sorted(metadata.get('metrics', {}).items()))
  return cards.render(
      cards.title(
          name,
          "The Context Encoder baseline (Pathak et al., CVPR 2016) of the"
          f" paper's Table 1, for 64x64 {metadata['dataset']} images in"
          ' [-1, 1] (`inpaint_jax/baselines/context_encoder.py`, trained with'
          ' `experiments.train_context_encoder`). It sees the masked image and'
          ' the mask (4 channels: y * M, M) and predicts the whole image in'
          ' one pass; the prediction is pasted into the hole (known pixels'
          ' kept exactly; no Poisson blending). `experiments.reproduce` runs'
          " it as the method 'ce'."),
      cards.section('Model', cards.facts([
          ('Encoder', f'{config.kernel}x{config.kernel} stride-2 convolutions'
           f' of widths {widths} ({config.resolution}x{config.resolution} ->'
           f' {side}x{side}), batch norm on all but the first, leaky ReLU'
           ' 0.2'),
          ('Bottleneck', f'channel-wise fully connected ({widths[-1]} separate'
           f' {side * side}x{side * side} dense layers, one per channel),'
           ' then a 1x1 convolution mixing the channels, batch norm, ReLU'),
          ('Decoder', f'{config.kernel}x{config.kernel} stride-2 transposed'
           ' convolutions of widths'
           f' {list(reversed(widths[:-1])) + [config.channels]}, batch norm,'
           ' ReLU, tanh'),
          ('Parameters', _ce_parameters(config, variables,
                                        metadata['dataset'])),
          ('Settings', f'`{ce.CONFIG_FILE}`'),
      ])),
      cards.section('Training', cards.facts([
          ('Loss', f'{config.lambda_rec} x L2 reconstruction +'
           f' {config.lambda_adv} x adversarial (non-saturating, on the whole'
           ' inpainted image: known pixels real, prediction in the hole), as'
           " Pathak et al.'s 0.999 / 0.001. The L2 weighs the hole 1 and"
           f' known pixels within {config.overlap} px of it'
           f' {config.overlap_weight} (Pathak et al. weigh their border 10x;'
           ' with the random mask every known pixel is in the border, so here'
           ' the hole dominates), each image normalised by its total weight'),
          ('Masks', 'one per image, its kind drawn uniformly from'
           f' {", ".join(config.mask_kinds)} (`masks.make`)'),
          f'{metadata["steps"]} steps, batch {config.batch_size}, Adam lr'
          f' {config.learning_rate}, beta1 {config.beta1}, flips'
          f' {config.flip}, seed {config.seed}',
          ('Training data', metadata.get('data', '')),
          ('Training wall time', f'{train / 60:.1f} min on'
           f' {metadata.get("machine", "?")} (2-core CPU shared with other'
           ' jobs)'),
          ('Last logged training metrics', last),
      ])),
      cards.section(
          'Validation',
          f'The first {metadata["validation_images"]} images of the'
          ' validation slice.', '',
          'Masks as `experiments.reproduce` draws them (seed 0); PSNR (dB)'
          ' over the whole image and over the hole only; "mean fill" fills'
          ' the hole with the mean colour of the known pixels.', '',
          cards.score_table(
              ('mask', 'PSNR', 'PSNR hole', 'SSIM', 'mean-fill PSNR'),
              metadata['validation'],
              [('psnr', '.2f'), ('psnr_hole', '.2f'), ('ssim', '.3f'),
               ('mean_fill_psnr', '.2f')], order=masks_lib.KINDS), '',
          '`samples.png`: validation images, two per mask kind; columns:'
          ' masked input, CE output, pasted, original.', '',
          cards.image('samples', 'samples.png'), ''),
      cards.command(metadata['command']))


def _ce_parameters(config: ce.ContextEncoderConfig, variables: Any,
                   dataset: str) -> str:
  """The Context Encoder's parameter count, its adversary's and the width-32
  DCGAN's at the same resolution (counted on shapes, nothing computed)."""
  count = models.parameter_count(variables['params'])
  key = jax.random.PRNGKey(0)
  d_count = models.parameter_count(jax.eval_shape(
      lambda: models.init_variables(ce.discriminator_config(config), key)
  )[1]['params'])
  dcgan = ModelConfig(resolution=config.resolution, width=32,
                      kernel=config.kernel, channels=config.channels)
  g_vars, d_vars = jax.eval_shape(lambda: models.init_variables(dcgan, key))
  g_count = models.parameter_count(g_vars['params'])
  dcgan_d = models.parameter_count(d_vars['params'])
  return (f'{count:,} (float32, {cards.megabytes(count):.1f} MB); its'
          ' adversarial discriminator (`models.Discriminator`, width'
          f' {config.d_width}, used in training only, not shipped):'
          f' {d_count:,}. For comparison the width-32 DCGAN of'
          f' `models/{dataset}64`: G {g_count:,} + D {dcgan_d:,} ='
          f' {g_count + dcgan_d:,}')


# Each kind's config file and card.
KINDS: dict[str, Callable[[str, str], str]] = {
    encoder.CONFIG_FILE: encoder_card,
    semantic.CONFIG_FILE: classifier_card,
    ce.CONFIG_FILE: context_encoder_card,
}

r"""Trains the z encoder of a generator (no data needed: G's own samples).

  python -m experiments.train_encoder --generator=models/celeba64 \
      --workdir=runs/celeba64_encoder --num_steps=2400 \
      --export_dir=models/celeba64_encoder

Resumes from the checkpoints in --workdir when run again (a killed run loses
at most --checkpoint_every steps; --num_steps may grow). With --dataset set
(default: from the generator's directory name, e.g. celeba64 -> celeba) it
then scores the encoder on that data set's validation slice: mean PSNR of
the blended result per mask with the encoder's z alone and after
--validation_iterations Adam steps from it. With --export_dir it writes the
encoder directory (it records the generator, checked when used) with a card
(README.md).
"""

from __future__ import annotations

import os

from absl import flags
import jax
import numpy as np

from experiments import _cli
from inpaint_jax import blending
from inpaint_jax import checkpoints
from inpaint_jax import encoder
from inpaint_jax.training import train_encoder
from inpaint_jax import inpaint
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks
from inpaint_jax import metrics
from inpaint_jax.evaluation import reproduce
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Discriminator, Generator

_GENERATOR = flags.DEFINE_string('generator', None, 'Generator model'
                                 ' directory, e.g. models/celeba64.',
                                 required=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory.',
                               required=True)
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the encoder (and its card) here, e.g.'
    ' models/celeba64_encoder.')
_CONFIG = _cli.define_config_flags(
    encoder.EncoderConfig,
    ('num_steps', 'batch_size', 'learning_rate', 'width', 'pixel_weight',
     'seed'),
    helps={'width': 'Channels of the first layer.',
           'pixel_weight': 'Weight of the pixel term (--loss=both).'},
    positive=('num_steps', 'batch_size', 'width'))
_LOSS = flags.DEFINE_enum('loss', encoder.EncoderConfig.loss,
                          list(encoder.LOSSES),
                          'latent: (E - z)^2; pixel: L1 of G(E) on the known'
                          ' pixels; both: their sum (--pixel_weight).')
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    'checkpoint_every', 100, 'Steps between checkpoints.', lower_bound=1)
_STOP_AFTER = flags.DEFINE_integer(
    'stop_after', None, 'Stop after this many steps of this invocation.',
    lower_bound=1)
_DATASET = flags.DEFINE_string(
    'dataset', None, 'Data set whose validation slice scores the encoder'
    ' (default: from the generator\'s name, e.g. celeba64 -> celeba; "none":'
    ' skip).')
_VAL_IMAGES = flags.DEFINE_integer('validation_images', 64,
                                   'Validation images per mask.',
                                   lower_bound=1)
_VAL_ITERATIONS = flags.DEFINE_list(
    'validation_iterations', ['0', '50'], 'Adam steps from the encoder\'s z'
    ' scored on the validation slice.')
_DATA_DIR = _cli.define_data_dir_flag()
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  config = _CONFIG(loss=_LOSS.value)
  iterations = [int(i) for i in _VAL_ITERATIONS.value]
  dataset = _dataset()
  model, g_vars, d_vars = checkpoints.restore_model(_GENERATOR.value)
  generator = encoder.generator_record(_GENERATOR.value)
  state, meta = train_encoder.train(
      model, config, g_vars, _WORKDIR.value, generator=generator,
      checkpoint_every=_CHECKPOINT_EVERY.value, stop_after=_STOP_AFTER.value)
  steps = int(state.step)
  print(f'{steps} steps, {meta["wall_seconds"]:.0f} s, last metrics'
        f' {meta["metrics"]}.')
  loaded = encoder.LoadedEncoder(
      model, config, {'params': state.params,
                      'batch_stats': state.batch_stats}, generator, {})
  validation = {}
  if dataset and steps == config.num_steps:
    validation = validate(loaded, g_vars, d_vars, dataset, iterations)
  if _EXPORT_DIR.value:
    command = _cli.command_line('experiments.train_encoder')
    metadata = {'steps': steps, 'wall_seconds': meta['wall_seconds'],
                'metrics': meta['metrics'], 'dataset': dataset,
                'validation': validation,
                'validation_images': _VAL_IMAGES.value, 'command': command}
    path = encoder.save(_EXPORT_DIR.value, model, config, loaded.variables,
                        generator, metadata)
    with open(os.path.join(path, 'README.md'), 'w') as f:
      f.write(_card(os.path.basename(path), config, loaded.variables,
                    metadata, _GENERATOR.value))
    print(f'Encoder written to {path}')


def _dataset() -> str | None:
  if _DATASET.value == 'none':
    return None
  if _DATASET.value:
    return _DATASET.value
  name = os.path.basename(os.path.normpath(_GENERATOR.value))
  return next((d for d in input_pipeline.DATASETS if name.startswith(d)),
              None)


def validate(loaded: encoder.LoadedEncoder, g_vars, d_vars, dataset: str,
             iterations: list[int]) -> dict[str, dict[str, float]]:
  """{mask: {'<K> iterations': mean PSNR (dB), blended}} on the validation
  slice, with the encoder's z and K Adam steps from it (the card's window);
  masks and images as in benchmarks/time_to_quality.py (PRNGKey(0))."""
  from inpaint_jax.evaluation import evaluate  # Only when validating.
  images, _ = input_pipeline.load_split(
      dataset, 'validation', data_dir=_DATA_DIR.value,
      size=loaded.model.resolution, limit=_VAL_IMAGES.value)
  mask_key, _ = jax.random.split(jax.random.PRNGKey(0))
  generator = Generator(loaded.model)
  discriminator = Discriminator(loaded.model)
  out = {}
  for kind in masks.KINDS:
    m = evaluate.make_masks(kind, None, len(images), loaded.model.resolution,
                            mask_key)
    z0 = encoder.initial_latents(loaded, images * m, m, jax.random.PRNGKey(0))
    out[kind] = {}
    for k in iterations:
      search_config = SearchConfig(iterations=k,
                                   window=reproduce.CARD_WINDOWS[dataset])
      result = inpaint.search(generator, discriminator, g_vars, d_vars,
                              images * m, m, jax.random.PRNGKey(0),
                              search_config, initial_z=z0)
      blended = blending.poisson_blend(result.generated, images * m, m)
      out[kind][f'{k} iterations'] = float(np.mean(
          metrics.psnr(np.clip(blended, -1, 1), images)))
    print(f'validation {dataset} {kind}: ' + ', '.join(
        f'{k}: {v:.2f} dB' for k, v in out[kind].items()), flush=True)
  return out


def _card(name: str, config: encoder.EncoderConfig, variables,
          metadata: dict, generator: str, notes: str = '') -> str:
  """The encoder's README.md; `notes` (markdown) go before the command."""
  count = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(variables))
  widths = [config.width * 2**i for i in range(4)]
  lines = []
  validation = metadata['validation']
  if validation:
    columns = list(next(iter(validation.values())))
    lines += ['| mask | ' + ' | '.join(columns) + ' |',
              '| --- |' + ' --- |' * len(columns)]
    lines += [f'| {kind} | ' + ' | '.join(
        f'{v:.2f}' for v in validation[kind].values()) + ' |'
              for kind in masks.KINDS if kind in validation]
  table = '\n'.join(lines) or '(not scored)'
  last = ', '.join(f'{k} {v:.4f}' for k, v in metadata['metrics'].items()
                   if not (config.loss == 'latent' and k == 'pixel_loss'))
  images = metadata.get('validation_images', 64)
  return f"""# {name}

An encoder E(y * M, M) -> z (`inpaint_jax.encoder`) that predicts where the
z-search starts, for the generator `{generator}` (and only for it: its
`variables_sha256` is recorded in `encoder_config.json` and checked).
`python -m experiments.inpaint --checkpoint={generator}
--encoder=models/{name}` starts each image's search from the predicted z
(the first restart; any others random) instead of a random z.

- Architecture: the DCGAN discriminator's layout on 4 input channels
  (y * M and M): stride-2 5x5 convolutions of widths {widths},
  batch norm on all but the first, leaky ReLU 0.2, dense to z_dim, tanh;
  {count} float32 numbers ({count * 4 / 2**20:.2f} MB)
- Training data: none; the generator's own samples: z ~ U[-1, 1],
  x = G(z) (batch norm in inference mode), one mask per image of a kind
  drawn uniformly from {list(config.mask_kinds)}
- Loss: `{config.loss}` (latent: mean (E(x * M, M) - z)^2; pixel: mean L1
  of G(E(x * M, M)) - x on the known pixels; both: latent +
  {config.pixel_weight:g} x pixel)
- Training: {metadata['steps']} steps, batch {config.batch_size}, Adam lr
  {config.learning_rate}, seed {config.seed}; last {last}
- Training wall time: {metadata['wall_seconds'] / 60:.1f} min (2-core CPU,
  shared with other jobs)

Validation ({metadata['dataset']}, the first {images} images of the
validation slice, masks from PRNGKey(0) as in benchmarks/time_to_quality.py,
the model card's window), written by the command below: mean PSNR (dB) of the
Poisson-blended result with the encoder's z alone (0 iterations) and after K
Adam steps from it:

{table}
{notes}
{_cli.card_command(metadata['command'])}"""


if __name__ == '__main__':
  _cli.run(main)

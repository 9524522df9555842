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
from inpaint_jax.evaluation import model_card
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.models import Discriminator, Generator

_GENERATOR = flags.DEFINE_string('generator', None, 'Generator model'
                                 ' directory, e.g. models/celeba64.',
                                 required=True)
_WORKDIR, _STOP_AFTER = _cli.define_run_flags()
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the encoder (and its card) here, e.g.'
    ' models/celeba64_encoder.')
_CONFIG = _cli.define_config_flags(
    encoder.EncoderConfig,
    ('batch_size', 'learning_rate', 'width', 'pixel_weight', 'seed')
    + _cli.bookkeeping_fields(encoder.EncoderConfig),
    helps={'width': 'Channels of the first layer.',
           'pixel_weight': 'Weight of the pixel term (--loss=both).'},
    positive=('batch_size', 'width')
    + _cli.bookkeeping_fields(encoder.EncoderConfig))
_LOSS = flags.DEFINE_enum('loss', encoder.EncoderConfig.loss,
                          list(encoder.LOSSES),
                          'latent: (E - z)^2; pixel: L1 of G(E) on the known'
                          ' pixels; both: their sum (--pixel_weight).')
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
  iterations = _validation_iterations()
  dataset = _dataset()
  _cli.check_run_outputs(_WORKDIR.value, _EXPORT_DIR.value)
  model, g_vars, d_vars = checkpoints.restore_model(_GENERATOR.value)
  generator = encoder.generator_record(_GENERATOR.value)
  state, meta = train_encoder.train(
      model, config, g_vars, _WORKDIR.value, generator=generator,
      stop_after=_STOP_AFTER.value)
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
    model_card.write_card(path)
    print(f'Encoder written to {path}')


def _validation_iterations() -> list[int]:
  """--validation_iterations as whole numbers >= 0, else InputError."""
  try:
    iterations = [int(i) for i in _VAL_ITERATIONS.value]
  except ValueError:
    iterations = [-1]
  if not iterations or min(iterations) < 0:
    raise InputError(
        f'--validation_iterations={",".join(_VAL_ITERATIONS.value)}: give'
        ' whole numbers >= 0, e.g. --validation_iterations=0,50.')
  return iterations


def _dataset() -> str | None:
  if _DATASET.value == 'none':
    return None
  if _DATASET.value:
    if _DATASET.value not in input_pipeline.DATASETS:
      raise InputError(
          f'--dataset={_DATASET.value} is not a data set; use one of'
          f' {", ".join(input_pipeline.DATASETS)}, or none to skip the'
          ' validation.')
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


if __name__ == '__main__':
  _cli.run(main)

"""An encoder that predicts the z-search's starting latent (issue #12).

The z-search of Sec. 3.3 starts from a random z and needs ~1500 Adam steps.
A small network E(y * M, M) -> z in [-1, 1]^z_dim, trained on the
generator's own samples (no data needed: z ~ U[-1, 1], x = G(z), a random
mask of one of the four kinds), gives a starting point that is already close,
so a few dozen steps reach the quality of the full search
(`inpaint.search(..., initial_z=...)`, `methods.zsearch_method(...,
encoder=...)`, `experiments.inpaint --encoder=DIR`).

* `EncoderConfig`: architecture and training settings (saved with it).
* `Encoder`: the DCGAN discriminator's layout (stride-2 5x5 convolutions,
  batch norm on all but the first, leaky ReLU 0.2) on 4 input channels
  (y * M and M), a dense layer to z_dim, tanh.
* `predict_latents`: (N, z_dim) latents of masked images, jitted.
* `save` / `restore`: an encoder model directory (`encoder_config.json`
  naming the generator it was trained for and its variables_sha256, a
  `variables_sha256` of its own, orbax `variables/`); `check_generator`
  refuses an encoder with another generator. Training:
  `training.train_encoder`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from inpaint_jax import checkpoints
from inpaint_jax import inpaint
from inpaint_jax import masks as masks_lib
from inpaint_jax.config import (AT_LEAST_1, NON_NEGATIVE, TRAINING_RULES,
                                DictConfig, ModelConfig, check_fields)
from inpaint_jax.errors import InputError
from inpaint_jax.models import Downsample, kernel_init

CONFIG_FILE = 'encoder_config.json'
VARIABLES_DIR = checkpoints.VARIABLES_DIR
LOSSES = ('latent', 'pixel', 'both')


@dataclasses.dataclass(frozen=True)
class EncoderConfig(DictConfig):
  """Encoder architecture and training settings (saved with the encoder).

  Attributes:
    width: channels of the first convolution; each later one doubles them
      (width 16 at 64x64: 16-32-64-128, about 0.6 M parameters).
    loss: 'latent': mean (E(x * M, M) - z)^2 over the z_dim entries (the
      shipped encoders: as good as 'both' on the CelebA validation slice
      for the same training time, at twice the steps per second; see their
      cards); 'pixel': the mean L1 between G(E(x * M, M)) and x on the known
      pixels; 'both': latent + pixel_weight * pixel.
    pixel_weight: weight of the pixel term with loss='both'.
    batch_size: global batch (generator samples per step).
    learning_rate: Adam step size.
    num_steps: training steps.
    seed: seed of the initial weights and of every batch.
    mask_kinds: the mask kinds drawn (uniformly, per image) in training.
    checkpoint_every, keep_checkpoints, log_every: bookkeeping (steps
      between checkpoints, checkpoints kept, steps between metrics.jsonl
      lines), as in every trainer's config.
  """
  width: int = 16
  loss: str = 'latent'
  pixel_weight: float = 1.0
  batch_size: int = 64
  learning_rate: float = 5e-4
  num_steps: int = 2400
  seed: int = 0
  mask_kinds: tuple[str, ...] = masks_lib.KINDS
  checkpoint_every: int = 100
  keep_checkpoints: int = 2
  log_every: int = 25

  def __post_init__(self):
    check_fields(self, {
        'width': AT_LEAST_1,
        'loss': (lambda v: v in LOSSES, f'one of {LOSSES}'),
        'pixel_weight': NON_NEGATIVE,
        'mask_kinds': (lambda v: len(v) > 0 and set(v) <= set(
            masks_lib.KINDS), f'a non-empty subset of {masks_lib.KINDS}'),
        **{k: TRAINING_RULES[k] for k in (
            'batch_size', 'learning_rate', 'num_steps', 'checkpoint_every',
            'keep_checkpoints', 'log_every')},
    })


class Encoder(nn.Module):
  """E: (y * M, M) -> z (N, z_dim) in (-1, 1).

  Attributes:
    model: the generator's ModelConfig (resolution, channels, z_dim,
      kernel and the number of stride-2 layers come from it).
    width: channels of the first layer (doubled per layer).
    axis_name: pmap axis for the batch-norm statistics in training.
  """
  model: ModelConfig
  width: int = 16
  axis_name: str | None = None

  @nn.compact
  def __call__(self, masked: jax.Array, masks: jax.Array,
               train: bool = False) -> jax.Array:
    """masked (N, R, R, C) in [-1, 1] (0 at missing pixels), masks
    (N, R, R, 1), 1 = known -> (N, z_dim) in (-1, 1)."""
    x = jnp.concatenate([masked * masks, masks], axis=-1)
    for i in range(self.model.num_layers):
      x = Downsample(self.width * 2**i, self.model.kernel, use_bias=(i == 0),
                     kernel_init=kernel_init)(x, train)
      if i > 0:
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                         epsilon=1e-5, axis_name=self.axis_name)(x)
      x = nn.leaky_relu(x, 0.2)
    x = x.reshape(x.shape[0], -1)
    return jnp.tanh(nn.Dense(self.model.z_dim, kernel_init=kernel_init)(x))


def init_variables(model: ModelConfig, config: EncoderConfig,
                   key: jax.Array) -> dict[str, Any]:
  """{'params', 'batch_stats'} of a fresh encoder."""
  r = model.resolution
  return Encoder(model, config.width).init(
      key, jnp.zeros((1, r, r, model.channels)), jnp.ones((1, r, r, 1)))


@functools.partial(jax.jit, static_argnames=('model', 'width'))
def _predict(variables, images, masks, *, model, width):
  return Encoder(model, width).apply(variables, images * masks, masks)


@dataclasses.dataclass(frozen=True)
class LoadedEncoder:
  """An encoder model directory in memory.

  Attributes:
    model: the ModelConfig of the generator it was trained for.
    config: its EncoderConfig.
    variables: {'params', 'batch_stats'} (float32).
    generator: what it records of that generator: {'path', 'variables_sha256'
      (or None)}.
    metadata: training facts (steps, wall time, validation numbers, ...).
    directory: where it was loaded from ('' if not from a directory).
  """
  model: ModelConfig
  config: EncoderConfig
  variables: Any
  generator: dict[str, Any]
  metadata: dict[str, Any]
  directory: str = ''


def predict_latents(encoder: LoadedEncoder, images: Any,
                    masks: Any) -> jax.Array:
  """(N, z_dim) predicted latents in (-1, 1) of masked images (jitted).

  Args:
    encoder: a LoadedEncoder (`restore`).
    images: (N, R, R, C) in [-1, 1]; values at missing pixels are ignored.
    masks: (N, R, R, 1) in {0, 1}, 1 = known pixel.
  """
  images = jnp.asarray(images, jnp.float32)
  masks = jnp.asarray(masks, jnp.float32)
  r, c = encoder.model.resolution, encoder.model.channels
  if images.ndim != 4 or images.shape[1:] != (r, r, c) or (
      masks.shape != images.shape[:3] + (1,)):
    raise InputError(f'The encoder takes (N, {r}, {r}, {c}) images and'
                     f' (N, {r}, {r}, 1) masks; got {images.shape} and'
                     f' {masks.shape}.')
  return _predict(encoder.variables, images, masks, model=encoder.model,
                  width=encoder.config.width)


# Model directories ---------------------------------------------------------


def generator_record(generator_dir: str) -> dict[str, Any]:
  """What an encoder records of its generator: {'path', 'variables_sha256'}.

  The path is as given (models/celeba64); the sha256 is the one in the
  generator's model_config.json, or None if it has none.
  """
  return checkpoints.model_record(generator_dir)


def check_generator(encoder: LoadedEncoder, model: ModelConfig,
                    generator_dir: str | None = None,
                    directory: str = 'the encoder') -> None:
  """Raises InputError unless `encoder` was trained for this generator.

  Args:
    encoder: the LoadedEncoder.
    model: the generator's ModelConfig.
    generator_dir: its model directory; if given, its variables_sha256 must
      be the recorded one (when both exist), else its path must match.
    directory: how the message names the encoder.
  """
  recorded = encoder.generator
  other = None
  if encoder.model != model:
    other = f'a generator with config {model.to_dict()}'
  elif generator_dir is not None:
    current = generator_record(generator_dir)
    sha, saved_sha = current['variables_sha256'], recorded.get(
        'variables_sha256')
    if sha and saved_sha:
      if sha != saved_sha:
        other = f'the generator in {generator_dir!r} (other weights)'
    elif (os.path.realpath(current['path'])
          != os.path.realpath(recorded.get('path', ''))):
      other = f'the generator in {generator_dir!r}'
  if other is not None:
    raise InputError(
        f'{directory} was trained for the generator {recorded.get("path")!r},'
        f' not for {other}: pass the encoder trained for this model'
        ' (models/<name>_encoder) or train one with'
        ' experiments.train_encoder.')


def save(directory: str, model: ModelConfig, config: EncoderConfig,
         variables: Any, generator: dict[str, Any],
         metadata: dict[str, Any] | None = None) -> str:
  """Writes encoder_config.json + orbax variables/ (float32); returns the path.

  `generator` is `generator_record(generator_dir)`.
  """
  return checkpoints.save_network(
      directory, CONFIG_FILE,
      {'model': model.to_dict(), 'encoder': config.to_dict(),
       'generator': generator, 'metadata': metadata or {}}, variables)


def restore(directory: str) -> LoadedEncoder:
  """Loads an encoder model directory.

  Raises:
    MissingInputError: no encoder there.
    InputError: the config is damaged or the weights fail their checksum.
  """
  (model, config, generator), variables, saved = checkpoints.restore_network(
      directory, CONFIG_FILE, 'encoder',
      'pass --encoder=DIR written by experiments.train_encoder (e.g.'
      ' models/celeba64_encoder), or --encoder= to search from random'
      ' latents.',
      lambda saved: (ModelConfig.from_dict(saved['model']),
                     EncoderConfig.from_dict(saved['encoder']),
                     dict(saved['generator'])),
      lambda parsed: init_variables(parsed[0], parsed[1],
                                    jax.random.PRNGKey(0)))
  return LoadedEncoder(model, config, variables, generator,
                       saved.get('metadata', {}), os.path.abspath(directory))


def load_for(directory: str, model: ModelConfig,
             generator_dir: str | None = None) -> LoadedEncoder:
  """`restore` + `check_generator`: the encoder, if made for this generator."""
  loaded = restore(directory)
  check_generator(loaded, model, generator_dir, f'The encoder {directory!r}')
  return loaded


def initial_latents(encoder: LoadedEncoder, images: Any, masks: Any,
                    key: jax.Array, restarts: int = 1,
                    index_offset: int = 0) -> jax.Array:
  """(N, restarts, z_dim) starting latents for `inpaint.search(initial_z=)`.

  Restart 0 is the encoder's prediction; restarts 1.. are the random latents
  `inpaint.initial_latents(key, ...)` gives them without an encoder.

  Args:
    encoder: a LoadedEncoder.
    images: (N, R, R, C) in [-1, 1] (values at missing pixels ignored).
    masks: (N, R, R, 1), 1 = known pixel.
    key, index_offset: as for `inpaint.search`.
    restarts: latents per image.
  """
  predicted = predict_latents(encoder, images, masks)
  random = inpaint.initial_latents(key, predicted.shape[0], restarts,
                                   encoder.model.z_dim, index_offset)
  return random.at[:, 0].set(predicted)

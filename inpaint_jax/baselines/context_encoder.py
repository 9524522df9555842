"""The Context Encoder (Pathak et al., CVPR 2016), a baseline of Table 1.

A feed-forward network that fills a hole in one pass: it sees the masked
image and the mask and predicts the whole image, and the prediction is pasted
into the hole (Pathak et al. paste it; no Poisson blending here).

* `ContextEncoderConfig`: architecture, loss and training settings (saved
  with the model).
* `ContextEncoder`: encoder (stride-2 convolutions, batch norm on all but the
  first, leaky ReLU 0.2, as the DCGAN discriminator) from the 4-channel
  input (y * M, M) down to 4x4; Pathak's channel-wise fully connected
  bottleneck (each channel's 4x4 map through its own dense layer, then a 1x1
  convolution mixing the channels); decoder (stride-2 transposed
  convolutions, batch norm, ReLU, as the DCGAN generator) back to the image,
  tanh. The adversarial discriminator is the DCGAN's `models.Discriminator`
  (`discriminator_config`).
* `draw_masks`: a random mask per image from the configured kinds.
* `reconstruction_weights` / `reconstruction_loss`: the hole-weighted L2.
* `predict`, `context_encoder_method`: inference and the `methods.Method`.
* `save` / `restore`: a model directory (`context_encoder_config.json` with a
  `variables_sha256` checked on load, orbax `variables/`). Training is in
  `inpaint_jax.training.train_context_encoder`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from inpaint_jax import checkpoints
from inpaint_jax import masks as masks_lib
from inpaint_jax import methods
from inpaint_jax.config import (AT_LEAST_0, AT_LEAST_1, NON_NEGATIVE,
                                RESOLUTIONS, TRAINING_RULES, AdamTrainConfig,
                                DictConfig, ModelConfig, check_fields)
from inpaint_jax.errors import InputError
from inpaint_jax.models import Downsample, Upsample, kernel_init

CONFIG_FILE = 'context_encoder_config.json'
VARIABLES_DIR = checkpoints.VARIABLES_DIR


@dataclasses.dataclass(frozen=True)
class ContextEncoderConfig(DictConfig, AdamTrainConfig):
  """Context Encoder architecture, loss and training (saved with the model).

  Training: the fields of `config.AdamTrainConfig` (batch_size, learning_rate
  and beta1 of Adam for both networks (Pathak et al.: 2e-4, 0.5), num_steps,
  seed (of the initial weights, batches, flips and masks), flip and the
  bookkeeping), with the shorter run's defaults below.

  Attributes:
    resolution: image side in pixels (one of config.RESOLUTIONS).
    channels: image channels (3).
    width: channels of the first encoder layer; each layer nearer 4x4 has
      twice as many (width 32 at 64x64: 32-64-128-256, bottleneck 256x4x4,
      decoder 128-64-32-3).
    kernel: convolution kernel size (5 as the DCGAN, or 4 as Pathak et al.).
    d_width: width of the adversarial discriminator (`models.Discriminator`).
    lambda_rec, lambda_adv: loss weights (Pathak et al.: 0.999 and 0.001).
    overlap: pixels of known context around the hole that the reconstruction
      loss also counts (Pathak et al.: 4).
    overlap_weight: weight of those border pixels relative to the hole's 1.
      Pathak et al. weigh their border 10x; here it is 0.1, because with the
      'random' mask (80 % missing, isolated known pixels) every known pixel
      is in the border and would dominate a loss whose job is the hole
      (known pixels are pasted back anyway).
    mask_kinds: mask kinds drawn in training, one uniformly per image.
  """
  # AdamTrainConfig's fields with other defaults (each keeps its place).
  num_steps: int = 3000
  checkpoint_every: int = 250
  log_every: int = 25
  sample_every: int = 250
  resolution: int = 64
  channels: int = 3
  width: int = 32
  kernel: int = 5
  d_width: int = 32
  lambda_rec: float = 0.999
  lambda_adv: float = 0.001
  overlap: int = 4
  overlap_weight: float = 0.1
  mask_kinds: tuple[str, ...] = masks_lib.KINDS

  def __post_init__(self):
    object.__setattr__(self, 'mask_kinds', tuple(self.mask_kinds))
    check_fields(self, {
        'resolution': (lambda v: v in RESOLUTIONS, f'one of {RESOLUTIONS}'),
        'channels': AT_LEAST_1,
        'width': AT_LEAST_1,
        'kernel': (lambda v: v in (3, 4, 5), '4 or 5'),
        'd_width': AT_LEAST_1,
        'lambda_rec': NON_NEGATIVE,
        'lambda_adv': NON_NEGATIVE,
        'overlap': AT_LEAST_0,
        'overlap_weight': NON_NEGATIVE,
        'mask_kinds': (lambda v: v and set(v) <= set(masks_lib.KINDS),
                       f'a non-empty selection of {masks_lib.KINDS}'),
        **TRAINING_RULES,
    })

  @property
  def num_layers(self) -> int:
    """Stride-2 layers between the image and 4x4 (4 at 64x64)."""
    return {16: 2, 32: 3, 64: 4, 128: 5}[self.resolution]


def discriminator_config(config: ContextEncoderConfig) -> ModelConfig:
  """The ModelConfig of the adversarial `models.Discriminator`."""
  return ModelConfig(resolution=config.resolution, width=config.d_width,
                     kernel=config.kernel, channels=config.channels)


def _batch_norm(train: bool, axis_name: str | None):
  return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                      epsilon=1e-5, axis_name=axis_name)


class ChannelwiseDense(nn.Module):
  """Pathak et al.'s channel-wise fully connected layer.

  (N, H, W, C) -> (N, H, W, C): each channel's H*W map goes through its own
  dense layer (an (H*W, H*W) kernel per channel, plus a bias); channels are
  not mixed (that is the 1x1 convolution after it).
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    kernel = self.param('kernel', kernel_init, (h * w, h * w, c))
    bias = self.param('bias', nn.initializers.zeros, (h * w, c))
    y = jnp.einsum('npc,pqc->nqc', x.reshape(n, h * w, c), kernel) + bias
    return y.reshape(n, h, w, c)


class ContextEncoder(nn.Module):
  """(y * M, M) -> the whole image, (N, R, R, channels) in [-1, 1].

  Attributes:
    config: the architecture.
    impl: stride-2 layer implementation (one of layers.IMPLS; 'auto' picks
      per layer with `layers.choose_formulation`).
    axis_name: pmap axis over which batch-norm statistics are averaged in
      training (None on one device).
  """
  config: ContextEncoderConfig
  impl: str = 'auto'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, masked: jax.Array, masks: jax.Array,
               train: bool = False) -> jax.Array:
    """masked: (N, R, R, C) in [-1, 1], 0 in the hole; masks (N, R, R, 1),
    1 = known. Returns float32 (N, R, R, C) in [-1, 1]."""
    cfg = self.config
    x = jnp.concatenate([masked, masks], axis=-1)
    widths = [cfg.width * 2**i for i in range(cfg.num_layers)]
    for i, features in enumerate(widths):  # R -> 4
      x = Downsample(features, cfg.kernel, use_bias=(i == 0), impl=self.impl,
                     kernel_init=kernel_init)(x, train)
      if i > 0:
        x = _batch_norm(train, self.axis_name)(x)
      x = nn.leaky_relu(x, 0.2)
    x = ChannelwiseDense()(x)  # the bottleneck, (N, 4, 4, widths[-1])
    x = nn.Conv(widths[-1], (1, 1), use_bias=False, kernel_init=kernel_init)(x)
    x = nn.relu(_batch_norm(train, self.axis_name)(x))
    for features in reversed(widths[:-1]):  # 4 -> R / 2
      x = Upsample(features, cfg.kernel, impl=self.impl,
                   kernel_init=kernel_init)(x, train)
      x = nn.relu(_batch_norm(train, self.axis_name)(x))
    x = Upsample(cfg.channels, cfg.kernel, use_bias=True, impl=self.impl,
                 kernel_init=kernel_init)(x, train)
    return jnp.tanh(x)


def init_variables(config: ContextEncoderConfig,
                   key: jax.Array) -> dict[str, Any]:
  """{'params', 'batch_stats'} of a fresh Context Encoder."""
  side = config.resolution
  images = jnp.zeros((1, side, side, config.channels), jnp.float32)
  masks = jnp.ones((1, side, side, 1), jnp.float32)
  return jax.jit(ContextEncoder(config).init, static_argnames='train')(
      key, images, masks, train=False)


# Masks and the loss ---------------------------------------------------------


def draw_masks(key: jax.Array, n: int, size: int,
               kinds: tuple[str, ...] = masks_lib.KINDS) -> jax.Array:
  """(n, size, size, 1) float32 masks, 1 = known: per image a kind drawn
  uniformly from `kinds`, then that kind's `masks.make` mask."""
  choice_key, *kind_keys = jax.random.split(key, len(kinds) + 1)
  every = jnp.stack([masks_lib.make(kind, k, n, size)
                     for kind, k in zip(kinds, kind_keys)])  # (K, n, ...)
  choice = jax.random.randint(choice_key, (n,), 0, len(kinds))
  return every[choice, jnp.arange(n)]


def reconstruction_weights(masks: jax.Array, overlap: int,
                           overlap_weight: float) -> jax.Array:
  """(N, H, W, 1) L2 weights: 1 in the hole, `overlap_weight` on known
  pixels within `overlap` pixels (Chebyshev) of it, 0 elsewhere.

  masks: (N, H, W, 1), 1 = known.
  """
  hole = 1.0 - masks
  if overlap == 0 or overlap_weight == 0:
    return hole
  near = jax.lax.reduce_window(hole, -jnp.inf, jax.lax.max,
                               (1, 2 * overlap + 1, 2 * overlap + 1, 1),
                               (1, 1, 1, 1), 'SAME')
  return hole + overlap_weight * near * masks


def reconstruction_loss(predicted: jax.Array, images: jax.Array,
                        weights: jax.Array) -> jax.Array:
  """Mean over images of the weighted mean squared error.

  predicted, images: (N, H, W, C) in [-1, 1]; weights (N, H, W, 1) from
  `reconstruction_weights`. Each image's error is normalised by its own
  total weight, so every image (and every device's share) counts the same.
  """
  squared = jnp.sum(weights * jnp.square(predicted - images), axis=(1, 2, 3))
  total = jnp.sum(weights, axis=(1, 2, 3)) * images.shape[-1]
  return jnp.mean(squared / jnp.maximum(total, 1e-8))


def paste(predicted: jax.Array, images: jax.Array,
          masks: jax.Array) -> jax.Array:
  """The known pixels of `images` (exactly) and `predicted` in the hole."""
  return jnp.where(masks > 0.5, images, predicted)


# Inference and the Method ---------------------------------------------------


@functools.lru_cache(maxsize=8)
def _apply_fn(config: ContextEncoderConfig):
  net = ContextEncoder(config)
  return jax.jit(lambda v, x, m: net.apply(v, x * m, m, train=False))


def predict(config: ContextEncoderConfig, variables: Any, images: Any,
            masks: Any) -> np.ndarray:
  """The network's whole-image prediction, float32 (N, R, R, C) in [-1, 1].

  images: (N, R, R, C) in [-1, 1] (values in the hole are ignored); masks:
  (N, R, R, 1), 1 = known. Batch norm uses its running statistics.
  """
  images = np.asarray(images, np.float32)
  side, c = config.resolution, config.channels
  if images.ndim != 4 or images.shape[1:] != (side, side, c):
    raise InputError(f'The Context Encoder takes (N, {side}, {side}, {c})'
                     f' images; got {images.shape}. Use the model of that'
                     ' resolution.')
  masks = np.asarray(masks, np.float32)
  if masks.shape != images.shape[:3] + (1,):
    raise InputError(f'masks have shape {masks.shape}; the images need'
                     f' {images.shape[:3] + (1,)} (1 = known pixel).')
  masks_lib.check_masks(masks, require_missing=False)
  return np.asarray(_apply_fn(config)(variables, images, masks))


def context_encoder_method(model_dir: str) -> methods.Method:
  """The Context Encoder of `model_dir` as a `methods.Method`.

  'generated' is the network's whole image; 'inpainted' keeps the known
  pixels bit for bit and takes the prediction in the hole (no blending, as
  Pathak et al.).
  """
  config, variables, metadata = restore(model_dir)

  def fill(images, masks, index_offset):
    del index_offset
    predicted = predict(config, variables, images, masks)
    images = np.asarray(images, np.float32)
    inpainted = np.where(np.asarray(masks) > 0.5, images, predicted)
    return {'generated': predicted, 'inpainted': inpainted}

  return methods.Method(
      'ce', fill, settings={'context_encoder': config.to_dict(),
                            'model_dir': os.path.abspath(model_dir),
                            'steps': metadata.get('steps')},
      variables=variables)


def is_model_dir(directory: str | None) -> bool:
  """Whether `directory` holds a Context Encoder model."""
  return bool(directory) and os.path.isfile(os.path.join(directory,
                                                         CONFIG_FILE))


# Model directories ----------------------------------------------------------


def save(directory: str, config: ContextEncoderConfig, variables: Any,
         metadata: dict[str, Any] | None = None) -> str:
  """Writes context_encoder_config.json + orbax variables/; returns the path.

  variables: the network's {'params', 'batch_stats'} (saved as float32).
  """
  return checkpoints.save_network(
      directory, CONFIG_FILE,
      {'context_encoder': config.to_dict(), 'metadata': metadata or {}},
      variables)


def restore(directory: str
            ) -> tuple[ContextEncoderConfig, Any, dict[str, Any]]:
  """(config, variables, metadata) of a Context Encoder model directory.

  Raises:
    MissingInputError: no Context Encoder there.
    InputError: the config is damaged or the weights fail their checksum.
  """
  config, variables, saved = checkpoints.restore_network(
      directory, CONFIG_FILE, 'Context Encoder',
      'pass a directory written by experiments.train_context_encoder.',
      lambda saved: ContextEncoderConfig.from_dict(saved['context_encoder']),
      lambda config: init_variables(config, jax.random.PRNGKey(0)))
  return config, variables, saved.get('metadata', {})

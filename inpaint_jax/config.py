"""Configuration with the paper's defaults, as small frozen dataclasses.

Every experiment builds one of these from its flags; every library function
takes the config it needs as an argument, so nothing reads global state.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from inpaint_jax.errors import InputError

RESOLUTIONS = (16, 32, 64, 128)


def _check(config: Any, name: str, ok: bool, requirement: str) -> None:
  """InputError naming the field, its value, the requirement and the flag."""
  if not ok:
    value = getattr(config, name)
    raise InputError(f'{type(config).__name__}.{name}={value!r}: it must be'
                     f' {requirement}; fix --{name}.')


def check_fields(config: Any, rules: dict[str, tuple[Any, str]]) -> None:
  """Checks {field: (predicate, requirement)}; NaN fails every predicate.

  Raises InputError naming the first field that fails, its value, the
  requirement and the flag to fix.
  """
  for name, (predicate, requirement) in rules.items():
    value = getattr(config, name)
    finite = not isinstance(value, float) or math.isfinite(value)
    _check(config, name, finite and predicate(value), requirement)


# Rules of `check_fields` that many fields share: (predicate, requirement).
AT_LEAST_1 = (lambda v: v >= 1, 'a whole number >= 1')
AT_LEAST_0 = (lambda v: v >= 0, 'a whole number >= 0')
NON_NEGATIVE = (lambda v: v >= 0, 'a finite number >= 0')
POSITIVE = (lambda v: v > 0, 'a finite number > 0')
IN_0_1 = (lambda v: 0 <= v < 1, 'in [0, 1)')


class DictConfig:
  """`to_dict` / `from_dict` of a frozen config dataclass, for JSON files.

  Tuple fields are written as lists and read back as tuples; fields the class
  does not have are refused.
  """

  def to_dict(self) -> dict[str, Any]:
    """The fields by name, tuples as lists."""
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> Any:
    """The config of a `to_dict` dict (fields it leaves out take defaults)."""
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
      raise InputError(f'Unknown {cls.__name__} fields {sorted(unknown)};'
                       ' was it written by another version of inpaint_jax?')
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class ModelConfig(DictConfig):
  """The DCGAN of Radford et al. as used by Yeh et al. (Sec. 3.4).

  Attributes:
    resolution: image side in pixels (G doubles it per layer from 4x4).
    z_dim: latent size; z is uniform in [-1, 1].
    width: base channel width. G's last hidden layer and D's first layer have
      `width` channels; each layer nearer the 4x4 end has twice as many
      (64 -> 512-256-128-64 at 64x64).
    kernel: convolution kernel size: 5 (the TensorFlow DCGAN the authors used)
      or 4 (dcgan.torch).
    channels: image channels (3 for RGB).
  """

  resolution: int = 64
  z_dim: int = 100
  width: int = 64
  kernel: int = 5
  channels: int = 3

  def __post_init__(self):
    if self.resolution not in RESOLUTIONS:
      raise InputError(
          f'ModelConfig.resolution={self.resolution} is not supported; use one'
          f' of {RESOLUTIONS}.')
    if self.kernel not in (3, 4, 5):
      raise InputError(f'ModelConfig.kernel={self.kernel}; use 4 or 5.')
    if self.width < 1 or self.z_dim < 1:
      raise InputError('ModelConfig.width and z_dim must be positive.')

  @property
  def num_layers(self) -> int:
    """Number of stride-2 layers between 4x4 and `resolution`."""
    return {16: 2, 32: 3, 64: 4, 128: 5}[self.resolution]


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """The z-search of Sec. 3.3.

  Attributes:
    iterations: Adam steps (the paper: 1500).
    lam: weight of the prior loss, lambda in Eq. 5 (the paper: 0.003).
    learning_rate: Adam step size for z. The paper does not give it; 0.03 was
      chosen on a validation slice of CelebA train (docs/ablations.md).
    beta1, beta2: Adam moments (optax defaults).
    restarts: random initialisations of z per image, searched together; the
      one with the lowest final loss is kept (beyond the paper; 1 = paper).
    window: side of the importance-weight window N(i) in Eq. 3 (the paper: 7).
    record_every: if > 0, keep the loss every step and G(z) every
      `record_every` steps (for curves and animations).
    stop_tolerance: beyond the paper; if > 0, an image's search stops once
      its loss fell by less than this fraction over the last `check_every`
      steps (or after `iterations`), and the batch shrinks to the images
      still searching. 0: every image runs all iterations (the paper).
    check_every: steps between those convergence checks.
    ilo_steps: beyond the paper (intermediate layer optimisation, Daras et
      al. 2021): after the z-search, this many Adam steps on the activation
      of G's stage `ilo_layer` instead of z, the layers above it fixed and
      the activation kept within an L1 ball around G's own activation of
      the found z (projected after every step); Eq. 2's loss unchanged.
      0: none (the paper).
    ilo_layer: the stage whose activation is searched (0: after the dense
      4x4 projection, 1: the 8x8 one, ...; `models.Generator`).
    ilo_radius: the ball's radius as a fraction of the L1 norm of G's own
      activation.
    ilo_learning_rate: Adam step size on the activation.
    finetune_steps: beyond the paper (Pan et al. 2020; Roich et al. 2021):
      after the z-search (and the intermediate search, if any), this many
      Adam steps on a per-image copy of the weights of G's top
      `finetune_layers` stages (above the searched input), the input
      fixed, with `finetune_weight` x the squared distance to the trained
      weights added to the loss. 0: none (the paper).
    finetune_layers: how many of G's stages, counted from the output layer
      (1: the output layer only), fine-tuning changes. Each image's copy of
      a convolution's weights makes it a grouped convolution over the
      batch, which XLA:CPU runs slowly (two stages cost about twenty
      z-search steps per step in a one-off check on the 2-core CPU; the
      output layer alone about one).
    finetune_learning_rate: Adam step size on the weights.
    finetune_weight: weight of the squared distance to the trained weights
      (summed over the weights).
  """

  iterations: int = 1500
  lam: float = 0.003
  learning_rate: float = 0.03
  beta1: float = 0.9
  beta2: float = 0.999
  restarts: int = 1
  window: int = 7
  record_every: int = 0
  stop_tolerance: float = 0.0
  check_every: int = 25
  ilo_steps: int = 0
  ilo_layer: int = 1
  ilo_radius: float = 0.1
  ilo_learning_rate: float = 0.01
  finetune_steps: int = 0
  finetune_layers: int = 1
  finetune_learning_rate: float = 1e-4
  finetune_weight: float = 1.0

  def __post_init__(self):
    check_fields(self, {
        'iterations': AT_LEAST_0,
        'lam': (lambda v: v >= 0, 'a finite number >= 0 (the paper: 0.003)'),
        'learning_rate': POSITIVE,
        'beta1': IN_0_1,
        'beta2': IN_0_1,
        'restarts': AT_LEAST_1,
        'record_every': (lambda v: v >= 0, '>= 0 (0: no recording)'),
        'stop_tolerance': (lambda v: 0 <= v < 1,
                           'in [0, 1) (0: no early stopping, the paper)'),
        'check_every': AT_LEAST_1,
        'ilo_steps': (lambda v: v >= 0, 'a whole number >= 0 (0: none, the'
                      ' paper)'),
        'ilo_layer': AT_LEAST_0,
        'ilo_radius': POSITIVE,
        'ilo_learning_rate': POSITIVE,
        'finetune_steps': (lambda v: v >= 0, 'a whole number >= 0 (0: none,'
                           ' the paper)'),
        'finetune_layers': AT_LEAST_1,
        'finetune_learning_rate': POSITIVE,
        'finetune_weight': NON_NEGATIVE,
    })
    if self.refines and (self.stop_tolerance > 0 or self.record_every > 0):
      raise InputError('SearchConfig: the searches after the z-search'
                       ' (--ilo_steps, --finetune_steps) cannot be combined'
                       ' with early stopping (--stop_tolerance) or recording'
                       ' (--record_every); drop one of them.')
    if self.stop_tolerance > 0 and self.record_every > 0:
      raise InputError('SearchConfig: early stopping (--stop_tolerance) and'
                       ' recording (--record_every) cannot be combined; drop'
                       ' one of them.')
    if self.window < 1 or self.window % 2 == 0:
      raise InputError(f'SearchConfig.window={self.window}: the importance'
                       ' window needs a centre pixel; use a positive odd'
                       ' number (--window=7 as in the paper, or 15).')

  @property
  def refines(self) -> bool:
    """Whether a search beyond the paper follows the z-search."""
    return self.ilo_steps > 0 or self.finetune_steps > 0


# The bookkeeping fields of every trainer's config (training.loop): they do
# not change the trained weights, so a resumed run may change them.
BOOKKEEPING = ('num_steps', 'checkpoint_every', 'keep_checkpoints',
               'log_every', 'sample_every')

# The checks of AdamTrainConfig's fields (and of ContextEncoderConfig's, which
# extends it); the other trainers' configs check those of them they have.
TRAINING_RULES = {
    'batch_size': AT_LEAST_1,
    'learning_rate': POSITIVE,
    'beta1': IN_0_1,
    'num_steps': AT_LEAST_1,
    'checkpoint_every': AT_LEAST_1,
    'keep_checkpoints': AT_LEAST_1,
    'log_every': AT_LEAST_1,
    'sample_every': AT_LEAST_1,
}


@dataclasses.dataclass(frozen=True)
class AdamTrainConfig:
  """The training fields every adversarial pair shares (the DCGAN's
  `TrainConfig`, `baselines.context_encoder.ContextEncoderConfig`), with
  Radford et al.'s defaults (Adam 2e-4, beta1 0.5, batch 64).

  Attributes:
    batch_size: global batch, split across devices.
    learning_rate, beta1: Adam for both networks.
    num_steps: total training steps.
    seed: PRNG seed for parameters, z and augmentation.
    flip: random horizontal flips (Sec. 3.4).
    checkpoint_every: steps between orbax checkpoints.
    keep_checkpoints: how many recent checkpoints to keep.
    log_every: steps between metric lines.
    sample_every: steps between sample grids from a fixed z.
  """

  batch_size: int = 64
  learning_rate: float = 2e-4
  beta1: float = 0.5
  num_steps: int = 10000
  seed: int = 0
  flip: bool = True
  checkpoint_every: int = 500
  keep_checkpoints: int = 3
  log_every: int = 50
  sample_every: int = 500

  def __post_init__(self):
    check_fields(self, TRAINING_RULES)


AUGMENT_POLICIES = ('color', 'translation', 'cutout')


@dataclasses.dataclass(frozen=True)
class TrainConfig(AdamTrainConfig):
  """DCGAN training as in Radford et al., with two options beyond the paper.

  The fields of `AdamTrainConfig`, and, both off by default (the paper's
  recipe):

  Attributes:
    ema_decay: if > 0, keep an exponential moving average of G's weights
      (and batch statistics), g_ema <- d g_ema + (1 - d) g after every step,
      and use it for samples, validation and export (e.g. 0.999).
    augment: DiffAugment policies applied to every image D sees, real or
      generated: a comma-separated selection of 'color', 'translation',
      'cutout' (`training.augment`); '' = none.
  """

  ema_decay: float = 0.0
  augment: str = ''

  def __post_init__(self):
    super().__post_init__()
    check_fields(self, {'ema_decay': (
        lambda v: 0 <= v < 1, 'in [0, 1) (0: no average, the paper)')})
    policy = self.augment_policy
    if not set(policy) <= set(AUGMENT_POLICIES) or len(set(policy)) != len(
        policy):
      raise InputError(
          f'TrainConfig.augment={self.augment!r}: use a comma-separated'
          f' selection of {", ".join(AUGMENT_POLICIES)} without repeats, or'
          " '' for none (the paper); fix --augment.")

  @property
  def augment_policy(self) -> tuple[str, ...]:
    """The DiffAugment policies of `augment`, in its order (() = none)."""
    return tuple(p.strip() for p in self.augment.split(',') if p.strip())

"""The realism of a generator's samples: MS-SWD against real images.

How far G's samples are from the data (`realism.ms_swd`, unpaired, x10^3),
beside the floor no generator goes below on these sets: the distance between
two real sets of the same size (a train slice and the validation slice).
The validation curve measures it per checkpoint, the model card for the
shipped model.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from inpaint_jax import models
from inpaint_jax import realism
from inpaint_jax.config import ModelConfig
from inpaint_jax.data import input_pipeline

# Samples and real images per set: the 256 of the validation slice.
DEFAULT_IMAGES = input_pipeline.VALIDATION_HOLDOUT


def reference_sets(dataset: str, limit: int = DEFAULT_IMAGES,
                   source: str = 'folder', data_dir: str | None = None,
                   size: int = 64) -> tuple[np.ndarray, np.ndarray]:
  """(reference, floor images), (M, size, size, 3) in [-1, 1]: the first
  `limit` images of the validation slice, and as many of the first train
  images (trained on) for the real-vs-real floor."""
  reference, _ = input_pipeline.load_split(dataset, 'validation', source,
                                           data_dir, size, limit)
  floor_images, _ = input_pipeline.load_split(dataset, 'train', source,
                                              data_dir, size, len(reference))
  return reference, floor_images


def samples_realism(config: ModelConfig, g_vars: Any, reference: np.ndarray,
                    seed: int = 0) -> dict[str, Any]:
  """MS-SWD (x10^3) of len(reference) samples of G against `reference`.

  Args:
    config, g_vars: the generator.
    reference: (M, R, R, 3) real images in [-1, 1].
    seed: the latents are uniform draws of fold_in(PRNGKey(seed), 1) (the
      same for every checkpoint); the MS-SWD's own draws use PRNGKey(seed).

  Returns:
    {'samples_ms_swd': float, 'samples_images': M}.
  """
  z = models.sample_z(jax.random.fold_in(jax.random.PRNGKey(seed), 1),
                      len(reference), config.z_dim)
  generator = models.Generator(config)
  samples = np.concatenate([np.asarray(_generate(generator, g_vars,
                                                 z[i:i + 64]))
                            for i in range(0, len(z), 64)])
  distance = realism.ms_swd(samples, reference, jax.random.PRNGKey(seed))
  return {'samples_ms_swd': distance['ms_swd'],
          'samples_images': len(reference)}


@functools.partial(jax.jit, static_argnums=0)
def _generate(generator: models.Generator, g_vars: Any,
              z: jax.Array) -> jax.Array:
  """G(z) in inference mode, compiled once per generator (not once per
  checkpoint of a validation curve)."""
  return generator.apply(g_vars, z, train=False)


def floor(floor_images: np.ndarray, reference: np.ndarray,
          seed: int = 0) -> float:
  """MS-SWD (x10^3) of two real sets of the same size: the floor of
  `samples_realism` on `reference` (measured with the same draws)."""
  return realism.ms_swd(floor_images, reference,
                        jax.random.PRNGKey(seed))['ms_swd']

"""Test session setup and the shared tiny model.

Two CPU devices, so the pmap / sharding paths are exercised; one tiny DCGAN
config (16x16, width 4) for every test that needs a model but not a good one.
"""

import jax
import pytest

from inpaint_jax import models
from inpaint_jax.config import ModelConfig

# Imported by tests/test_multihost.py for its worker processes too, so it is a
# constant, not only a fixture.
TINY_CONFIG = ModelConfig(resolution=16, width=4)


def pytest_configure(config):
  del config
  # Must run before any computation creates the CPU backend (a hook, not an
  # import-time call, so that the multi-process workers that import this
  # module keep their own device count).
  jax.config.update('jax_num_cpu_devices', 2)


@pytest.fixture(scope='session')
def tiny_config() -> ModelConfig:
  """ModelConfig(resolution=16, width=4)."""
  return TINY_CONFIG


@pytest.fixture(scope='session')
def tiny_variables(tiny_config):
  """(G variables, D variables) of the tiny config, from PRNGKey(0)."""
  return models.init_variables(tiny_config, jax.random.PRNGKey(0))

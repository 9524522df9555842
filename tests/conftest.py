"""Test session setup and the shared tiny model.

Two CPU devices, so the pmap / sharding paths are exercised; one tiny DCGAN
config (16x16, width 4) for every test that needs a model but not a good one.
"""

import shutil
import tempfile

import jax
import numpy as np
import pytest

from experiments import _cli
from inpaint_jax import models
from inpaint_jax.config import ModelConfig

# Imported by tests/test_multihost.py for its worker processes too, so it is a
# constant, not only a fixture.
TINY_CONFIG = ModelConfig(resolution=16, width=4)


def pytest_configure(config):
  # Must run before any computation creates the CPU backend (a hook, not an
  # import-time call, so that the multi-process workers that import this
  # module keep their own device count).
  jax.config.update('jax_num_cpu_devices', 2)
  # Many tests build the same tiny networks' steps afresh (a new jit per
  # train() call); a session-wide persistent cache compiles each only once.
  config.inpaint_jax_cache = tempfile.mkdtemp(prefix='inpaint_jax_test_xla_')
  _cli.enable_compilation_cache(config.inpaint_jax_cache,
                                min_compile_seconds=0)


def pytest_unconfigure(config):
  shutil.rmtree(getattr(config, 'inpaint_jax_cache', ''), ignore_errors=True)


@pytest.fixture(scope='session')
def tiny_config() -> ModelConfig:
  """ModelConfig(resolution=16, width=4)."""
  return TINY_CONFIG


@pytest.fixture(scope='session')
def tiny_variables(tiny_config):
  """(G variables, D variables) of the tiny config, from PRNGKey(0)."""
  return models.init_variables(tiny_config, jax.random.PRNGKey(0))


def leaves(tree) -> list[np.ndarray]:
  """The leaves of a pytree as NumPy arrays, in tree order."""
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def assert_first_replica_matches(parallel, parallel_metrics, single,
                                 single_metrics, *, metric_tol, state_tol):
  """A pmap-ed training step's first replica equals the one-device step.

  parallel, parallel_metrics: the pmap-ed step's state and metrics;
  single, single_metrics: the same step jitted on one device with the whole
  batch; metric_tol, state_tol: (rtol, atol) of the two comparisons.
  """
  for key in single_metrics:
    np.testing.assert_allclose(parallel_metrics[key].addressable_data(0)[0],
                               single_metrics[key], rtol=metric_tol[0],
                               atol=metric_tol[1])
  first = jax.tree_util.tree_map(lambda x: x.addressable_data(0)[0], parallel)
  for a, b in zip(leaves(first), leaves(single)):
    np.testing.assert_allclose(a, b, rtol=state_tol[0], atol=state_tol[1])

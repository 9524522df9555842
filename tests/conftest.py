"""Test session setup, the resource markers and the shared tiny model.

Two CPU devices, so the pmap / sharding paths are exercised; one tiny DCGAN
config (16x16, width 4) for every test that needs a model but not a good one.
Tests that need something outside the repository say so with a marker (see
setup.cfg), and are skipped with the reason in the summary when it is missing:
`requires_data(*folders)` (the shared data folder, $INPAINT_DATA_DIR, and the
given folders under it) and `requires_chromium` (Playwright and a Chromium at
$CHROMIUM).
"""

import importlib.util
import io
import os
import shutil
import struct
import tempfile
import zlib

import jax
import numpy as np
from PIL import Image
import pytest

from experiments import _cli
from inpaint_jax import models
from inpaint_jax.config import ModelConfig
from inpaint_jax.data import input_pipeline

# Imported by tests/test_multihost.py for its worker processes too, so it is a
# constant, not only a fixture.
TINY_CONFIG = ModelConfig(resolution=16, width=4)
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')


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
  # The experiments the tests run as subprocesses share it (they compile the
  # same tiny networks again and again, ~15 s per network on XLA:CPU).
  os.environ['INPAINT_JAX_CACHE'] = config.inpaint_jax_cache


def pytest_unconfigure(config):
  shutil.rmtree(getattr(config, 'inpaint_jax_cache', ''), ignore_errors=True)


def _missing_data(folders) -> str | None:
  root = input_pipeline.default_data_dir()
  for path in [root] + [os.path.join(root, f) for f in folders]:
    if not os.path.isdir(path):
      return (f'requires_data: no {path} (set ${input_pipeline.DATA_DIR_ENV}'
              ' to the shared data folder)')
  return None


def _missing_chromium() -> str | None:
  if importlib.util.find_spec('playwright') is None:
    return ("requires_chromium: playwright is not installed"
            " (pip install -e '.[test]')")
  if not os.path.isfile(CHROMIUM):
    return (f'requires_chromium: no Chromium at {CHROMIUM}'
            ' (apt-get install chromium, or set $CHROMIUM)')
  return None


def pytest_collection_modifyitems(items):
  # A skip mark, not pytest.skip() at setup, so the summary names the test.
  for item in items:
    reasons = [_missing_data(marker.args)
               for marker in item.iter_markers('requires_data')]
    if item.get_closest_marker('requires_chromium'):
      reasons.append(_missing_chromium())
    reasons = [r for r in reasons if r]
    if reasons:
      item.add_marker(pytest.mark.skip(reason='; '.join(reasons)))


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


def png_claiming(width: int, height: int) -> bytes:
  """A PNG file whose header says width x height (its pixels are 8 x 8).

  A decompression bomb at no cost: readers must refuse it from the header,
  before decoding.
  """
  buffer = io.BytesIO()
  Image.new('L', (8, 8), 255).save(buffer, format='PNG')
  data = bytearray(buffer.getvalue())
  data[16:24] = struct.pack('>II', width, height)  # IHDR's width, height
  data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])))
  return bytes(data)


def truncated(data: bytes) -> bytes:
  """The first two thirds of an image file: a download cut short."""
  return data[:len(data) * 2 // 3]


def upright_and_rotated(pixels: np.ndarray, fmt: str) -> bytes:
  """`pixels` (H, W[, 3]) stored turned 90 degrees anticlockwise, with EXIF
  orientation 6 (a phone's portrait photo): a viewer shows `pixels`."""
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to show.
  buffer = io.BytesIO()
  Image.fromarray(np.rot90(pixels)).save(buffer, format=fmt, exif=exif,
                                         quality=95)
  return buffer.getvalue()

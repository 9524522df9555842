"""Tests for inpaint_jax.checkpoints: model directories and their errors."""

import json
import os

import numpy as np
import pytest

from inpaint_jax import checkpoints
from inpaint_jax.config import ModelConfig
from tests.conftest import TINY_CONFIG as CONFIG
from tests.conftest import leaves


@pytest.fixture
def variables(tiny_variables):
  return tiny_variables


def test_round_trip_float32(tmp_path, variables):
  g_vars, d_vars = variables
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, g_vars, d_vars,
                                {'steps': 3})
  config, g, d = checkpoints.restore_model(path)
  assert config == CONFIG
  for a, b in zip(leaves((g, d)), leaves((g_vars, d_vars))):
    np.testing.assert_array_equal(a, b)
  assert checkpoints.load_model_config(path)[1] == {'steps': 3}


@pytest.mark.parametrize('dtype,rtol', [('bfloat16', 2**-8),
                                        ('float16', 2**-11)])
def test_16_bit_weights_restore_as_float32_close_to_original(tmp_path,
                                                             variables, dtype,
                                                             rtol):
  g_vars, d_vars = variables
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, g_vars, d_vars,
                                weights_dtype=dtype)
  assert checkpoints.load_model_config(path)[0] == CONFIG
  with open(os.path.join(path, checkpoints.CONFIG_FILE)) as f:
    assert json.load(f)['weights_dtype'] == dtype
  _, g, d = checkpoints.restore_model(path)
  for a, b in zip(leaves((g, d)), leaves((g_vars, d_vars))):
    assert a.dtype == np.float32
    # Rounded to the dtype's mantissa (relative error <= 2^-(bits+1)).
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-6)
  with pytest.raises(ValueError, match='use one of float32, bfloat16'):
    checkpoints.save_model(str(tmp_path / 'n'), CONFIG, g_vars, d_vars,
                           weights_dtype='int8')


def test_missing_checkpoint_gives_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='No model directory'):
    checkpoints.restore_model(str(tmp_path / 'nothing'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(FileNotFoundError, match='not a model directory'):
    checkpoints.restore_model(str(tmp_path / 'empty'))


def test_config_mismatch_is_reported(tmp_path, variables):
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, *variables)
  with pytest.raises(ValueError, match='different config.*width'):
    checkpoints.restore_model(path, expected=ModelConfig(resolution=16,
                                                         width=8))


def test_edited_config_that_no_longer_fits_the_arrays(tmp_path, variables):
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, *variables)
  config_file = os.path.join(path, checkpoints.CONFIG_FILE)
  with open(config_file) as f:
    saved = json.load(f)
  saved['model']['width'] = 8
  with open(config_file, 'w') as f:
    json.dump(saved, f)
  with pytest.raises(ValueError, match='do not fit'):
    checkpoints.restore_model(path)


def test_a_damaged_weight_file_is_refused(tmp_path, variables):
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, *variables)
  files = sorted(p for p in (tmp_path / 'm' / checkpoints.VARIABLES_DIR).rglob(
      '*') if p.is_file() and p.stat().st_size > 100)
  data = bytearray(files[-1].read_bytes())
  data[len(data) // 2] ^= 1  # one flipped bit
  files[-1].write_bytes(bytes(data))
  with pytest.raises(ValueError, match='checksum'):
    checkpoints.restore_model(path)


def test_a_damaged_config_file_is_refused(tmp_path, variables):
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, *variables)
  with open(os.path.join(path, checkpoints.CONFIG_FILE), 'w') as f:
    f.write('{"model": {"resolution": 1')
  with pytest.raises(ValueError, match='damaged'):
    checkpoints.restore_model(path)


def test_unreadable_weights_without_a_checksum_are_one_clear_error(
    tmp_path, variables):
  path = checkpoints.save_model(str(tmp_path / 'm'), CONFIG, *variables)
  config_file = os.path.join(path, checkpoints.CONFIG_FILE)
  with open(config_file) as f:
    saved = json.load(f)
  del saved['variables_sha256']  # as in a model saved by an older version
  with open(config_file, 'w') as f:
    json.dump(saved, f)
  for p in (tmp_path / 'm' / checkpoints.VARIABLES_DIR).rglob('*'):
    if p.is_file():
      p.write_bytes(b'x')
  with pytest.raises(ValueError, match='cannot be read'):
    checkpoints.restore_model(path)

"""Tests for inpaint_jax.training.train_dcgan and export: the pmap-ed step,
exact resume and the exported model."""

import dataclasses
import json
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import checkpoints
from inpaint_jax import models
from inpaint_jax.training import export
from inpaint_jax.training import loop
from inpaint_jax.training import run_state
from inpaint_jax.training import train_dcgan
from inpaint_jax.config import ModelConfig, TrainConfig
from tests.conftest import TINY_CONFIG as MODEL
from tests.conftest import assert_first_replica_matches, leaves

TRAIN = TrainConfig(batch_size=8, checkpoint_every=2, log_every=1,
                    sample_every=2, num_steps=4)


def _images(n=24, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


# Both options beyond the paper (EMA of G, DiffAugment for D).
OPTIONS = dataclasses.replace(TRAIN, ema_decay=0.9,
                              augment='color,translation,cutout')


@pytest.mark.parametrize('config', [TRAIN, OPTIONS], ids=['paper', 'options'])
def test_two_device_step_equals_one_device_step(config):
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  state = train_dcgan.create_state(MODEL, config, jax.random.PRNGKey(0))
  batch = jnp.asarray(_images(8) / 127.5 - 1, jnp.float32)
  rng = jax.random.PRNGKey(1)
  single, single_metrics = jax.jit(
      lambda s, b, r: train_dcgan.train_step(
          s, b, r, model_config=MODEL, train_config=config))(state, batch,
                                                              rng)
  p_step = loop.parallel_step(train_dcgan.train_step, model_config=MODEL,
                              train_config=config)
  parallel, parallel_metrics = p_step(flax.jax_utils.replicate(state), batch,
                                      rng)
  assert_first_replica_matches(parallel, parallel_metrics, single,
                               single_metrics, metric_tol=(1e-4, 1e-5),
                               state_tol=(1e-3, 1e-5))
  # The step moved the parameters (the comparison above is not vacuous).
  moved = [np.abs(a - b).max() for a, b in
           zip(leaves(single.g_params), leaves(state.g_params))]
  assert max(moved) > 1e-5


def test_the_moving_average_follows_g_and_the_paper_keeps_none():
  batch = jnp.asarray(_images(8) / 127.5 - 1, jnp.float32)
  rng = jax.random.PRNGKey(1)
  step = jax.jit(lambda s, config: train_dcgan.train_step(
      s, batch, rng, model_config=MODEL, train_config=config),
                 static_argnums=1)
  state = train_dcgan.create_state(MODEL, OPTIONS, jax.random.PRNGKey(0))
  for a, b in zip(leaves(state.g_ema), leaves(
      {'params': state.g_params, 'batch_stats': state.g_stats})):
    np.testing.assert_array_equal(a, b)
  new, _ = step(state, OPTIONS)
  g_new = {'params': new.g_params, 'batch_stats': new.g_stats}
  for average, before, after in zip(leaves(new.g_ema), leaves(state.g_ema),
                                    leaves(g_new)):
    np.testing.assert_allclose(average, 0.9 * before + 0.1 * after,
                               rtol=1e-6, atol=1e-7)
  # Samples and export use the average.
  assert train_dcgan.generator_variables(new) is new.g_ema
  # The paper's recipe keeps none and its step is unchanged by the option's
  # existence: the same G update as the average-keeping step.
  paper = train_dcgan.create_state(MODEL, TRAIN, jax.random.PRNGKey(0))
  assert paper.g_ema is None
  paper_new, _ = step(paper, TRAIN)
  assert paper_new.g_ema is None
  with_average, _ = step(state, dataclasses.replace(TRAIN, ema_decay=0.9))
  for a, b in zip(leaves(paper_new.g_params), leaves(with_average.g_params)):
    np.testing.assert_array_equal(a, b)


def _train(workdir, model=MODEL, config=TRAIN, images=None, **kwargs):
  """train_dcgan.train's final state (tiny images, no progress bar)."""
  state, _ = train_dcgan.train(model, config,
                               _images() if images is None else images,
                               str(workdir), show_progress=False, **kwargs)
  return state


# Kill-and-resume at every moment: tests/test_resume.py.


def test_a_run_with_the_options_resumes_exactly(tmp_path):
  whole = _train(tmp_path / 'whole', config=OPTIONS)
  _train(tmp_path / 'parts', config=OPTIONS, stop_after=1)
  _train(tmp_path / 'parts', config=OPTIONS, stop_after=2)
  parts = _train(tmp_path / 'parts', config=OPTIONS)
  assert int(parts.step) == 4
  for a, b in zip(leaves(whole), leaves(parts)):
    np.testing.assert_array_equal(a, b)
  assert whole.g_ema is not None


def test_a_run_recorded_before_the_options_existed_resumes(tmp_path):
  workdir = tmp_path / 'run'
  _train(workdir, stop_after=1)
  path = workdir / run_state.RUN_FILE
  record = json.loads(path.read_text())
  for name in ('ema_decay', 'augment'):
    del record['settings']['train'][name]
  path.write_text(json.dumps(record))
  assert int(_train(workdir, stop_after=1).step) == 2
  path.write_text(json.dumps(record))
  with pytest.raises(ValueError, match='other settings.*ema_decay'):
    _train(workdir, config=OPTIONS)


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(tmp_path):
  _train(tmp_path, stop_after=1)
  with pytest.raises(ValueError, match='other settings.*width'):
    _train(tmp_path, model=ModelConfig(resolution=16, width=8))
  with pytest.raises(ValueError, match='other settings.*learning_rate'):
    _train(tmp_path, config=dataclasses.replace(TRAIN, learning_rate=1e-3))
  # Bookkeeping may change between invocations.
  state = _train(tmp_path, config=dataclasses.replace(
      TRAIN, log_every=2, keep_checkpoints=5, sample_every=1), stop_after=1)
  assert int(state.step) == 2


def test_a_refused_run_writes_nothing(tmp_path, tiny_variables):
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match='fewer than one batch'):
    _train(workdir, images=_images(n=4))
  with pytest.raises(ValueError, match='divisible'):
    _train(workdir, config=dataclasses.replace(TRAIN, batch_size=7))
  other = checkpoints.save_model(str(tmp_path / 'other'),
                                 ModelConfig(resolution=16, width=8),
                                 *models.init_variables(
                                     ModelConfig(resolution=16, width=8),
                                     jax.random.PRNGKey(0)))
  with pytest.raises(ValueError, match='different config'):
    _train(workdir, init_model_dir=other)
  assert not os.path.exists(workdir / run_state.RUN_FILE)
  # The corrected command then starts the run.
  assert int(_train(workdir, stop_after=1).step) == 1


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
  workdir = tmp_path / 'run'
  _train(workdir, config=dataclasses.replace(TRAIN, keep_checkpoints=5))
  for path in (workdir / 'checkpoints' / '4').rglob('*'):
    if path.is_file():
      path.write_bytes(b'damaged')
  _, state, _, step = train_dcgan.restore_run(str(workdir))
  assert step == 2 and int(state.step) == 2
  for path in (workdir / 'checkpoints' / '2').rglob('*'):
    if path.is_file():
      path.write_bytes(b'damaged')
  with pytest.raises(ValueError, match='No readable training checkpoint'):
    train_dcgan.restore_run(str(workdir))


@pytest.mark.slow
def test_export_writes_a_loadable_model(tmp_path):
  state = _train(tmp_path / 'w')
  path = export.export_model(str(tmp_path / 'w'), str(tmp_path / 'model'))
  config, g_vars, _ = checkpoints.restore_model(path)
  assert config == MODEL
  for a, b in zip(leaves(g_vars),
                  leaves(train_dcgan.generator_variables(state))):
    np.testing.assert_array_equal(a, b)
  _, metadata = checkpoints.load_model_config(path)
  assert metadata['steps'] == 4 and 'num_steps' not in metadata['train']
  assert metadata['train']['checkpoint_every'] == TRAIN.checkpoint_every


@pytest.mark.slow
def test_new_run_starts_from_an_exported_model(tmp_path):
  _train(tmp_path / 'w')
  path = export.export_model(str(tmp_path / 'w'), str(tmp_path / 'model'))
  _, g_vars, d_vars = checkpoints.restore_model(path)
  start = _train(tmp_path / 'c', stop_after=0, init_model_dir=path)
  assert int(start.step) == 0
  _train(tmp_path / 'c', stop_after=1, init_model_dir=path)
  _, metadata = checkpoints.load_model_config(
      export.export_model(str(tmp_path / 'c'), str(tmp_path / 'model_c')))
  assert metadata['initialised_from']['steps'] == TRAIN.num_steps
  for a, b in zip(leaves((g_vars, d_vars)),
                  leaves((train_dcgan.generator_variables(start),
                           train_dcgan.discriminator_variables(start)))):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match='different config'):
    _train(tmp_path / 'd', model=ModelConfig(resolution=16, width=8),
           stop_after=0, init_model_dir=path)

"""The z encoder (issue #12): model, training, resume, use in the search."""

import json
import os
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax.training import loop
from inpaint_jax import encoder
from inpaint_jax.training import train_encoder
from inpaint_jax import inpaint
from inpaint_jax import masks
from inpaint_jax import methods
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.models import Discriminator, Generator
from tests.conftest import assert_first_replica_matches, leaves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = encoder.EncoderConfig(width=4, batch_size=8, learning_rate=1e-2,
                              num_steps=4, checkpoint_every=2, log_every=1)


@pytest.fixture(scope='module')
def tiny_model_dir(tmp_path_factory, tiny_config, tiny_variables):
  path = tmp_path_factory.mktemp('gen') / 'tiny16'
  return checkpoints.save_model(str(path), tiny_config, *tiny_variables)


@pytest.fixture(scope='module')
def tiny_encoder(tiny_config, tiny_model_dir):
  variables = encoder.init_variables(tiny_config, SMALL,
                                     jax.random.PRNGKey(0))
  return encoder.LoadedEncoder(tiny_config, SMALL, variables,
                               encoder.generator_record(tiny_model_dir), {})


def _batch(config, n=4, kind='center'):
  images = jax.random.uniform(jax.random.PRNGKey(3),
                              (n, config.resolution, config.resolution, 3),
                              minval=-1, maxval=1)
  m = masks.make(kind, jax.random.PRNGKey(4), n, config.resolution)
  return np.asarray(images), np.asarray(m)


def test_predicted_latents_have_the_shape_and_range_of_z(tiny_config,
                                                         tiny_encoder):
  images, m = _batch(tiny_config)
  z = np.asarray(encoder.predict_latents(tiny_encoder, images * m, m))
  assert z.shape == (4, tiny_config.z_dim) and z.dtype == np.float32
  assert np.all(np.abs(z) < 1) and np.std(z) > 0
  # Missing pixels are ignored.
  noisy = np.where(m > 0, images, 0.7)
  np.testing.assert_allclose(
      encoder.predict_latents(tiny_encoder, noisy, m), z, atol=1e-6)
  with pytest.raises(InputError, match='encoder takes'):
    encoder.predict_latents(tiny_encoder, images[:, :8], m)
  z0 = encoder.initial_latents(tiny_encoder, images, m, jax.random.PRNGKey(0),
                               restarts=3)
  random = inpaint.initial_latents(jax.random.PRNGKey(0), 4, 3,
                                   tiny_config.z_dim)
  np.testing.assert_allclose(z0[:, 0], z, atol=1e-6)
  np.testing.assert_array_equal(z0[:, 1:], random[:, 1:])


def test_draw_batch_mixes_the_mask_kinds(tiny_config):
  z, m = train_encoder.draw_batch(jax.random.PRNGKey(0), 64, tiny_config,
                                  masks.KINDS)
  assert z.shape == (64, tiny_config.z_dim) and m.shape == (64, 16, 16, 1)
  assert float(jnp.abs(z).max()) <= 1
  missing = np.round(np.asarray(masks.missing_fraction(m)), 2)
  # centre/half/pattern/random: 0.25, 0.5, 0.25 (blobs), about 0.8.
  assert {0.25, 0.5} <= set(missing) and np.any(missing > 0.6)


@pytest.mark.parametrize('loss', encoder.LOSSES)
def test_a_few_training_steps_lower_the_loss(tiny_config, tiny_variables,
                                             loss):
  config = encoder.EncoderConfig(width=4, batch_size=16, learning_rate=3e-3,
                                 loss=loss)
  state = train_encoder.create_state(tiny_config, config,
                                     jax.random.PRNGKey(0))
  step = jax.jit(lambda s, z, k: train_encoder.train_step(
      s, z, k, model=tiny_config, config=config, g_vars=tiny_variables[0]))
  z = jax.random.uniform(jax.random.PRNGKey(1), (16, tiny_config.z_dim),
                         minval=-1, maxval=1)
  key = jax.random.PRNGKey(2)
  losses = []
  for _ in range(15):
    state, metrics = step(state, z, key)
    losses.append(float(metrics['loss']))
  assert all(np.isfinite(losses)) and int(state.step) == 15
  assert losses[-1] < 0.9 * losses[0], losses


def test_two_device_step_equals_one_device_step(tiny_config, tiny_variables):
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  config = encoder.EncoderConfig(width=4, batch_size=8, loss='both')
  state = train_encoder.create_state(tiny_config, config,
                                     jax.random.PRNGKey(0))
  z = jax.random.uniform(jax.random.PRNGKey(1), (8, tiny_config.z_dim),
                         minval=-1, maxval=1)
  key = jax.random.PRNGKey(2)
  single, single_metrics = jax.jit(lambda s, b, r: train_encoder.train_step(
      s, b, r, model=tiny_config, config=config,
      g_vars=tiny_variables[0]))(state, z, key)
  p_step = loop.parallel_step(train_encoder.train_step, model=tiny_config,
                              config=config,
                              broadcast={'g_vars': tiny_variables[0]})
  parallel, parallel_metrics = p_step(flax.jax_utils.replicate(state), z, key)
  assert_first_replica_matches(parallel, parallel_metrics, single,
                               single_metrics, metric_tol=(1e-5, 1e-6),
                               state_tol=(1e-4, 1e-5))


def test_a_run_with_other_settings_is_refused(tmp_path, tiny_config,
                                               tiny_variables, tiny_model_dir):
  # Exact resume at every moment: tests/test_resume.py.
  g_vars = tiny_variables[0]
  record = encoder.generator_record(tiny_model_dir)
  train_encoder.train(tiny_config, SMALL, g_vars, str(tmp_path / 'b'),
                      generator=record, show_progress=False, stop_after=1)
  other = encoder.EncoderConfig(width=4, batch_size=8, learning_rate=1e-2,
                                seed=1)
  with pytest.raises(InputError, match='other settings'):
    train_encoder.train(tiny_config, other, g_vars, str(tmp_path / 'b'),
                        generator=record, show_progress=False)


def test_search_starts_from_initial_z(tiny_config, tiny_variables):
  g_vars, d_vars = tiny_variables
  generator, discriminator = Generator(tiny_config), Discriminator(
      tiny_config)
  images, m = _batch(tiny_config, n=2)
  z0 = np.asarray(jax.random.uniform(jax.random.PRNGKey(7),
                                     (2, 1, tiny_config.z_dim),
                                     minval=-1, maxval=1))
  result = inpaint.search(generator, discriminator, g_vars, d_vars,
                          images * m, m, jax.random.PRNGKey(0),
                          SearchConfig(iterations=0), initial_z=z0)
  np.testing.assert_array_equal(result.z, z0[:, 0])
  np.testing.assert_allclose(
      result.generated, generator.apply(g_vars, z0[:, 0]), atol=1e-6)
  stopped = inpaint.search(generator, discriminator, g_vars, d_vars,
                           images * m, m, jax.random.PRNGKey(0),
                           SearchConfig(iterations=3, stop_tolerance=0.5,
                                        check_every=1), initial_z=z0)
  plain = inpaint.search(generator, discriminator, g_vars, d_vars,
                         images * m, m, jax.random.PRNGKey(0),
                         SearchConfig(iterations=3, stop_tolerance=0.5,
                                      check_every=1))
  assert not np.allclose(stopped.z, plain.z)
  for bad, match in ((z0[:, :, :5], 'shape'), (z0 * 3, r'\[-1, 1\]')):
    with pytest.raises(InputError, match=match):
      inpaint.search(generator, discriminator, g_vars, d_vars, images * m, m,
                     jax.random.PRNGKey(0), SearchConfig(iterations=0),
                     initial_z=bad)


def test_zsearch_method_starts_from_the_encoder(tiny_config, tiny_variables,
                                                tiny_encoder):
  g_vars, d_vars = tiny_variables
  images, m = _batch(tiny_config)
  method = methods.zsearch_method(tiny_config, g_vars, d_vars,
                                  SearchConfig(iterations=0),
                                  encoder=tiny_encoder)
  out = method.fill(images * m, m, 0)
  z = encoder.predict_latents(tiny_encoder, images * m, m)
  np.testing.assert_allclose(out['generated'],
                             Generator(tiny_config).apply(g_vars, z),
                             atol=1e-5)
  assert method.settings['encoder']['width'] == 4


def test_an_encoder_is_refused_with_another_generator(
    tmp_path, tiny_config, tiny_variables, tiny_model_dir, tiny_encoder):
  path = encoder.save(str(tmp_path / 'enc'), tiny_config, SMALL,
                      tiny_encoder.variables, tiny_encoder.generator,
                      {'steps': 0})
  loaded = encoder.load_for(path, tiny_config, tiny_model_dir)
  for a, b in zip(leaves(loaded.variables), leaves(tiny_encoder.variables)):
    np.testing.assert_array_equal(a, b)
  assert loaded.generator['variables_sha256'] == json.load(open(
      os.path.join(tiny_model_dir, checkpoints.CONFIG_FILE)))[
          'variables_sha256']
  # Other weights, same config: refused by the sha256.
  g_other, d_other = jax.tree_util.tree_map(lambda x: x + 0.01,
                                            tiny_variables)
  other_dir = checkpoints.save_model(str(tmp_path / 'other'), tiny_config,
                                     g_other, d_other)
  with pytest.raises(InputError, match='was trained for the generator'):
    encoder.load_for(path, tiny_config, other_dir)
  # Another architecture: refused by the config.
  with pytest.raises(InputError, match='was trained for the generator'):
    methods.zsearch_method(
        tiny_config.__class__(resolution=16, width=8), g_other, d_other,
        encoder=loaded)
  with pytest.raises(InputError, match='No encoder'):
    encoder.restore(str(tmp_path / 'nothing'))
  # A damaged weight file is refused.
  files = [os.path.join(d, f) for d, _, fs in os.walk(
      os.path.join(path, encoder.VARIABLES_DIR)) for f in fs]
  with open(max(files, key=os.path.getsize), 'ab') as f:
    f.write(b'x')
  with pytest.raises(InputError, match='checksum'):
    encoder.restore(path)


def _run(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT,
                        capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_train_encoder_and_inpaint_with_it_end_to_end(tmp_path,
                                                      tiny_model_dir):
  result = _run('experiments.train_encoder', f'--generator={tiny_model_dir}',
                f'--workdir={tmp_path / "run"}', '--num_steps=2',
                '--batch_size=4', '--width=4', '--dataset=none',
                f'--export_dir={tmp_path / "enc"}')
  assert result.returncode == 0, result.stderr[-3000:]
  card = (tmp_path / 'enc' / 'README.md').read_text()
  assert '2 steps' in card and 'tiny16' in card
  photos = tmp_path / 'photos'
  photos.mkdir()
  rng = np.random.default_rng(0)
  for i in range(2):
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
        photos / f'{i}.png')
  out = tmp_path / 'out'
  result = _run('experiments.inpaint', f'--checkpoint={tiny_model_dir}',
                f'--images={photos}', f'--encoder={tmp_path / "enc"}',
                '--iterations=3', '--mask=center', f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((out / 'metrics.json').read_text())
  assert summary['encoder_dir'] == str(tmp_path / 'enc')
  assert summary['encoder']['width'] == 4  # the settings of the method
  assert summary['search']['iterations'] == 3 and summary['num_images'] == 2
  # An encoder of another generator: one error line, exit status 2.
  other = tmp_path / 'other_gen'
  config, g_vars, d_vars = checkpoints.restore_model(tiny_model_dir)
  checkpoints.save_model(str(other), config, *jax.tree_util.tree_map(
      lambda x: x * 0.5, (g_vars, d_vars)))
  result = _run('experiments.inpaint', f'--checkpoint={other}',
                f'--images={photos}', f'--encoder={tmp_path / "enc"}',
                '--iterations=3', f'--output_dir={tmp_path / "out2"}')
  assert result.returncode == 2, result.stderr[-3000:]
  assert result.stderr.strip().splitlines()[-1].startswith('error: ')
  assert 'was trained for the generator' in result.stderr

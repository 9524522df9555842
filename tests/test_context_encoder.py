"""Tests for the Context Encoder baseline: network, loss, training, Method."""

import dataclasses
import json
import os
import subprocess
import sys

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.training import loop
from inpaint_jax.training import train_context_encoder as ce_train
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks as masks_lib
from inpaint_jax import models
from tests.conftest import assert_first_replica_matches, leaves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = input_pipeline.default_data_dir()
TINY = ce.ContextEncoderConfig(resolution=16, width=4, d_width=4, batch_size=8,
                               num_steps=4, checkpoint_every=2, log_every=1,
                               sample_every=2)


def _images(n=24, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)


def _float_images(n=8, seed=0):
  return jnp.asarray(_images(n, seed) / 127.5 - 1, jnp.float32)


def test_shapes_range_and_parameters():
  variables = ce.init_variables(TINY, jax.random.PRNGKey(0))
  masks = ce.draw_masks(jax.random.PRNGKey(1), 5, 16)
  images = _float_images(5)
  out = ce.ContextEncoder(TINY).apply(variables, images * masks, masks)
  assert out.shape == (5, 16, 16, 3) and out.dtype == jnp.float32
  assert float(jnp.min(out)) >= -1 and float(jnp.max(out)) <= 1
  # The bottleneck: one 16x16 dense layer per channel of the 4x4x8 map.
  assert variables['params']['ChannelwiseDense_0']['kernel'].shape == (16, 16,
                                                                        8)
  # The default is comparable to the width-32 DCGAN (G 1.49 M + D 1.08 M).
  full = jax.eval_shape(lambda: ce.init_variables(ce.ContextEncoderConfig(),
                                                  jax.random.PRNGKey(0)))
  assert 2.0e6 < models.parameter_count(full['params']) < 2.6e6


def test_bad_settings_and_inputs_are_refused():
  with pytest.raises(ValueError, match='mask_kinds'):
    ce.ContextEncoderConfig(mask_kinds=('centre',))
  with pytest.raises(ValueError, match='resolution'):
    ce.ContextEncoderConfig(resolution=48)
  variables = ce.init_variables(TINY, jax.random.PRNGKey(0))
  with pytest.raises(ValueError, match=r'\(N, 16, 16, 3\)'):
    ce.predict(TINY, variables, np.zeros((2, 32, 32, 3)),
               np.ones((2, 32, 32, 1)))
  with pytest.raises(ValueError, match='binary'):
    ce.predict(TINY, variables, np.zeros((2, 16, 16, 3)),
               np.full((2, 16, 16, 1), 0.5))


def test_masks_cover_every_kind_and_the_loss_weights_the_hole():
  masks = np.asarray(ce.draw_masks(jax.random.PRNGKey(0), 64, 16))
  missing = 1 - masks.mean(axis=(1, 2, 3))
  # centre 25 %, pattern 25 %, random ~80 %, half 50 %.
  assert np.any(missing > 0.6) and np.any(np.abs(missing - 0.5) < 1e-6)
  assert np.any(np.abs(missing - 0.25) < 1e-6)
  centre = masks_lib.center(1, 16)
  w = np.asarray(ce.reconstruction_weights(centre, 2, 0.1))[0, :, :, 0]
  assert w[8, 8] == 1.0 and w[4, 8] == 1.0  # the hole: rows/cols 4..11
  np.testing.assert_allclose(w[3, 8], 0.1)  # a known pixel 1 px away
  np.testing.assert_allclose(w[2, 2], 0.1)  # 2 px away diagonally
  assert w[1, 8] == 0.0 and w[0, 0] == 0.0  # farther: not counted


def test_training_steps_lower_the_reconstruction_loss():
  config = dataclasses.replace(TINY, learning_rate=2e-3)
  state = ce_train.create_state(config, jax.random.PRNGKey(0))
  step = jax.jit(lambda s, b, r: ce_train.train_step(s, b, r, config=config))
  batch, rng = _float_images(8), jax.random.PRNGKey(3)
  losses = []
  for _ in range(12):  # the same batch and masks every step
    state, metrics = step(state, batch, rng)
    losses.append(float(metrics['rec_loss']))
  assert losses[-1] < 0.9 * losses[0], losses  # 0.343 -> 0.296


def test_two_device_step_equals_one_device_step():
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  state = ce_train.create_state(TINY, jax.random.PRNGKey(0))
  batch, rng = _float_images(8), jax.random.PRNGKey(1)
  single, single_metrics = jax.jit(
      lambda s, b, r: ce_train.train_step(s, b, r, config=TINY))(state, batch,
                                                                 rng)
  parallel, parallel_metrics = loop.parallel_step(
      ce_train.train_step, config=TINY)(flax.jax_utils.replicate(state), batch,
                                        rng)
  assert_first_replica_matches(parallel, parallel_metrics, single,
                               single_metrics, metric_tol=(1e-4, 1e-5),
                               state_tol=(1e-3, 1e-5))
  moved = [np.abs(a - b).max() for a, b in
           zip(leaves(single.params), leaves(state.params))]
  assert max(moved) > 1e-5  # the comparison above is not vacuous


@pytest.mark.slow
def test_a_resumed_run_logs_samples_refuses_other_settings_and_exports(
    tmp_path):
  # Exact resume at every moment: tests/test_resume.py.
  images = _images()
  partial, _ = ce_train.train(TINY, images, str(tmp_path / 'b'), stop_after=2,
                              show_progress=False)
  assert int(partial.step) == 2
  resumed, meta = ce_train.train(TINY, images, str(tmp_path / 'b'),
                                 show_progress=False)
  assert int(resumed.step) == 4
  lines = (tmp_path / 'b' / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(l)['step'] for l in lines] == [1, 2, 3, 4]
  assert sorted(os.listdir(tmp_path / 'b' / 'samples')) == [
      'step_0000002.png', 'step_0000004.png']
  assert meta['wall_seconds'] > 0
  with pytest.raises(ValueError, match='other settings.*width'):
    ce_train.train(dataclasses.replace(TINY, width=8), images,
                   str(tmp_path / 'b'), show_progress=False)
  # Export: the CE's variables, restored exactly, checksum checked.
  path = ce_train.export(str(tmp_path / 'b'), str(tmp_path / 'model'))
  config, variables, metadata = ce.restore(path)
  assert config == TINY and metadata['steps'] == 4
  for a, b in zip(leaves(variables),
                  leaves(ce_train.network_variables(resumed))):
    np.testing.assert_array_equal(a, b)


def _saved_model(tmp_path, config=TINY):
  variables = ce.init_variables(config, jax.random.PRNGKey(0))
  return ce.save(str(tmp_path / 'ce'), config, variables, {'steps': 0})


def test_method_fills_only_the_hole(tmp_path):
  method = ce.context_encoder_method(_saved_model(tmp_path))
  images = np.asarray(_float_images(6, seed=2))
  masks = np.asarray(ce.draw_masks(jax.random.PRNGKey(4), 6, 16))
  out = method.fill(images * masks, masks, 0)
  inpainted, generated = out['inpainted'], out['generated']
  known = np.broadcast_to(masks > 0.5, images.shape)
  np.testing.assert_array_equal(inpainted[known], images[known])
  np.testing.assert_array_equal(inpainted[~known], generated[~known])
  assert not np.array_equal(inpainted[~known], images[~known])
  assert method.name == 'ce' and method.variables is not None


def test_a_damaged_model_is_refused(tmp_path):
  path = _saved_model(tmp_path)
  assert ce.is_model_dir(path) and not ce.is_model_dir(str(tmp_path))
  with pytest.raises(FileNotFoundError, match='No Context Encoder'):
    ce.restore(str(tmp_path / 'missing'))
  victim = next(os.path.join(folder, f) for folder, _, files in
                sorted(os.walk(os.path.join(path, 'variables'))) for f in files)
  with open(victim, 'ab') as f:
    f.write(b'x')
  with pytest.raises(ValueError, match='checksum'):
    ce.restore(path)




def _run(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT,
                        capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.requires_data('svhn/train', 'svhn/test')
def test_train_experiment_then_reproduce(tmp_path):
  data = tmp_path / 'data'
  for split, count in (('train', input_pipeline.VALIDATION_HOLDOUT + 8),
                       ('test', 2)):
    source = os.path.join(SHARED, 'svhn', split)
    (data / 'svhn' / split).mkdir(parents=True)
    for name in input_pipeline.list_images(source)[:count]:
      os.symlink(os.path.join(source, name), data / 'svhn' / split / name)
  models = tmp_path / 'models'
  result = _run('experiments.train_context_encoder', '--dataset=svhn',
                f'--data_dir={data}', '--width=2', '--d_width=2',
                '--batch_size=4', '--num_steps=2', '--checkpoint_every=1',
                '--validation_images=4', f'--workdir={tmp_path}/run',
                f'--export_dir={models}/svhn64_ce')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'center: PSNR' in result.stdout
  card = (models / 'svhn64_ce' / 'README.md').read_text()
  assert '2 steps' in card and '| half |' in card
  assert os.path.exists(models / 'svhn64_ce' / 'samples.png')
  _, _, metadata = ce.restore(str(models / 'svhn64_ce'))
  assert set(metadata['validation']) == set(masks_lib.KINDS)

  flags = ['--datasets=svhn', '--masks=center', '--methods=ce',
           '--methods=tv', '--num_images=2', '--batch_size=2',
           f'--data_dir={data}', f'--models_dir={models}',
           f'--figures_dir={tmp_path}/figures',
           f'--results_page={tmp_path}/RESULTS.md']
  result = _run('experiments.reproduce', *flags,
                f'--output_dir={tmp_path}/out')
  assert result.returncode == 0, result.stderr[-3000:]
  table1 = (tmp_path / 'out' / 'table1.md').read_text()
  row = next(l for l in table1.splitlines() if l.startswith('| center'))
  cells = [c.strip() for c in row.split('|')[1:-1]]
  assert cells[1] == '22.3 / 19.0' and '±' in cells[2] and cells[3] == '-'
  # Without a CE model the method is skipped with a note, not an error.
  result = _run('experiments.reproduce', *flags, '--ce_model=/nonexistent',
                f'--output_dir={tmp_path}/out2')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'note: no Context Encoder' in result.stderr
  with open(tmp_path / 'out2' / 'results.csv') as f:
    assert [l.split(',')[2] for l in f.read().splitlines()[1:]] == ['tv']

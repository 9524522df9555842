"""Tests for inpaint_jax.training.loop and run_state: the machinery every
trainer shares, on a toy trainer (a running mean of its batches)."""

import dataclasses
import json
import os
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import distributed
from inpaint_jax.errors import InputError
from inpaint_jax.training import loop
from inpaint_jax.training import run_state


@flax.struct.dataclass
class _State:
  step: jax.Array
  total: Any


@dataclasses.dataclass(frozen=True)
class _Config:
  batch_size: int = 4
  scale: float = 1.0
  num_steps: int = 5
  checkpoint_every: int = 2
  keep_checkpoints: int = 10
  log_every: int = 2
  sample_every: int = 3


def _step(state, batch, rng, *, scale, offset, axis_name=None):
  """Adds scale * the global batch's mean + a per-step draw + offset."""
  images, labels = batch
  noise = loop.device_share(
      jax.random.uniform(rng, (loop.global_rows(images.shape[0], axis_name),)),
      images.shape[0], axis_name)
  mean = loop.device_mean(
      {'images': jnp.mean(images), 'labels': jnp.mean(labels),
       'noise': jnp.mean(noise)}, axis_name)
  value = scale * mean['images'] + mean['labels'] + mean['noise'] + offset
  return _State(step=state.step + 1, total=state.total + value), {
      'value': value}


def _train(workdir, config=_Config(), stop_after=None, samples=None):
  """Trains the toy trainer in `workdir`; (state, meta)."""
  record = {'toy': dataclasses.asdict(config)}
  template = _State(step=jnp.zeros((), jnp.int32), total=jnp.zeros(()))
  state, meta, manager = loop.start_run(str(workdir), 'toy', record, config,
                                        template)
  p_step = loop.parallel_step(_step, scale=config.scale,
                              broadcast={'offset': jnp.float32(0.5)})
  key = jax.random.PRNGKey(0)

  def step_fn(state, step):
    images = np.full((config.batch_size, 2), step, np.float32)
    labels = np.arange(config.batch_size, dtype=np.float32)
    return p_step(state, (images, labels), jax.random.fold_in(key, step))

  def sample(state):
    samples.append(int(distributed.unreplicate(state).step))
    return np.zeros((2, 2, 3), np.float32)

  return loop.train_loop(state, step_fn, manager, str(workdir), config,
                         meta=meta, stop_after=stop_after,
                         postfix=lambda m: {}, show_progress=False,
                         sample=sample if samples is not None else None,
                         extra_meta={'data': 'toy'})


def test_parallel_step_equals_the_one_device_step():
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  state = _State(step=jnp.zeros((), jnp.int32), total=jnp.zeros(()))
  batch = (jnp.arange(8.0).reshape(4, 2), jnp.arange(4.0))
  rng = jax.random.PRNGKey(3)
  single, single_metrics = _step(state, batch, rng, scale=2.0, offset=0.5)
  p_step = loop.parallel_step(_step, scale=2.0,
                              broadcast={'offset': jnp.float32(0.5)})
  parallel, metrics = p_step(flax.jax_utils.replicate(state), batch, rng)
  np.testing.assert_allclose(np.asarray(parallel.total), single.total,
                             rtol=1e-6)
  np.testing.assert_allclose(np.asarray(metrics['value']),
                             single_metrics['value'], rtol=1e-6)
  assert np.asarray(parallel.step).tolist() == [1, 1]


def test_check_batch_refuses_what_the_devices_or_images_cannot_do():
  loop.check_batch(4)
  with pytest.raises(InputError, match='not divisible by 2 devices'):
    loop.check_batch(3)
  images = np.zeros((5, 8, 8, 3), np.uint8)
  loop.check_batch(4, images, (8, 8, 3))
  with pytest.raises(InputError, match='the model needs'):
    loop.check_batch(4, images, (16, 16, 3))
  with pytest.raises(InputError, match='fewer than one batch'):
    loop.check_batch(6, images, (8, 8, 3))


def test_the_run_record_refuses_another_trainer_or_other_settings(tmp_path):
  settings = {'model': {'width': 4}, 'train': {'seed': 0, 'log_every': 5}}
  run_state.check_run(str(tmp_path), 'dcgan', settings)  # no record: fine
  run_state.write_run(str(tmp_path), 'dcgan', settings)
  assert run_state.read_run(str(tmp_path), 'dcgan') == settings
  # Bookkeeping may change; the record keeps the latest.
  changed = {'model': {'width': 4}, 'train': {'seed': 0, 'log_every': 7}}
  run_state.check_run(str(tmp_path), 'dcgan', changed)
  with pytest.raises(InputError, match=r'other settings \(seed, width'):
    run_state.check_run(str(tmp_path), 'dcgan',
                        {'model': {'width': 8}, 'train': {'seed': 1}})
  with pytest.raises(InputError, match='experiments.train_dcgan, not of'):
    run_state.check_run(str(tmp_path), 'encoder', settings)
  with pytest.raises(InputError, match='not of experiments.train_classifier'):
    run_state.read_run(str(tmp_path), 'classifier')
  with pytest.raises(InputError, match='holds no run.json'):
    run_state.read_run(str(tmp_path / 'none'), 'dcgan')


def test_the_loop_logs_samples_checkpoints_and_resumes_exactly(tmp_path):
  whole, meta = _train(tmp_path / 'a')
  samples = []
  _train(tmp_path / 'b', stop_after=3, samples=samples)
  assert samples == [3]  # every sample_every=3 steps and at the end
  resumed, _ = _train(tmp_path / 'b', samples=samples)
  assert samples == [3, 5]
  assert int(resumed.step) == 5 and float(resumed.total) == float(whole.total)
  assert sorted(os.listdir(tmp_path / 'b' / 'samples')) == [
      'step_0000003.png', 'step_0000005.png']
  lines = [json.loads(line) for line in
           (tmp_path / 'b' / loop.METRICS_FILE).read_text().splitlines()]
  assert [line['step'] for line in lines] == [2, 3, 4, 5]
  assert {'steps_per_second', 'wall_seconds', 'value'} <= set(lines[0])
  assert run_state.checkpoint_steps(str(tmp_path / 'b')) == [2, 3, 4, 5]
  assert meta['data'] == 'toy' and meta['metrics']['value'] > 0
  _, saved, step = run_state.restore_run_state(
      str(tmp_path / 'a'), jax.device_get(whole))
  assert step == 5 and saved['data'] == 'toy'
  with pytest.raises(InputError, match='other settings.*scale'):
    _train(tmp_path / 'b', _Config(scale=2.0))

"""Tests for inpaint_jax.inpaint: the vmapped fori_loop z-search."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import inpaint
from inpaint_jax import latent_search
from inpaint_jax import losses
from inpaint_jax import masks
from inpaint_jax import models
from inpaint_jax.config import SearchConfig
from tests.conftest import TINY_CONFIG as CONFIG


@pytest.fixture(scope='module')
def setup(tiny_variables):
  g_vars, d_vars = tiny_variables
  generator, discriminator = (models.Generator(CONFIG),
                              models.Discriminator(CONFIG))
  # Targets G can reach exactly: images of known latents.
  z_true = models.sample_z(jax.random.PRNGKey(7), 4, CONFIG.z_dim)
  images = generator.apply(g_vars, z_true)
  m = masks.center(4, 16)
  return generator, discriminator, g_vars, d_vars, images, m


def _total_loss(setup, z):
  generator, discriminator, g_vars, d_vars, images, m = setup
  loss, _ = latent_search.latent_loss(
      z, g_vars, d_vars, images, losses.importance_weights(m, 7),
      generator=generator, discriminator=discriminator, lam=0.003)
  return loss.total


def test_search_lowers_the_loss_and_keeps_z_in_range(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=60, learning_rate=0.05, record_every=20)
  result = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                          jax.random.PRNGKey(1), config)
  assert result.z.shape == (4, CONFIG.z_dim)
  assert result.generated.shape == images.shape
  assert float(jnp.abs(result.z).max()) <= 1.0
  z0 = inpaint.initial_latents(jax.random.PRNGKey(1), 4, 1, CONFIG.z_dim)[:, 0]
  initial = _total_loss(setup, z0)
  assert np.all(np.asarray(result.loss) < np.asarray(initial))
  np.testing.assert_allclose(result.loss, _total_loss(setup, result.z),
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(result.loss,
                             result.context_loss + result.prior_loss, rtol=1e-5)
  # The curve starts at the initial loss; frames are every 20 steps + start.
  assert result.loss_curve.shape == (4, 60)
  np.testing.assert_allclose(result.loss_curve[:, 0], initial, rtol=1e-4)
  assert result.frames.shape == (4, 4) + images.shape[1:]


def test_result_does_not_depend_on_the_rest_of_the_batch(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=10)
  key = jax.random.PRNGKey(3)
  full = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                        key, config)
  part = inpaint.search(generator, discriminator, g_vars, d_vars, images[2:3],
                        m[2:3], key, config, index_offset=2)
  np.testing.assert_allclose(part.z, full.z[2:3], atol=1e-5)
  np.testing.assert_allclose(part.generated, full.generated[2:3], atol=1e-5)


def test_restarts_keep_the_best_initialisation(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  key = jax.random.PRNGKey(5)
  one = SearchConfig(iterations=0, restarts=1)
  many = dataclasses.replace(one, restarts=6)
  single = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                          key, one)
  best = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                        key, many)
  z0 = inpaint.initial_latents(key, 4, 6, CONFIG.z_dim)
  per_restart = jnp.stack([_total_loss(setup, z0[:, r]) for r in range(6)], 1)
  np.testing.assert_allclose(best.loss, per_restart.min(axis=1), rtol=1e-5)
  assert np.all(np.asarray(best.loss) <= np.asarray(single.loss) + 1e-6)


def test_matches_a_plain_python_adam_loop(setup):
  import optax
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=5, learning_rate=0.1)
  key = jax.random.PRNGKey(11)
  result = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                          key, config)
  z = inpaint.initial_latents(key, 4, 1, CONFIG.z_dim)[:, 0]
  opt = optax.adam(0.1)
  state = opt.init(z)
  for _ in range(5):
    grads = jax.grad(lambda z: _total_loss(setup, z).sum())(z)
    updates, state = opt.update(grads, state, z)
    z = jnp.clip(z + updates, -1, 1)
  np.testing.assert_allclose(result.z, z, atol=1e-4)


@pytest.mark.parametrize('change,message', [
    (lambda x, m: ((x + 1) * 127.5, m), r'\[-1, 1\]'),
    (lambda x, m: (x[:, :8], m[:, :8]), 'shape'),
    (lambda x, m: (x, m[..., :1] * 0), 'no known pixel'),
    (lambda x, m: (x, jnp.ones_like(m)), 'no missing pixel'),
    (lambda x, m: (x, m * 0.5), 'binary'),
    (lambda x, m: (x, m[:2]), 'masks have shape'),
])
def test_bad_inputs_get_clear_errors(setup, change, message):
  generator, discriminator, g_vars, d_vars, images, m = setup
  bad_images, bad_masks = change(images, m)
  with pytest.raises(ValueError, match=message):
    inpaint.search(generator, discriminator, g_vars, d_vars, bad_images,
                   bad_masks, jax.random.PRNGKey(0), SearchConfig(iterations=1))


def test_sharded_search_equals_single_device_search(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  config = SearchConfig(iterations=8, restarts=2)
  key = jax.random.PRNGKey(4)
  one = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                       key, config, devices=jax.local_devices()[:1])
  two = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                       key, config, devices=jax.local_devices())
  assert len(two.z.sharding.device_set) == 2
  np.testing.assert_allclose(two.z, one.z, atol=1e-5)
  np.testing.assert_allclose(two.generated, one.generated, atol=1e-5)
  np.testing.assert_allclose(two.loss, one.loss, rtol=1e-5)


def test_progressive_search_reports_each_chunk_and_ends_as_search(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=25, restarts=2)
  key = jax.random.PRNGKey(5)
  reports = list(inpaint.search_progressive(
      generator, discriminator, g_vars, d_vars, images, m, key, config,
      every=10))
  assert [r.step for r in reports] == [10, 20, 25]
  assert all(r.result is None for r in reports[:-1])
  assert reports[0].generated.shape == images.shape
  # The loss goes down from report to report (Adam state carried over).
  assert np.all(np.asarray(reports[-1].loss) < np.asarray(reports[0].loss))
  one_shot = inpaint.search(generator, discriminator, g_vars, d_vars, images,
                            m, key, config, devices=jax.devices()[:1])
  final = reports[-1].result
  np.testing.assert_allclose(final.z, one_shot.z, atol=1e-5)
  np.testing.assert_allclose(final.loss, one_shot.loss, rtol=1e-5)
  np.testing.assert_allclose(final.generated, one_shot.generated, atol=1e-5)


def test_progressive_search_starts_from_given_latents_as_search(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=12)
  start = np.asarray(inpaint.initial_latents(jax.random.PRNGKey(9), 4, 1,
                                             CONFIG.z_dim))
  key = jax.random.PRNGKey(5)
  *_, last = inpaint.search_progressive(
      generator, discriminator, g_vars, d_vars, images, m, key, config,
      every=5, initial_z=start)
  one_shot = inpaint.search(generator, discriminator, g_vars, d_vars, images,
                            m, key, config, devices=jax.devices()[:1],
                            initial_z=start)
  np.testing.assert_allclose(last.result.z, one_shot.z, atol=1e-5)
  random_start = inpaint.search(generator, discriminator, g_vars, d_vars,
                                images, m, key, config,
                                devices=jax.devices()[:1])
  assert not np.allclose(one_shot.z, random_start.z)
  with pytest.raises(inpaint.InputError, match='initial_z has shape'):
    next(inpaint.search_progressive(generator, discriminator, g_vars, d_vars,
                                    images, m, key, config,
                                    initial_z=start[:2]))


def test_progressive_search_refuses_a_chunk_size_below_one(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  with pytest.raises(inpaint.InputError, match='every=0'):
    next(inpaint.search_progressive(generator, discriminator, g_vars, d_vars,
                                    images, m, jax.random.PRNGKey(0),
                                    every=0))


def test_early_stopping_keeps_each_image_as_a_search_of_its_own_length(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=40, learning_rate=0.05,
                        stop_tolerance=0.02, check_every=5)
  key = jax.random.PRNGKey(2)
  early = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                         key, config, devices=jax.devices()[:1])
  steps = np.asarray(early.steps)
  assert steps.shape == (4,) and np.all(steps % 5 == 0)
  assert np.all((steps >= 10) & (steps <= 40))
  # Images leave the batch at different times (the batch shrinks) ...
  assert len(set(steps.tolist())) > 1, steps
  for i, n in enumerate(steps):
    fixed = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                           key, dataclasses.replace(config, iterations=int(n),
                                                    stop_tolerance=0.0),
                           devices=jax.devices()[:1])
    # ... and each image's result is that of a plain search of its length.
    np.testing.assert_allclose(early.z[i], fixed.z[i], atol=1e-5)
    np.testing.assert_allclose(early.loss[i], fixed.loss[i], rtol=1e-5)
  assert fixed.steps is None


def test_early_stopping_splits_over_two_devices_like_one(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  config = SearchConfig(iterations=30, learning_rate=0.05,
                        stop_tolerance=0.02, check_every=5)
  key = jax.random.PRNGKey(2)
  one = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                       key, config, devices=jax.devices()[:1])
  two = inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                       key, config, devices=jax.devices()[:2])
  np.testing.assert_array_equal(one.steps, two.steps)
  np.testing.assert_allclose(one.z, two.z, atol=1e-5)


def test_early_stopping_with_recording_is_refused():
  with pytest.raises(inpaint.InputError, match='cannot be combined'):
    SearchConfig(stop_tolerance=0.01, record_every=5)

"""Tests for inpaint_jax.refine: the searches beyond the paper after the
z-search (intermediate layer optimisation, generator fine-tuning)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import inpaint
from inpaint_jax import losses
from inpaint_jax import masks
from inpaint_jax import models
from inpaint_jax import refine
from inpaint_jax.config import SearchConfig
from inpaint_jax.errors import InputError
from tests.conftest import TINY_CONFIG as CONFIG

PAPER = SearchConfig(iterations=10, window=3)
BOTH = dataclasses.replace(PAPER, ilo_steps=6, ilo_layer=1, ilo_radius=0.2,
                           finetune_steps=4, finetune_learning_rate=1e-3)


@pytest.fixture(name='setup')
def _setup(tiny_variables):
  g_vars, d_vars = tiny_variables
  generator, discriminator = (models.Generator(CONFIG),
                              models.Discriminator(CONFIG))
  # Targets G cannot reach exactly: noisy images of known latents.
  z_true = models.sample_z(jax.random.PRNGKey(7), 4, CONFIG.z_dim)
  images = jnp.clip(generator.apply(g_vars, z_true) + 0.3 * jax.random.normal(
      jax.random.PRNGKey(8), (4, 16, 16, 3)), -1, 1)
  return generator, discriminator, g_vars, d_vars, images, masks.center(4, 16)


def _search(setup, config, devices=None):
  generator, discriminator, g_vars, d_vars, images, m = setup
  return inpaint.search(generator, discriminator, g_vars, d_vars, images, m,
                        jax.random.PRNGKey(3), config,
                        devices=devices or jax.local_devices()[:1])


def _reference_projection(v, radius):
  """Projection onto the L1 ball by bisection on the threshold (NumPy)."""
  if np.abs(v).sum() <= radius:
    return v
  low, high = 0.0, np.abs(v).max()
  for _ in range(200):
    theta = (low + high) / 2
    if np.maximum(np.abs(v) - theta, 0).sum() > radius:
      low = theta
    else:
      high = theta
  return np.sign(v) * np.maximum(np.abs(v) - high, 0)


def test_the_l1_projection_lands_in_the_ball_at_the_nearest_point():
  rng = np.random.default_rng(0)
  for shape, radius in (((7,), 0.5), ((4, 4, 8), 3.0), ((30,), 100.0)):
    v = rng.standard_normal(shape).astype(np.float32)
    projected = np.asarray(refine.project_l1_ball(jnp.asarray(v), radius))
    assert np.abs(projected).sum() <= radius * (1 + 1e-5)
    np.testing.assert_allclose(projected, _reference_projection(v, radius),
                               atol=1e-5)
  inside = rng.standard_normal(5).astype(np.float32)
  np.testing.assert_array_equal(
      refine.project_l1_ball(jnp.asarray(inside), 100.0), inside)


def test_the_intermediate_search_keeps_the_activation_in_its_ball(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  weights = losses.importance_weights(m, 3)
  z = models.sample_z(jax.random.PRNGKey(1), 1, CONFIG.z_dim)[0]
  for layer in (0, 1):
    config = dataclasses.replace(BOTH, ilo_layer=layer, ilo_radius=0.05,
                                 ilo_learning_rate=0.1)
    h, start = refine.intermediate_search(
        g_vars, d_vars, images[0], weights[0], z, generator=generator,
        discriminator=discriminator, config=config)
    h0 = generator.apply(g_vars, z[None], stop=start)
    assert start == layer + 1 and h.shape == h0.shape
    moved = float(jnp.abs(h - h0).sum())
    # It moved, and no further than the radius.
    assert 0 < moved <= 0.05 * float(jnp.abs(h0).sum()) * (1 + 1e-4)


def test_the_refinements_lower_the_loss_of_the_paper_search(setup):
  paper = _search(setup, PAPER)
  for changes in (dict(ilo_steps=6, ilo_radius=0.2),
                  dict(finetune_steps=4, finetune_learning_rate=1e-3),
                  dict(ilo_steps=6, ilo_radius=0.2, finetune_steps=4,
                       finetune_learning_rate=1e-3)):
    refined = _search(setup, dataclasses.replace(PAPER, **changes))
    # The same z-search underneath, then a lower loss on every image.
    np.testing.assert_array_equal(refined.z, paper.z)
    assert np.all(np.asarray(refined.loss) < np.asarray(paper.loss)), changes
    assert not np.allclose(refined.generated, paper.generated)


def test_zero_fine_tuning_steps_give_the_paper_search_bit_for_bit(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  paper = _search(setup, PAPER)
  zero = _search(setup, dataclasses.replace(PAPER, finetune_steps=0,
                                            ilo_steps=0))
  np.testing.assert_array_equal(zero.generated, paper.generated)
  np.testing.assert_array_equal(zero.loss, paper.loss)
  # The fine-tuning itself with no steps gives the paper's G(z) too.
  weights = losses.importance_weights(m, PAPER.window)
  out = jax.jit(lambda z, image, w: refine.finetune_generator(
      g_vars, d_vars, image, w, z[None], 0, generator=generator,
      discriminator=discriminator, config=PAPER))(paper.z[0], images[0],
                                                  weights[0])
  np.testing.assert_array_equal(out['generated'], paper.generated[0])
  np.testing.assert_array_equal(out['loss'], paper.loss[0])


def test_refined_search_on_two_devices_equals_one(setup):
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  one = _search(setup, BOTH)
  two = _search(setup, BOTH, devices=jax.local_devices())
  np.testing.assert_allclose(two.generated, one.generated, atol=1e-5)
  np.testing.assert_allclose(two.loss, one.loss, rtol=1e-5)
  # Batch-independent: an image refined alone gives the same.
  generator, discriminator, g_vars, d_vars, images, m = setup
  alone = inpaint.search(generator, discriminator, g_vars, d_vars,
                         images[2:3], m[2:3], jax.random.PRNGKey(3), BOTH,
                         index_offset=2, devices=jax.local_devices()[:1])
  np.testing.assert_allclose(alone.generated[0], one.generated[2], atol=1e-5)


def test_fine_tuning_changes_only_the_top_layers_it_is_given(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  params = g_vars['params']
  for layers, tuned in ((1, {'Upsample_1'}),
                        (2, {'Upsample_0', 'BatchNorm_1', 'Upsample_1'}),
                        (9, set(params))):
    first = max(0, CONFIG.num_layers + 1 - layers)
    shared, fixed = refine._split_parameters(params, first, CONFIG.num_layers)
    assert set(shared) == tuned and set(fixed) == set(params) - tuned
  # Above an intermediate search, only the stages above its layer.
  shared, _ = refine._split_parameters(params, 2, CONFIG.num_layers)
  assert set(shared) == {'Upsample_1'}


def test_bad_refinement_settings_are_refused_in_one_line(setup):
  with pytest.raises(InputError, match='ilo_layer=2.*fix --ilo_layer'):
    _search(setup, dataclasses.replace(PAPER, ilo_steps=1, ilo_layer=2))
  for bad, flag in ((dict(ilo_radius=0.0), 'ilo_radius'),
                    (dict(ilo_steps=-1), 'ilo_steps'),
                    (dict(finetune_weight=-1.0), 'finetune_weight'),
                    (dict(finetune_layers=0), 'finetune_layers'),
                    (dict(finetune_learning_rate=float('nan')),
                     'finetune_learning_rate')):
    with pytest.raises(InputError, match=f'fix --{flag}'):
      dataclasses.replace(PAPER, **bad)
  with pytest.raises(InputError, match='cannot be combined'):
    dataclasses.replace(PAPER, finetune_steps=2, record_every=1)


def test_a_search_in_chunks_ends_refined_as_the_search(setup):
  generator, discriminator, g_vars, d_vars, images, m = setup
  whole = _search(setup, BOTH)
  reports = list(inpaint.search_progressive(
      generator, discriminator, g_vars, d_vars, images, m,
      jax.random.PRNGKey(3), BOTH, every=4))
  assert [r.step for r in reports] == [4, 8, 10]
  np.testing.assert_allclose(reports[-1].result.generated, whole.generated,
                             atol=1e-5)
  np.testing.assert_allclose(reports[-1].loss, whole.loss, rtol=1e-5)

"""Tests for inpaint_jax.models: the DCGAN's shapes, ranges and widths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax import layers
from inpaint_jax import models
from inpaint_jax.config import ModelConfig


@pytest.mark.parametrize('resolution,kernel', [(16, 5), (32, 4), (64, 5),
                                               (128, 5)])
def test_generator_and_discriminator_shapes(resolution, kernel):
  config = ModelConfig(resolution=resolution, width=4, kernel=kernel)
  g_vars, d_vars = jax.eval_shape(
      lambda: models.init_variables(config, jax.random.PRNGKey(0)))
  z = jax.ShapeDtypeStruct((3, config.z_dim), jnp.float32)
  images = jax.eval_shape(models.Generator(config).apply, g_vars, z)
  assert images.shape == (3, resolution, resolution, 3)
  assert images.dtype == jnp.float32
  logits = jax.eval_shape(models.Discriminator(config).apply, d_vars, images)
  assert logits.shape == (3,) and logits.dtype == jnp.float32


def test_generator_and_discriminator_ranges(tiny_config, tiny_variables):
  g_vars, d_vars = tiny_variables
  z = models.sample_z(jax.random.PRNGKey(1), 3, tiny_config.z_dim)
  assert float(z.min()) >= -1 and float(z.max()) <= 1
  images = models.Generator(tiny_config).apply(g_vars, z)
  assert float(jnp.abs(images).max()) <= 1.0
  logits = models.Discriminator(tiny_config).apply(d_vars, images)
  assert np.all(np.isfinite(logits))


def test_channel_widths_follow_the_paper():
  config = ModelConfig(resolution=64, width=64)
  g_vars, d_vars = jax.eval_shape(
      lambda: models.init_variables(config, jax.random.PRNGKey(0)))
  g = g_vars['params']
  assert g['Dense_0']['kernel'].shape == (100, 4 * 4 * 512)
  assert [g[f'Upsample_{i}']['kernel'].shape[-1] for i in range(4)] == [
      256, 128, 64, 3]
  assert g['Upsample_0']['kernel'].shape[:2] == (5, 5)
  d = d_vars['params']
  assert [d[f'Downsample_{i}']['kernel'].shape[-1] for i in range(4)] == [
      64, 128, 256, 512]
  assert d['Dense_0']['kernel'].shape == (4 * 4 * 512, 1)


def test_implementations_give_the_same_networks(tiny_config, tiny_variables):
  config = tiny_config
  g_vars, d_vars = tiny_variables
  z = models.sample_z(jax.random.PRNGKey(1), 2, config.z_dim)
  outputs = {}
  for impl in layers.IMPLS:
    images = models.Generator(config, impl=impl).apply(g_vars, z)
    outputs[impl] = (images,
                     models.Discriminator(config, impl=impl).apply(d_vars,
                                                                   images))
  for impl in layers.IMPLS:
    for a, b in zip(outputs[impl], outputs['auto']):
      np.testing.assert_allclose(a, b, atol=1e-4)


def test_inference_mode_is_independent_of_batch(tiny_config, tiny_variables):
  config = tiny_config
  g_vars, _ = tiny_variables
  z = models.sample_z(jax.random.PRNGKey(1), 4, config.z_dim)
  full = models.Generator(config).apply(g_vars, z)
  single = models.Generator(config).apply(g_vars, z[:1])
  np.testing.assert_allclose(full[:1], single, atol=1e-6)


def test_bad_config_is_rejected():
  with pytest.raises(ValueError, match='resolution'):
    ModelConfig(resolution=48)
  with pytest.raises(ValueError, match='impl'):
    models.Discriminator(ModelConfig(resolution=16, width=4),
                         impl='cudnn').init(jax.random.PRNGKey(0),
                                            jnp.zeros((1, 16, 16, 3)))

"""Tests for inpaint_jax.models: shapes, ranges and the fast layer rewrites."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from inpaint_jax import models
from inpaint_jax.config import ModelConfig

DN = ('NHWC', 'HWIO', 'NHWC')


def _random(shape, seed):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


FAST = ['stride1', 'phase', 'pair']


@pytest.mark.parametrize('strides,padding,lhs_dilation', [
    ((1, 1), 'SAME', (1, 1)),
    ((1, 1), ((1, 0), (0, 2)), (1, 1)),
    ((2, 2), 'SAME', (1, 1)),
    ((1, 1), ((3, 2), (3, 2)), (2, 2)),   # a stride-2 transposed conv
])
def test_conv2d_values_and_gradients_equal_lax(strides, padding,
                                               lhs_dilation):
  # conv2d spells out its input gradient (models docstring); it must be
  # autodiff's gradient of the plain lax convolution, for x and the kernel.
  x = _random((2, 9, 8, 3), 0)
  w = _random((5, 4, 3, 6), 1)
  ours = lambda x, w: models.conv2d(x, w, strides, padding, lhs_dilation)
  plain = lambda x, w: lax.conv_general_dilated(
      x, w, strides, padding, lhs_dilation=lhs_dilation, dimension_numbers=DN)
  np.testing.assert_allclose(ours(x, w), plain(x, w), atol=1e-5, rtol=1e-5)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  for a, b in zip(jax.grad(loss(ours), argnums=(0, 1))(x, w),
                  jax.grad(loss(plain), argnums=(0, 1))(x, w)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)
  # Under vmap (the z-search vmaps over images) as well.
  xs = jnp.stack([x, 2 * x])
  np.testing.assert_allclose(
      jax.vmap(jax.grad(loss(ours)), in_axes=(0, None))(xs, w),
      jax.vmap(jax.grad(loss(plain)), in_axes=(0, None))(xs, w),
      atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('impl', FAST)
@pytest.mark.parametrize('kernel', [3, 4, 5])
@pytest.mark.parametrize('size', [4, 8])
def test_fast_upsample_equals_transposed_convolution(impl, kernel, size):
  x = _random((2, size, size, 6), 0)
  w = _random((kernel, kernel, 6, 5), 1)
  reference = lax.conv_transpose(x, w, (2, 2), 'SAME', dimension_numbers=DN)
  fast = models.conv_transpose_stride2(x, w, impl)
  assert fast.shape == (2, 2 * size, 2 * size, 5)
  np.testing.assert_allclose(fast, reference, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize('impl', FAST)
def test_fast_upsample_equals_flax_conv_transpose_and_its_gradients(impl):
  x = _random((3, 8, 8, 4), 2)
  layer = nn.ConvTranspose(7, (5, 5), strides=(2, 2), padding='SAME',
                           use_bias=False)
  variables = layer.init(jax.random.PRNGKey(0), x)
  w = variables['params']['kernel']
  np.testing.assert_allclose(models.conv_transpose_stride2(x, w, impl),
                             layer.apply(variables, x), atol=2e-5)
  loss = lambda impl: lambda x, w: jnp.sum(
      jnp.sin(models.conv_transpose_stride2(x, w, impl)))
  grads_fast = jax.grad(loss(impl), argnums=(0, 1))(x, w)
  grads_lax = jax.grad(loss('lax'), argnums=(0, 1))(x, w)
  for a, b in zip(grads_fast, grads_lax):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('impl', FAST)
@pytest.mark.parametrize('kernel', [3, 4, 5])
def test_fast_downsample_equals_strided_convolution_and_gradients(impl, kernel):
  x = _random((2, 16, 16, 3), 3)
  w = _random((kernel, kernel, 3, 4), 4)
  reference = lax.conv_general_dilated(x, w, (2, 2), 'SAME',
                                       dimension_numbers=DN)
  np.testing.assert_allclose(models.conv_stride2(x, w, impl), reference,
                             atol=2e-5, rtol=1e-5)
  loss = lambda impl: lambda x, w: jnp.sum(
      jnp.cos(models.conv_stride2(x, w, impl)))
  for a, b in zip(jax.grad(loss(impl), argnums=(0, 1))(x, w),
                  jax.grad(loss('lax'), argnums=(0, 1))(x, w)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_space_depth_round_trip():
  x = _random((2, 8, 6, 3), 5)
  np.testing.assert_array_equal(models.depth_to_space(models.space_to_depth(x)),
                                x)


@pytest.mark.parametrize('resolution,kernel', [(16, 5), (32, 4), (64, 5)])
def test_generator_and_discriminator_shapes_and_ranges(resolution, kernel):
  config = ModelConfig(resolution=resolution, width=4, kernel=kernel)
  g_vars, d_vars = models.init_variables(config, jax.random.PRNGKey(0))
  z = models.sample_z(jax.random.PRNGKey(1), 3, config.z_dim)
  assert float(z.min()) >= -1 and float(z.max()) <= 1
  images = models.Generator(config).apply(g_vars, z)
  assert images.shape == (3, resolution, resolution, 3)
  assert float(jnp.abs(images).max()) <= 1.0
  logits = models.Discriminator(config).apply(d_vars, images)
  assert logits.shape == (3,)
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


def test_implementations_give_the_same_networks():
  config = ModelConfig(resolution=32, width=4)
  g_vars, d_vars = models.init_variables(config, jax.random.PRNGKey(0))
  z = models.sample_z(jax.random.PRNGKey(1), 2, config.z_dim)
  outputs = {}
  for impl in models.IMPLS:
    images = models.Generator(config, impl=impl).apply(g_vars, z)
    outputs[impl] = (images,
                     models.Discriminator(config, impl=impl).apply(d_vars,
                                                                   images))
  for impl in ('lax', 'stride1', 'phase'):
    for a, b in zip(outputs[impl], outputs['auto']):
      np.testing.assert_allclose(a, b, atol=1e-4)


def test_inference_mode_is_independent_of_batch():
  config = ModelConfig(resolution=16, width=4)
  g_vars, _ = models.init_variables(config, jax.random.PRNGKey(0))
  z = models.sample_z(jax.random.PRNGKey(1), 4, config.z_dim)
  full = models.Generator(config).apply(g_vars, z)
  single = models.Generator(config).apply(g_vars, z[:1])
  np.testing.assert_allclose(full[:1], single, atol=1e-6)


def test_bad_config_is_rejected():
  with pytest.raises(ValueError, match='resolution'):
    ModelConfig(resolution=48)
  with pytest.raises(ValueError, match='impl'):
    models._resolve_impl('cudnn', 3, 8)

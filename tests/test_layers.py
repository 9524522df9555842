"""Tests for inpaint_jax.layers: the stride-2 formulations and the rule."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from inpaint_jax import layers
from inpaint_jax import models
from inpaint_jax.config import ModelConfig

DN = ('NHWC', 'HWIO', 'NHWC')


def _random(shape, seed):
  return jax.random.normal(jax.random.PRNGKey(seed), shape, jnp.float32)


@pytest.mark.parametrize('strides,padding,lhs_dilation', [
    ((1, 1), 'SAME', (1, 1)),
    ((1, 1), ((1, 0), (0, 2)), (1, 1)),
    ((2, 2), 'SAME', (1, 1)),
    ((1, 1), ((3, 2), (3, 2)), (2, 2)),   # a stride-2 transposed conv
])
def test_conv2d_values_and_gradients_equal_lax(strides, padding,
                                               lhs_dilation):
  # conv2d spells out its input gradient (see its docstring); it must be
  # autodiff's gradient of the plain lax convolution, for x and the kernel.
  x = _random((2, 9, 8, 3), 0)
  w = _random((5, 4, 3, 6), 1)
  ours = lambda x, w: layers.conv2d(x, w, strides, padding, lhs_dilation)
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


def test_phase_taps_worked_example():
  # The k = 5 tables of the _phase_taps docstring (5 = no tap).
  up, window = layers._phase_taps(5, True)  # pylint: disable=protected-access
  assert window == 3
  np.testing.assert_array_equal(up, [[1, 0], [3, 2], [5, 4]])
  down, _ = layers._phase_taps(5, False)  # pylint: disable=protected-access
  np.testing.assert_array_equal(down, [[5, 0], [1, 2], [3, 4]])


@pytest.mark.parametrize('formulation', list(layers.FORMULATIONS))
@pytest.mark.parametrize('kernel', [3, 4, 5])
@pytest.mark.parametrize('size', [4, 8])
def test_upsample_equals_transposed_convolution_and_gradients(
    formulation, kernel, size):
  x = _random((2, size, size, 6), 0)
  w = _random((kernel, kernel, 6, 5), 1)
  plain = lambda x, w: lax.conv_transpose(x, w, (2, 2), 'SAME',
                                          dimension_numbers=DN)
  ours = lambda x, w: layers.conv_transpose_stride2(x, w, formulation)
  y = ours(x, w)
  assert y.shape == (2, 2 * size, 2 * size, 5)
  np.testing.assert_allclose(y, plain(x, w), atol=2e-5, rtol=1e-5)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  for a, b in zip(jax.grad(loss(ours), argnums=(0, 1))(x, w),
                  jax.grad(loss(plain), argnums=(0, 1))(x, w)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('formulation', list(layers.FORMULATIONS))
@pytest.mark.parametrize('kernel', [3, 4, 5])
def test_downsample_equals_strided_convolution_and_gradients(formulation,
                                                             kernel):
  x = _random((2, 16, 16, 3), 3)
  w = _random((kernel, kernel, 3, 4), 4)
  plain = lambda x, w: lax.conv_general_dilated(x, w, (2, 2), 'SAME',
                                                dimension_numbers=DN)
  ours = lambda x, w: layers.conv_stride2(x, w, formulation)
  np.testing.assert_allclose(ours(x, w), plain(x, w), atol=2e-5, rtol=1e-5)
  loss = lambda f: lambda x, w: jnp.sum(jnp.cos(f(x, w)))
  for a, b in zip(jax.grad(loss(ours), argnums=(0, 1))(x, w),
                  jax.grad(loss(plain), argnums=(0, 1))(x, w)):
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('impl', layers.IMPLS)
def test_upsample_module_equals_flax_conv_transpose(impl):
  x = _random((3, 8, 8, 4), 2)
  reference = nn.ConvTranspose(7, (5, 5), strides=(2, 2), padding='SAME')
  variables = reference.init(jax.random.PRNGKey(0), x)
  ours = models.Upsample(7, 5, use_bias=True, impl=impl)
  ours_vars = ours.init(jax.random.PRNGKey(0), x)
  # The same parameter names and shapes: checkpoints do not depend on impl.
  assert jax.tree.map(jnp.shape, ours_vars) == jax.tree.map(jnp.shape,
                                                            variables)
  np.testing.assert_allclose(ours.apply(variables, x),
                             reference.apply(variables, x), atol=2e-5)


@pytest.mark.parametrize('impl', layers.IMPLS)
def test_downsample_module_equals_flax_conv(impl):
  x = _random((3, 16, 16, 4), 2)
  reference = nn.Conv(6, (5, 5), strides=(2, 2), padding='SAME')
  variables = reference.init(jax.random.PRNGKey(0), x)
  ours = models.Downsample(6, 5, use_bias=True, impl=impl)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(0), x)) == (
      jax.tree.map(jnp.shape, variables))
  np.testing.assert_allclose(ours.apply(variables, x),
                             reference.apply(variables, x), atol=2e-5)


def test_space_depth_round_trip():
  x = _random((2, 8, 6, 3), 5)
  np.testing.assert_array_equal(layers.depth_to_space(layers.space_to_depth(x)),
                                x)


# (upsample, image-side channels, low resolution, CPU choice) of each
# stride-2 layer of the width-64 64x64 DCGAN, as benchmarks/layers.py lists.
WIDTH64_LAYERS = [
    (True, 256, 4, 'phase'), (True, 128, 8, 'phase'),
    (True, 64, 16, 'stride1'), (True, 3, 32, 'lax'),
    (False, 3, 32, 'lax'), (False, 64, 16, 'stride1'),
    (False, 128, 8, 'phase'), (False, 256, 4, 'phase')]


@pytest.mark.parametrize('upsample,image_side,low,expected', WIDTH64_LAYERS)
def test_rule_on_cpu_is_the_measured_choice(upsample, image_side, low,
                                            expected):
  assert layers.choose_formulation(upsample, image_side, low,
                                   'cpu') == expected


@pytest.mark.parametrize('backend', ['gpu', 'cuda', 'rocm', 'tpu', 'METAL'])
@pytest.mark.parametrize('upsample,image_side,low,expected', WIDTH64_LAYERS)
def test_rule_elsewhere_is_plain_lax(backend, upsample, image_side, low,
                                     expected):
  del expected
  assert layers.choose_formulation(upsample, image_side, low,
                                   backend) == 'lax'


# In training (kernel gradients too) two layers take 'pair' instead.
TRAINING_CHANGES = {(True, 3, 32): 'pair', (False, 64, 16): 'pair'}


@pytest.mark.parametrize('upsample,image_side,low,expected', WIDTH64_LAYERS)
def test_training_rule_on_cpu(upsample, image_side, low, expected):
  expected = TRAINING_CHANGES.get((upsample, image_side, low), expected)
  assert layers.choose_formulation(upsample, image_side, low, 'cpu',
                                   training=True) == expected
  assert layers.choose_formulation(upsample, image_side, low, 'tpu',
                                   training=True) == 'lax'


def test_rule_defaults_to_the_running_backend():
  assert layers.choose_formulation(True, 64, 16) == layers.choose_formulation(
      True, 64, 16, jax.default_backend())


def test_networks_use_the_rule_per_layer(monkeypatch):
  # The formulation each layer of the width-64 net gets under 'auto'.
  calls = []

  def recording(original):
    def layer(x, kernel, formulation):
      calls.append(formulation)
      return original(x, kernel, formulation)
    return layer

  for name in ('conv_transpose_stride2', 'conv_stride2'):
    monkeypatch.setattr(layers, name, recording(getattr(layers, name)))
  config = ModelConfig(width=64)
  key = jax.random.PRNGKey(0)
  z, images = jnp.zeros((2, config.z_dim)), jnp.zeros((2, 64, 64, 3))
  for train in (False, True):
    calls.clear()
    jax.eval_shape(lambda: models.Generator(config).init(key, z, train=train))
    jax.eval_shape(lambda: models.Discriminator(config).init(
        key, images, train=train))
    expected = [
        TRAINING_CHANGES.get((u, c, r), e) if train else e
        for u, c, r, e in WIDTH64_LAYERS]
    if jax.default_backend() != 'cpu':
      expected = ['lax'] * len(expected)
    assert calls == expected, train


def test_unknown_names_are_rejected():
  x = _random((1, 4, 4, 2), 0)
  with pytest.raises(ValueError, match=r"impl='cudnn'.*'auto'.*'pair'"):
    models.Upsample(3, impl='cudnn').init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match=r"'auto'.*one of \('lax'"):
    layers.conv_stride2(x, _random((5, 5, 2, 3), 1), 'auto')
  with pytest.raises(ValueError, match='impl'):
    models.Generator(ModelConfig(resolution=16, width=4), impl='cudnn').init(
        jax.random.PRNGKey(0), jnp.zeros((1, 100)))

"""Tests for inpaint_jax.training.augment (DiffAugment) and the TrainConfig
field that selects it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax.config import TrainConfig
from inpaint_jax.errors import InputError
from inpaint_jax.training import augment
from inpaint_jax.training import loop

ALL = ('color', 'translation', 'cutout')


def _images(n=4, size=16, seed=0):
  return jax.random.uniform(jax.random.PRNGKey(seed), (n, size, size, 3),
                            minval=-1, maxval=1)


def test_the_policy_is_parsed_and_bad_ones_are_refused():
  assert TrainConfig().augment_policy == ()
  assert TrainConfig(augment='cutout, color').augment_policy == ('cutout',
                                                                 'color')
  for bad in ('colour', 'color,color', 'translation;cutout'):
    with pytest.raises(InputError, match='fix --augment'):
      TrainConfig(augment=bad)


def test_no_policy_returns_the_images_themselves():
  images = _images()
  assert augment.diff_augment(images, jax.random.PRNGKey(0), ()) is images


def test_translation_moves_the_image_and_zeroes_the_border():
  images = _images(n=2)
  params = {'shift': jnp.array([[2, -1], [0, 0]])}
  out = np.asarray(augment.apply(images, params))
  np.testing.assert_array_equal(out[0, 2:, :15], images[0, :14, 1:])
  np.testing.assert_array_equal(out[0, :2], 0)
  np.testing.assert_array_equal(out[0, :, 15], 0)
  np.testing.assert_array_equal(out[1], images[1])


def test_cutout_zeroes_a_square_of_half_the_side():
  images = _images(n=2) * 0.5 + 0.6  # no pixel is zero
  params = {'cutout': jnp.array([[3, 5], [-4, 12]])}
  out = np.asarray(augment.apply(images, params))
  zero = out == 0
  assert zero[0, 3:11, 5:13].all() and zero[0].sum() == 8 * 8 * 3
  # Reaching over the corner: the part inside the image.
  assert zero[1, 0:4, 12:16].all() and zero[1].sum() == 4 * 4 * 3


def test_colour_changes_each_image_by_its_own_draw():
  images = _images(n=3)
  params = {'brightness': jnp.array([0.5, 0., 0.]),
            'saturation': jnp.array([1., 0., 1.]),
            'contrast': jnp.array([1., 1., 1.5])}
  out = np.asarray(augment.apply(images, params))
  np.testing.assert_allclose(out[0], images[0] + 0.5, atol=1e-6)
  np.testing.assert_allclose(out[1], np.repeat(
      np.mean(images[1], axis=-1, keepdims=True), 3, axis=-1), atol=1e-6)
  mean = np.mean(images[2])
  np.testing.assert_allclose(out[2], (images[2] - mean) * 1.5 + mean,
                             atol=1e-6)


def test_the_parameters_stay_in_their_ranges():
  params = augment.draw_parameters(jax.random.PRNGKey(0), 4096, 64, ALL)
  assert -0.5 <= params['brightness'].min() < params['brightness'].max() < .5
  assert 0 <= params['saturation'].min() and params['saturation'].max() < 2
  assert 0.5 <= params['contrast'].min() and params['contrast'].max() < 1.5
  assert set(np.unique(params['shift']).tolist()) == set(range(-8, 9))
  assert params['cutout'].min() == -16 and params['cutout'].max() == 48


def test_augmentation_is_differentiable_in_the_images():
  images = _images()
  weights = jax.random.normal(jax.random.PRNGKey(1), images.shape)
  loss = lambda x: jnp.sum(augment.diff_augment(
      x, jax.random.PRNGKey(2), ALL) * weights)
  grad = jax.grad(loss)(images)
  assert np.isfinite(grad).all() and np.abs(grad).max() > 0
  # Without colour (whose image means reach every pixel), cut-out and
  # shifted-out pixels get no gradient and the rest do.
  geometric = jax.grad(lambda x: jnp.sum(augment.diff_augment(
      x, jax.random.PRNGKey(2), ('translation', 'cutout')) * weights))(images)
  assert 0.2 < np.mean(np.asarray(geometric) != 0) < 1
  # The gradient is that of a linear map: a finite difference agrees.
  direction = jax.random.normal(jax.random.PRNGKey(3), images.shape)
  eps = 1e-2
  numeric = (loss(images + eps * direction) - loss(images)) / eps
  np.testing.assert_allclose(numeric, jnp.sum(grad * direction), rtol=1e-3)


def test_two_devices_augment_as_one():
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  images = _images(n=8)
  key = jax.random.PRNGKey(4)
  single = augment.diff_augment(images, key, ALL)
  parallel = jax.pmap(
      lambda x: augment.diff_augment(x, key, ALL, loop.AXIS),
      axis_name=loop.AXIS)(images.reshape(2, 4, 16, 16, 3))
  np.testing.assert_allclose(np.asarray(parallel).reshape(images.shape),
                             single, atol=1e-6)
  assert not np.allclose(single, images)

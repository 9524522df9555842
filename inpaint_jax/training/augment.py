"""DiffAugment (Zhao et al. 2020): differentiable augmentations for D.

Beyond the paper. D sees every image, real or generated, through the same
random transformations, and G's gradient flows back through them, so D
cannot memorise a small training set (the paper's recipe over-fits D on our
~8k images per data set). The three policies of the reference code
(mit-han-lab/data-efficient-gans), on images in [-1, 1], NHWC:

* 'color': brightness + U(-0.5, 0.5); saturation (deviation from the pixel's
  channel mean) x U(0, 2); contrast (deviation from the image mean)
  x U(0.5, 1.5).
* 'translation': a shift of up to 1/8 of the side in each direction, the
  uncovered border zero.
* 'cutout': a zeroed square of half the side at a uniform position (it may
  reach over the border).

Parameters are drawn for the global batch and each device takes its rows
(as the latents are), so a pmap over D devices augments exactly as one
device does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from inpaint_jax.training import loop

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def draw_parameters(key: jax.Array, n: int, size: int,
                    policy: tuple[str, ...]) -> dict[str, jax.Array]:
  """Random parameters of `policy` for n images of side `size`.

  Returns {name: (n, ...) array}: 'brightness', 'saturation', 'contrast'
  (floats), 'shift' ((n, 2) ints in [-size/8, size/8]) and 'cutout' ((n, 2)
  ints, the square's top-left corner, in [-size/4, 3 size/4]).
  """
  keys = jax.random.split(key, 5)
  params = {}
  if 'color' in policy:
    params['brightness'] = jax.random.uniform(keys[0], (n,)) - 0.5
    params['saturation'] = jax.random.uniform(keys[1], (n,)) * 2
    params['contrast'] = jax.random.uniform(keys[2], (n,)) + 0.5
  if 'translation' in policy:
    limit = int(size * TRANSLATION_RATIO + 0.5)
    params['shift'] = jax.random.randint(keys[3], (n, 2), -limit, limit + 1)
  if 'cutout' in policy:
    side = int(size * CUTOUT_RATIO + 0.5)
    params['cutout'] = jax.random.randint(keys[4], (n, 2), -(side // 2),
                                          size - side // 2 + (1 - side % 2))
  return params


def apply(images: jax.Array, params: dict[str, jax.Array]) -> jax.Array:
  """`images` (B, H, W, C) in [-1, 1] transformed by `draw_parameters`'s
  (B, ...) parameters; differentiable in `images`."""
  x = images
  if 'brightness' in params:
    x = x + params['brightness'][:, None, None, None]
    mean = jnp.mean(x, axis=3, keepdims=True)
    x = (x - mean) * params['saturation'][:, None, None, None] + mean
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * params['contrast'][:, None, None, None] + mean
  if 'shift' in params:
    x = jax.vmap(_translate)(x, params['shift'])
  if 'cutout' in params:
    size = x.shape[1]
    side = int(size * CUTOUT_RATIO + 0.5)
    rows = jnp.arange(size)[None, :, None]
    cols = jnp.arange(size)[None, None, :]
    top = params['cutout'][:, 0, None, None]
    left = params['cutout'][:, 1, None, None]
    inside = ((rows >= top) & (rows < top + side) & (cols >= left)
              & (cols < left + side))
    x = x * (~inside)[..., None].astype(x.dtype)
  return x


def _translate(image: jax.Array, shift: jax.Array) -> jax.Array:
  """`image` (H, W, C) moved by `shift` (dy, dx), the border zero."""
  h, w, _ = image.shape
  pad_h, pad_w = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO
                                                       + 0.5)
  padded = jnp.pad(image, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)))
  return jax.lax.dynamic_slice(
      padded, (pad_h - shift[0], pad_w - shift[1], 0), image.shape)


def diff_augment(images: jax.Array, key: jax.Array, policy: tuple[str, ...],
                 axis_name: str | None = None) -> jax.Array:
  """`images` (this device's (B, H, W, C) share, in [-1, 1]) augmented by
  `policy` with parameters drawn from `key` for the global batch; `images`
  itself when the policy is empty."""
  if not policy:
    return images
  local = images.shape[0]
  params = draw_parameters(key, loop.global_rows(local, axis_name),
                           images.shape[1], policy)
  params = jax.tree_util.tree_map(
      lambda p: loop.device_share(p, local, axis_name), params)
  return apply(images, params)

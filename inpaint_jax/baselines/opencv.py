"""OpenCV's `cv2.inpaint`: the tool a user already has, as a baseline.

Two algorithms, both diffusing the known border into the hole: Telea (2004),
a fast marching method, and Navier-Stokes (Bertalmio et al. 2001). OpenCV is
an optional extra (`pip install -e '.[opencv]'`, the opencv-python-headless
wheel); `available()` says whether it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np

from inpaint_jax import methods
from inpaint_jax.data import images as image_io
from inpaint_jax.errors import InputError

ALGORITHMS = ('telea', 'ns')
# Neighbourhood radius in pixels (the value of OpenCV's own example).
RADIUS = 3


def available() -> bool:
  """Whether OpenCV (the cv2 module) is installed."""
  return importlib.util.find_spec('cv2') is not None


def _cv2() -> Any:
  if not available():
    raise InputError('The OpenCV baselines need OpenCV: pip install -e'
                     " '.[opencv]' (or pip install opencv-python-headless).")
  return importlib.import_module('cv2')


def opencv_inpaint(images: np.ndarray, masks: np.ndarray,
                   algorithm: str = 'telea',
                   radius: int = RADIUS) -> np.ndarray:
  """`cv2.inpaint` of every image; the known pixels are returned exactly.

  Args:
    images: (N, H, W, 3) in [-1, 1] (missing pixels ignored).
    masks: (N, H, W, 1), 1 = known pixel.
    algorithm: 'telea' (cv2.INPAINT_TELEA) or 'ns' (cv2.INPAINT_NS).
    radius: the algorithm's neighbourhood radius in pixels.

  Returns:
    (N, H, W, 3) float32 in [-1, 1]. OpenCV works on 8-bit images, so the
    fill is quantised to 256 levels.
  """
  if algorithm not in ALGORITHMS:
    raise InputError(f'algorithm={algorithm!r}: use one of {ALGORITHMS}.')
  cv2 = _cv2()
  flag = {'telea': cv2.INPAINT_TELEA, 'ns': cv2.INPAINT_NS}[algorithm]
  images = np.asarray(images, np.float32)
  masks = np.asarray(masks, np.float32)
  pixels = image_io.to_uint8(images)
  holes = ((masks[..., 0] < 0.5) * 255).astype(np.uint8)
  filled = np.stack([cv2.inpaint(np.ascontiguousarray(p), h, radius, flag)
                     for p, h in zip(pixels, holes)])
  filled = filled.astype(np.float32) / 127.5 - 1.0
  return masks * images + (1.0 - masks) * filled


def opencv_method(algorithm: str, radius: int = RADIUS) -> methods.Method:
  """`opencv_inpaint` as a `methods.Method` named 'opencv_<algorithm>'."""
  _cv2()  # refused now, not at the first batch
  cv2 = importlib.import_module('cv2')
  return methods.fill_method(
      f'opencv_{algorithm}',
      lambda images, masks: opencv_inpaint(images, masks, algorithm, radius),
      {'algorithm': algorithm, 'radius': radius, 'opencv': cv2.__version__})

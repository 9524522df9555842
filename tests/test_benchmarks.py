"""The benchmarks' own machinery (their numbers are measured, not tested)."""

import os

import jax
import numpy as np

from benchmarks import refinements
from inpaint_jax import methods
from inpaint_jax.evaluation import evaluate


def test_refinements_resume_a_method_with_the_seconds_it_was_measured_in(
    tmp_path):
  calls = []

  def counted_fill(images, masks):
    calls.append(len(images))
    return methods.mean_fill(images, masks)

  method = methods.fill_method('counted', counted_fill)
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
  masks = evaluate.make_masks('center', None, 3, 16, jax.random.PRNGKey(0))
  names = [f'{i}.png' for i in range(3)]
  folder = str(tmp_path / 'svhn' / 'center' / 'paper')

  first, seconds = refinements.timed(method, 'paper', images, names, masks,
                                     None, folder)
  again, seconds_again = refinements.timed(method, 'paper', images, names,
                                           masks, None, folder)
  assert calls == [3] and seconds_again == seconds > 0
  np.testing.assert_array_equal(again.inpainted, first.inpainted)
  # Another label (or method, images, masks) is another run.
  refinements.timed(method, 'paper x4', images, names, masks, None, folder)
  assert calls == [3, 3]
  # Results saved without their seconds (killed in between) run again.
  os.remove(os.path.join(folder, 'seconds.json'))
  refinements.timed(method, 'paper x4', images, names, masks, None, folder)
  assert calls == [3, 3, 3]
  # Without a folder nothing is saved or reused.
  refinements.timed(method, 'paper', images, names, masks, None)
  assert calls == [3, 3, 3, 3]

"""Tests for inpaint_jax.validation: the validation curve of a training run."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import train, validation
from inpaint_jax.config import SearchConfig, TrainConfig
from inpaint_jax.errors import InputError


@pytest.mark.slow
def test_every_kept_checkpoint_is_evaluated_once(tmp_path, tiny_config):
  rng = np.random.default_rng(0)
  workdir = str(tmp_path / 'run')
  train.train_and_evaluate(
      tiny_config, TrainConfig(batch_size=8, num_steps=4, checkpoint_every=2,
                               keep_checkpoints=10, sample_every=4),
      rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8), workdir,
      show_progress=False)
  images = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
  names = ['a', 'b', 'c']
  search = SearchConfig(iterations=2)
  rows = validation.validation_curve(workdir, images, names, kinds=('center',),
                                     search_config=search, batch_size=2,
                                     show_progress=False)
  assert [(r['step'], r['mask']) for r in rows] == [(2, 'center'),
                                                   (4, 'center')]
  assert all(np.isfinite(r['mean_psnr']) and r['num_images'] == 3
             for r in rows)
  # Another mask later: only the new pairs are evaluated.
  rows = validation.validation_curve(workdir, images, names,
                                     kinds=('center', 'half'),
                                     search_config=search, every=4,
                                     batch_size=2, show_progress=False)
  assert sorted((r['step'], r['mask']) for r in rows) == [
      (2, 'center'), (4, 'center'), (4, 'half')]
  with open(os.path.join(workdir, validation.CURVE_FILE)) as f:
    assert len([json.loads(line) for line in f]) == 3
  with Image.open(os.path.join(workdir, validation.PLOT_FILE)) as plot:
    assert plot.size == (640, 400)
  with pytest.raises(InputError, match='no training checkpoint'):
    validation.validation_curve(workdir, images, names, every=3)

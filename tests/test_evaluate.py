"""evaluate.inpaint_and_evaluate: a killed evaluation resumes where it stopped."""

import os

import jax
import numpy as np
import pytest

from inpaint_jax import checkpoints, evaluate, inpaint, models
from inpaint_jax.config import ModelConfig, SearchConfig

CONFIG = ModelConfig(resolution=16, width=4)
SEARCH = SearchConfig(iterations=3)


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
  g_vars, d_vars = models.init_variables(CONFIG, jax.random.PRNGKey(0))
  return checkpoints.save_model(str(tmp_path_factory.mktemp('m') / 'model'),
                                CONFIG, g_vars, d_vars)


@pytest.fixture(scope='module')
def images():
  rng = np.random.default_rng(0)
  return rng.uniform(-1, 1, (5, 16, 16, 3)).astype(np.float32)


class _CountingSearch:
  """inpaint.search that counts its calls and can fail on call `fail_on`."""

  def __init__(self, fail_on=None):
    self.calls = 0
    self.fail_on = fail_on
    self.search = inpaint.search

  def __call__(self, *args, **kwargs):
    self.calls += 1
    if self.calls == self.fail_on:
      raise KeyboardInterrupt  # as when the user presses Ctrl-C
    return self.search(*args, **kwargs)


def _evaluate(model_dir, images, output_dir, seed=0):
  names = [f'im{i}.png' for i in range(len(images))]
  return evaluate.inpaint_and_evaluate(
      model_dir, images, names, str(output_dir), mask_kind='center',
      search_config=SEARCH, batch_size=2, seed=seed, save_images=False,
      show_progress=False)


def test_killed_run_resumes_with_the_same_results(model_dir, images, tmp_path,
                                                  monkeypatch):
  full = _evaluate(model_dir, images, tmp_path / 'full')
  assert full['resumed_images'] == 0
  assert not os.path.exists(tmp_path / 'full' / evaluate.PARTIAL_DIR)

  killed = _CountingSearch(fail_on=3)  # batches of 2, 2, 1: dies in the last
  monkeypatch.setattr(inpaint, 'search', killed)
  with pytest.raises(KeyboardInterrupt):
    _evaluate(model_dir, images, tmp_path / 'run')
  assert len(os.listdir(tmp_path / 'run' / evaluate.PARTIAL_DIR)) == 2

  resumed = _CountingSearch()
  monkeypatch.setattr(inpaint, 'search', resumed)
  again = _evaluate(model_dir, images, tmp_path / 'run')
  assert resumed.calls == 1  # only the batch that had not finished
  assert again['resumed_images'] == 4
  for key in ('mean_psnr', 'mean_ssim', 'mean_loss'):
    np.testing.assert_allclose(again[key], full[key], rtol=1e-6)
  assert (open(tmp_path / 'run' / 'metrics.csv').read()
          == open(tmp_path / 'full' / 'metrics.csv').read())
  assert not os.path.exists(tmp_path / 'run' / evaluate.PARTIAL_DIR)


def test_partial_results_of_other_settings_are_not_reused(model_dir, images,
                                                          tmp_path,
                                                          monkeypatch):
  killed = _CountingSearch(fail_on=2)
  monkeypatch.setattr(inpaint, 'search', killed)
  with pytest.raises(KeyboardInterrupt):
    _evaluate(model_dir, images, tmp_path / 'run', seed=0)
  counting = _CountingSearch()
  monkeypatch.setattr(inpaint, 'search', counting)
  summary = _evaluate(model_dir, images, tmp_path / 'run', seed=1)
  assert counting.calls == 3 and summary['resumed_images'] == 0
  # A torn file (killed mid-write) is searched again, not read.
  (tmp_path / 'torn').mkdir()
  path = evaluate._partial_path(str(tmp_path / 'torn'), 0)
  os.makedirs(os.path.dirname(path))
  with open(path, 'wb') as f:
    f.write(b'PK\x03\x04 cut off')
  assert evaluate._load_partial(str(tmp_path / 'torn'), 0, 'x') is None

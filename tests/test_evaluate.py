"""evaluate: methods plug into `evaluate`; a killed evaluation resumes."""

import json
import os

import jax
import numpy as np
import pytest

from inpaint_jax import checkpoints, errors, evaluate, inpaint, metrics
from inpaint_jax import results
from inpaint_jax.config import SearchConfig

SEARCH = SearchConfig(iterations=3)


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory, tiny_config, tiny_variables):
  return checkpoints.save_model(str(tmp_path_factory.mktemp('m') / 'model'),
                                tiny_config, *tiny_variables)


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


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_results(model_dir, images, tmp_path,
                                                  monkeypatch):
  full = _evaluate(model_dir, images, tmp_path / 'full')
  assert full['resumed_images'] == 0
  assert not os.path.exists(tmp_path / 'full' / results.PARTIAL_DIR)

  killed = _CountingSearch(fail_on=3)  # batches of 2, 2, 1: dies in the last
  monkeypatch.setattr(inpaint, 'search', killed)
  with pytest.raises(KeyboardInterrupt):
    _evaluate(model_dir, images, tmp_path / 'run')
  assert len(os.listdir(tmp_path / 'run' / results.PARTIAL_DIR)) == 2

  resumed = _CountingSearch()
  monkeypatch.setattr(inpaint, 'search', resumed)
  again = _evaluate(model_dir, images, tmp_path / 'run')
  assert resumed.calls == 1  # only the batch that had not finished
  assert again['resumed_images'] == 4
  for key in ('mean_psnr', 'mean_ssim', 'mean_loss'):
    np.testing.assert_allclose(again[key], full[key], rtol=1e-6)
  assert (open(tmp_path / 'run' / 'metrics.csv').read()
          == open(tmp_path / 'full' / 'metrics.csv').read())
  assert not os.path.exists(tmp_path / 'run' / results.PARTIAL_DIR)


@pytest.mark.slow
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
  path = results.partial_path(str(tmp_path / 'torn'), 0)
  os.makedirs(os.path.dirname(path))
  with open(path, 'wb') as f:
    f.write(b'PK\x03\x04 cut off')
  assert results.load_partial(str(tmp_path / 'torn'), 0, 'x') is None


def _center_masks(n):
  return evaluate.make_masks('center', None, n, 16, jax.random.PRNGKey(0))


def test_a_baseline_method_plugs_into_evaluate(images, tmp_path):
  masks = _center_masks(len(images))
  names = [f'im{i}.png' for i in range(len(images))]
  method = evaluate.mean_fill_method()
  result = evaluate.evaluate(method, images, names, masks, batch_size=2,
                             resume_dir=str(tmp_path), show_progress=False)
  expected = metrics.psnr(evaluate.mean_fill(images, masks), images)
  np.testing.assert_allclose(result.metrics['psnr'], expected, rtol=1e-6)
  np.testing.assert_array_equal(result.metrics['psnr'],
                                result.metrics['psnr_mean_fill'])
  assert list(result.metrics) == ['psnr', 'ssim', 'psnr_mean_fill',
                                  'missing_fraction']
  assert result.method == 'mean_fill' and result.names == tuple(names)
  assert result.inpainted.shape == images.shape and result.frames is None
  assert result.summary['num_images'] == 5
  assert result.summary['mean_psnr'] == pytest.approx(float(expected.mean()))
  # Its batches were saved, so the same call again fills nothing.
  assert len(os.listdir(tmp_path / results.PARTIAL_DIR)) == 3
  again = evaluate.evaluate(method, images, names, masks, batch_size=2,
                            resume_dir=str(tmp_path), show_progress=False)
  assert again.summary['resumed_images'] == 5
  np.testing.assert_array_equal(again.inpainted, result.inpainted)
  results.remove_partial(str(tmp_path), len(images))
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)


def test_method_scores_become_metrics_and_missing_outputs_are_named(images):
  masks = _center_masks(len(images))
  names = [str(i) for i in range(len(images))]
  offsets = []

  def fill(batch, batch_masks, index_offset):
    offsets.append(index_offset)
    return {'generated': batch, 'inpainted': batch,
            'loss': np.full(len(batch), index_offset, np.float32)}

  method = evaluate.Method('masked_input', fill, scores=('loss',),
                           settings={'k': 1})
  result = evaluate.evaluate(method, images, names, masks, batch_size=2,
                             show_progress=False)
  assert offsets == [0, 2, 4]
  np.testing.assert_array_equal(result.metrics['loss'], [0, 0, 2, 2, 4])
  assert list(result.metrics)[-2:] == ['loss', 'missing_fraction']
  assert result.summary['k'] == 1 and 'mean_loss' in result.summary
  broken = evaluate.Method('broken', lambda b, m, i: {'generated': b})
  with pytest.raises(ValueError, match='inpainted'):
    evaluate.evaluate(broken, images, names, masks, show_progress=False)


def test_bad_inputs_raise_input_errors(model_dir, images, tmp_path):
  method = evaluate.mean_fill_method()
  masks = _center_masks(len(images))
  with pytest.raises(errors.InputError, match='names'):
    evaluate.evaluate(method, images, ['a'], masks, show_progress=False)
  with pytest.raises(errors.InputError, match='No images'):
    evaluate.evaluate(method, images[:0], [], masks[:0], show_progress=False)
  with pytest.raises(errors.InputError, match='names'):
    evaluate.inpaint_and_evaluate(model_dir, images, ['a'], str(tmp_path))


def test_summary_and_result_of_a_checkpoint(model_dir, images, tmp_path):
  summary = _evaluate(model_dir, images, tmp_path)
  assert list(json.loads((tmp_path / 'metrics.json').read_text())) == list(
      summary)
  assert list(summary)[:12] == [
      'checkpoint', 'model', 'search', 'mask', 'blend', 'seed', 'num_images',
      'seconds', 'images_per_second', 'device', 'compute_dtype',
      'resumed_images']
  assert [k for k in summary if k.startswith('mean_')] == [
      'mean_psnr', 'mean_ssim', 'mean_psnr_mean_fill', 'mean_loss',
      'mean_missing_fraction']
  evaluated = evaluate.evaluate_checkpoint(
      model_dir, images, [f'im{i}.png' for i in range(len(images))],
      search_config=SEARCH, batch_size=2, show_progress=False)
  assert evaluated.summary.keys() == summary.keys()
  for key in ('mean_psnr', 'mean_loss'):
    np.testing.assert_allclose(evaluated.summary[key], summary[key],
                               rtol=1e-6)

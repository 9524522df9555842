"""evaluate: methods plug into `evaluate`; a killed evaluation resumes."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from inpaint_jax import checkpoints
from inpaint_jax import errors
from inpaint_jax.evaluation import evaluate
from inpaint_jax import inpaint
from inpaint_jax import metrics
from inpaint_jax import methods
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.evaluation import results
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
  method = methods.mean_fill_method()
  result = evaluate.evaluate(method, images, names, masks, batch_size=2,
                             resume_dir=str(tmp_path), show_progress=False)
  expected = metrics.psnr(methods.mean_fill(images, masks), images)
  np.testing.assert_allclose(result.metrics['psnr'], expected, rtol=1e-6)
  np.testing.assert_array_equal(result.metrics['psnr'],
                                result.metrics['psnr_mean_fill'])
  assert list(result.metrics) == ['psnr', 'ssim', 'psnr_mean_fill',
                                  'missing_fraction']
  assert result.method == 'mean_fill' and result.names == tuple(names)
  assert result.inpainted.shape == images.shape and result.frames is None
  assert result.summary['num_images'] == 5
  assert result.summary['mean_psnr'] == pytest.approx(float(expected.mean()))
  # Realism of the set: the mean fill is the mean-fill reference itself.
  assert result.summary['ms_swd'] == result.summary['ms_swd_mean_fill'] > 0
  assert list(result.summary['ms_swd_levels']) == ['swd_16']
  # Its batches were saved, so the same call again fills nothing.
  assert len(os.listdir(tmp_path / results.PARTIAL_DIR)) == 3
  again = evaluate.evaluate(method, images, names, masks, batch_size=2,
                            resume_dir=str(tmp_path), show_progress=False)
  assert again.summary['resumed_images'] == 5
  np.testing.assert_array_equal(again.inpainted, result.inpainted)
  results.remove_partial(str(tmp_path))
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)


def test_an_averaged_method_fills_with_the_mean_of_its_members(images):
  masks = _center_masks(len(images))
  calls = []

  def constant(value):
    def fill(batch, batch_masks):
      calls.append(value)
      return batch * batch_masks + value * (1.0 - batch_masks)
    return methods.fill_method(f'constant{value}', fill, {'value': value})

  averaged = methods.average_method('both', [constant(0.5), constant(-0.25)])
  out = averaged.fill(images * masks, masks, 0)
  np.testing.assert_allclose(out['inpainted'],
                             images * masks + 0.125 * (1.0 - masks),
                             atol=1e-6)
  assert calls == [0.5, -0.25]
  assert averaged.settings == {'members': [{'value': 0.5},
                                           {'value': -0.25}]}
  with pytest.raises(ValueError, match='at least one'):
    methods.average_method('none', [])


def test_method_scores_become_metrics_and_missing_outputs_are_named(images):
  masks = _center_masks(len(images))
  names = [str(i) for i in range(len(images))]
  offsets = []

  def fill(batch, batch_masks, index_offset):
    offsets.append(index_offset)
    return {'generated': batch, 'inpainted': batch,
            'loss': np.full(len(batch), index_offset, np.float32)}

  method = methods.Method('masked_input', fill, scores=('loss',),
                           settings={'k': 1})
  result = evaluate.evaluate(method, images, names, masks, batch_size=2,
                             show_progress=False)
  assert offsets == [0, 2, 4]
  np.testing.assert_array_equal(result.metrics['loss'], [0, 0, 2, 2, 4])
  assert list(result.metrics)[-2:] == ['loss', 'missing_fraction']
  assert result.summary['k'] == 1 and 'mean_loss' in result.summary
  broken = methods.Method('broken', lambda b, m, i: {'generated': b})
  with pytest.raises(ValueError, match='inpainted'):
    evaluate.evaluate(broken, images, names, masks, show_progress=False)


def test_bad_inputs_raise_input_errors(model_dir, images, tmp_path):
  method = methods.mean_fill_method()
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


def test_early_stopping_reports_the_iterations_of_each_image(model_dir,
                                                             images):
  names = [f'im{i}.png' for i in range(len(images))]
  config = SearchConfig(iterations=30, learning_rate=0.05,
                        stop_tolerance=0.02, check_every=5)
  evaluated = evaluate.evaluate_checkpoint(
      model_dir, images, names, search_config=config, batch_size=4,
      show_progress=False)
  steps = evaluated.metrics['steps']
  assert steps.shape == (5,) and np.all((steps >= 10) & (steps <= 30))
  assert evaluated.summary['mean_steps'] == pytest.approx(steps.mean())
  assert evaluated.summary['search']['stop_tolerance'] == 0.02


# The output folder: checked and locked before any work ------------------------


def _no_restore(*args, **kwargs):
  raise AssertionError('the model was restored before the folder was checked')


def test_an_unusable_output_dir_is_refused_before_any_work(
    model_dir, images, tmp_path, monkeypatch):
  (tmp_path / 'file').write_text('x')
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(checkpoints, 'restore_model', _no_restore)
  names = [f'im{i}.png' for i in range(len(images))]
  for output_dir, match in [
      ('', 'output directory is empty'),
      ('file', "'file' is a file"),
      (str(tmp_path / 'file' / 'out'), "'.*file' is a file"),
  ]:
    with pytest.raises(errors.InputError, match=match):
      evaluate.inpaint_and_evaluate(model_dir, images, names, output_dir,
                                    search_config=SEARCH, show_progress=False)
  assert os.listdir(tmp_path) == ['file']  # nothing left in the working dir


def test_a_model_card_with_an_unusable_work_dir_is_refused_first(
    model_dir, images, tmp_path, monkeypatch):
  from inpaint_jax.evaluation import model_card
  (tmp_path / 'file').write_text('x')
  monkeypatch.chdir(tmp_path)
  monkeypatch.setattr(checkpoints, 'restore_model', _no_restore)
  with pytest.raises(errors.InputError, match="--work_dir"):
    model_card.write_model_card(
        model_dir, images, [str(i) for i in range(len(images))], 'test',
        str(tmp_path / 'file' / 'work'), SEARCH, 'command')
  with pytest.raises(errors.InputError, match="is empty.*--work_dir"):
    model_card.write_model_card(
        model_dir, images, [str(i) for i in range(len(images))], 'test', '',
        SEARCH, 'command')
  (tmp_path / 'work').mkdir()
  (tmp_path / 'work' / 'half').write_text('x')  # where a mask's results go
  with pytest.raises(errors.InputError, match="'work/half' is a file"):
    model_card.write_model_card(
        model_dir, images, [str(i) for i in range(len(images))], 'test',
        'work', SEARCH, 'command')
  assert sorted(os.listdir(tmp_path)) == ['file', 'work']


def test_a_second_run_into_a_locked_folder_is_refused(model_dir, images,
                                                      tmp_path, monkeypatch):
  out = tmp_path / 'out'
  out.mkdir()
  # Another live run (this test's own process, as far as the lock says).
  (out / output_dirs.LOCK_FILE).write_text(f'{os.getpid()} {socket.gethostname()}')
  monkeypatch.setattr(checkpoints, 'restore_model', _no_restore)
  with pytest.raises(errors.InputError,
                     match=rf'Another run \(process {os.getpid()} on'):
    _evaluate(model_dir, images, out)
  assert os.listdir(out) == [output_dirs.LOCK_FILE]  # its lock kept, nothing else
  monkeypatch.undo()
  # A lock left by a run that was killed is taken over.
  dead = subprocess.Popen([sys.executable, '-c', 'pass'])
  dead.wait()
  (out / output_dirs.LOCK_FILE).write_text(f'{dead.pid} {socket.gethostname()}')
  summary = _evaluate(model_dir, images, out)
  assert summary['num_images'] == len(images)
  assert sorted(os.listdir(out)) == ['grid.png', 'metrics.csv', 'metrics.json']


def test_a_run_holds_the_lock_while_it_searches(model_dir, images, tmp_path,
                                                monkeypatch):
  seen, original = [], inpaint.search

  def search(*args, **kwargs):
    seen.append((tmp_path / output_dirs.LOCK_FILE).read_text().split())
    return original(*args, **kwargs)

  monkeypatch.setattr(inpaint, 'search', search)
  _evaluate(model_dir, images[:2], tmp_path)
  assert seen == [[str(os.getpid()), socket.gethostname()]]
  assert not os.path.exists(tmp_path / output_dirs.LOCK_FILE)


@pytest.mark.slow
def test_a_rerun_with_other_settings_leaves_no_stale_files(model_dir, images,
                                                           tmp_path,
                                                           monkeypatch):
  names = [f'im{i}.png' for i in range(len(images))]
  kwargs = dict(mask_kind='center', search_config=SEARCH, batch_size=2,
                show_progress=False)
  evaluate.inpaint_and_evaluate(model_dir, images, names, str(tmp_path),
                                **kwargs)
  assert len(os.listdir(tmp_path / 'images')) == 3 * len(images)
  # A run with other settings killed in its second batch leaves partials.
  monkeypatch.setattr(inpaint, 'search', _CountingSearch(fail_on=2))
  with pytest.raises(KeyboardInterrupt):
    evaluate.inpaint_and_evaluate(model_dir, images, names, str(tmp_path),
                                  seed=1, **kwargs)
  assert len(os.listdir(tmp_path / results.PARTIAL_DIR)) == 1
  monkeypatch.undo()
  # Then a run on fewer images, with other names and another batch size.
  evaluate.inpaint_and_evaluate(model_dir, images[:2], ['a.png', 'a.jpg'],
                                str(tmp_path), **dict(kwargs, batch_size=1))
  assert sorted(os.listdir(tmp_path / 'images')) == sorted(
      f'a_{ext}_{kind}.png' for ext in ('png', 'jpg')
      for kind in results.IMAGE_KINDS)
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)
  assert not os.path.exists(tmp_path / output_dirs.LOCK_FILE)


def test_non_finite_results_are_refused_not_scored(images):
  def fill(corrupted, masks, index_offset):
    del index_offset
    broken = np.array(corrupted)
    broken[0, 0, 0, 0] = np.nan
    return {'generated': broken, 'inpainted': broken}

  with pytest.raises(errors.InputError, match='NaN.*image0'):
    evaluate.evaluate(methods.Method('broken', fill), images,
                      [f'image{i}' for i in range(len(images))],
                      _center_masks(len(images)), show_progress=False)


def test_realism_is_zero_for_the_originals_and_grows_with_a_worse_fill(
    images):
  masks = _center_masks(len(images))
  mean_filled = np.asarray(methods.mean_fill(images, masks))
  exact = evaluate.realism_scores(images, images, mean_filled)
  assert exact['ms_swd'] == pytest.approx(0, abs=1e-6)
  assert exact['ms_swd_mean_fill'] > 0
  noisy = images + 0.3 * np.random.default_rng(0).standard_normal(
      images.shape).astype(np.float32) * (1 - masks)
  worse = evaluate.realism_scores(images, np.clip(noisy, -1, 1), mean_filled)
  assert worse['ms_swd'] > 0 and worse['ms_swd_mean_fill'] == (
      exact['ms_swd_mean_fill'])
  # Images MS-SWD does not take are left without it (not refused).
  assert evaluate.realism_scores(images[:, :12, :12], images[:, :12, :12],
                                 mean_filled[:, :12, :12]) == {}

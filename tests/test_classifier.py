"""Tests for inpaint_jax.classifier and the semantic accuracy in evaluate."""

import dataclasses
import json
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from inpaint_jax.evaluation import semantic
from inpaint_jax.training import loop
from inpaint_jax.training import train_classifier
from inpaint_jax.evaluation import evaluate
from inpaint_jax.data import input_pipeline
from inpaint_jax import methods
from inpaint_jax.errors import InputError, MissingInputError
from tests.conftest import assert_first_replica_matches, leaves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, 'models', 'svhn_classifier')
DATA_DIR = input_pipeline.default_data_dir()
TEST_DIR = os.path.join(DATA_DIR, 'svhn', 'test')
TINY = semantic.ClassifierConfig(resolution=16, widths=(4, 8),
                                   batch_size=8)
# The shipped classifier got 0.865 on the first 200 test images (0.894 on all
# 1000, see models/svhn_classifier/README.md); the threshold is a little below.
MIN_ACCURACY_200 = 0.83



@pytest.fixture(scope='module')
def shipped():
  config, variables, metadata = semantic.restore(SHIPPED)
  return config, variables, metadata


@pytest.fixture(scope='module')
def test_images():
  images, names = input_pipeline.load_split('svhn', 'test', limit=200)
  return images, semantic.load_labels(TEST_DIR, names)


def test_shipped_classifier_is_small_and_documented(shipped):
  config, variables, metadata = shipped
  size = sum(x.size * 4 for x in leaves(variables))
  assert size < 2 * 2**20
  assert os.path.isfile(os.path.join(SHIPPED, 'README.md'))
  assert metadata['test_accuracy'] >= 0.85
  assert config.resolution == 64 and config.num_classes == 10


@pytest.mark.requires_data('svhn/test')
def test_shipped_classifier_recognises_test_digits(shipped, test_images):
  config, variables, _ = shipped
  images, labels = test_images
  assert semantic.accuracy(variables, images, labels,
                             config=config) > MIN_ACCURACY_200


@pytest.mark.requires_data('svhn/test')
def test_originals_beat_mean_filled_centres(shipped, test_images):
  config, variables, _ = shipped
  images, labels = test_images
  masks = evaluate.make_masks('center', None, len(images), 64,
                              jax.random.PRNGKey(0))
  filled = np.asarray(methods.mean_fill(images, masks))
  originals = semantic.accuracy(variables, images, labels, config=config)
  mean_filled = semantic.accuracy(variables, filled, labels, config=config)
  assert originals > mean_filled + 0.1


@pytest.mark.parametrize('mask', ['', 'half'])  # half: masks drawn per step
def test_two_device_step_equals_one_device_step(mask):
  assert jax.local_device_count() == 2, 'conftest sets two CPU devices'
  config = dataclasses.replace(TINY, mask=mask)
  state = train_classifier.create_state(config, jax.random.PRNGKey(0))
  rng = np.random.default_rng(0)
  batch = jnp.asarray(rng.uniform(-1, 1, (8, 16, 16, 3)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 10, 8), jnp.int32)
  key = jax.random.PRNGKey(1)
  single, single_metrics = jax.jit(
      lambda s, b, r: train_classifier.train_step(s, b, r, config=config))(
          state, (batch, labels), key)
  p_step = loop.parallel_step(train_classifier.train_step, config=config)
  parallel, parallel_metrics = p_step(flax.jax_utils.replicate(state),
                                      (batch, labels), key)
  assert_first_replica_matches(parallel, parallel_metrics, single,
                               single_metrics, metric_tol=(1e-5, 1e-6),
                               state_tol=(1e-4, 1e-6))
  moved = [np.abs(a - b).max() for a, b in
           zip(leaves(single.params), leaves(state.params))]
  assert max(moved) > 1e-5


def test_a_masked_input_classifier_sees_only_the_known_pixels(tmp_path):
  batch = jnp.ones((4, 16, 16, 3))
  hidden = np.asarray(train_classifier.hide_missing(
      jax.random.PRNGKey(0), batch, 'center'))
  assert hidden[:, 4:12, 4:12].max() == 0 and hidden[:, :4].min() == 1
  images = np.full((2, 64, 64, 3), 255, np.uint8)
  masked = semantic.mask_inputs(images, 'half')
  assert masked.dtype == np.float32 and set(np.unique(masked)) == {0.0, 1.0}
  assert (masked == 0).mean() == pytest.approx(0.5)
  with pytest.raises(InputError, match='not a mask kind'):
    semantic.ClassifierConfig(mask='middle')
  config = dataclasses.replace(TINY, mask='center')
  path = semantic.save(str(tmp_path / 'masked'), config,
                         semantic.init_variables(config,
                                                   jax.random.PRNGKey(0)), {})
  assert semantic.restore(path)[0].mask == 'center'
  with pytest.raises(InputError, match='masked inputs'):
    semantic.predictor(path)  # it cannot score whole inpainted images


def test_masked_classifiers_beside_the_shipped_one_are_the_ceilings(tmp_path):
  whole = str(tmp_path / 'clf')
  semantic.save(whole, TINY, semantic.init_variables(TINY,
                                                     jax.random.PRNGKey(0)))
  assert semantic.ceiling_predictors(whole) == {}
  center = dataclasses.replace(TINY, mask='center')
  semantic.save(semantic.masked_classifier_dir(whole + '/', 'center'), center,
                semantic.init_variables(center, jax.random.PRNGKey(1)))
  assert semantic.masked_classifier_dir(whole, 'center') == whole + '_center'
  found = semantic.ceiling_predictors(whole)
  assert list(found) == ['center']
  images = np.zeros((3, 16, 16, 3), np.float32)
  assert found['center'](images).shape == (3,)
  # A pair stays a pair; a triple gets its kind's ceiling (or None).
  assert semantic.for_mask(None, 'center') is None
  assert semantic.for_mask(('p', 'l'), 'center') == ('p', 'l')
  assert semantic.for_mask(('p', 'l', found), 'center')[2] is found['center']
  assert semantic.for_mask(('p', 'l', found), 'half')[2] is None
  semantic.save(whole + '_half', TINY,  # whole-image weights, wrong name
                semantic.init_variables(TINY, jax.random.PRNGKey(2)))
  with pytest.raises(InputError, match='--mask=half'):
    semantic.ceiling_predictors(whole)


def test_evaluate_reports_the_fills_as_a_fraction_of_the_ceiling():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  masks = evaluate.make_masks('center', None, 4, 16, jax.random.PRNGKey(0))
  names = [f'im{i}.png' for i in range(4)]
  labels = np.array([0, 1, 1, 1])
  seen = []

  def ceiling_fn(x):  # right on 3 of 4; records what it was shown
    seen.append(np.asarray(x))
    return np.array([0, 1, 1, 0])

  def predict_fn(x):
    return np.zeros(len(x), int)  # right on image 0 only

  scored = evaluate.evaluate(methods.mean_fill_method(), images, names,
                             masks, show_progress=False,
                             semantic=(predict_fn, labels, ceiling_fn))
  np.testing.assert_array_equal(seen[0], images * masks)  # masked input
  assert scored.summary['semantic_accuracy'] == pytest.approx(0.25)
  assert scored.summary['semantic_accuracy_ceiling'] == pytest.approx(0.75)
  assert scored.summary['semantic_accuracy_of_ceiling'] == pytest.approx(
      1 / 3)
  with pytest.raises(InputError, match='for_mask'):
    evaluate.evaluate(methods.mean_fill_method(), images, names, masks,
                      show_progress=False,
                      semantic=(predict_fn, labels, {'center': ceiling_fn}))


def test_a_run_with_other_settings_is_refused(tmp_path):
  # Exact resume at every moment: tests/test_resume.py.
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
  labels = rng.integers(0, 10, 24)
  config = semantic.ClassifierConfig(resolution=16, widths=(4, 8),
                                     batch_size=8, num_steps=4,
                                     checkpoint_every=2)
  train_classifier.train(config, images, labels, str(tmp_path / 'b'),
                         stop_after=1, show_progress=False)
  other = semantic.ClassifierConfig(resolution=16, widths=(4, 8),
                                    batch_size=8, seed=1)
  with pytest.raises(InputError, match='other settings'):
    train_classifier.train(other, images, labels, str(tmp_path / 'b'),
                           show_progress=False)


def test_save_restore_and_a_damaged_file_is_refused(tmp_path):
  variables = semantic.init_variables(TINY, jax.random.PRNGKey(0))
  path = semantic.save(str(tmp_path / 'clf'), TINY, variables, {'x': 1})
  config, restored, metadata = semantic.restore(path)
  assert config == TINY and metadata == {'x': 1}
  for a, b in zip(leaves(variables), leaves(restored)):
    np.testing.assert_array_equal(a, b)
  images = np.zeros((3, 16, 16, 3), np.float32)
  assert semantic.predict(restored, images, 2, TINY).shape == (3,)
  with open(os.path.join(path, semantic.CONFIG_FILE)) as f:
    saved = json.load(f)
  saved['variables_sha256'] = '0' * 64
  with open(os.path.join(path, semantic.CONFIG_FILE), 'w') as f:
    json.dump(saved, f)
  with pytest.raises(InputError, match='checksum'):
    semantic.restore(path)
  with pytest.raises(MissingInputError, match='--classifier'):
    semantic.restore(str(tmp_path / 'nothing'))


def test_labels_loading_and_its_errors(tmp_path):
  (tmp_path / 'labels.csv').write_text('file,digit\na.png,3\nb.png,7\n')
  np.testing.assert_array_equal(
      semantic.load_labels(str(tmp_path), ['b.png', 'a.png']), [7, 3])
  with pytest.raises(InputError, match="no label.*'c.png'"):
    semantic.load_labels(str(tmp_path), ['a.png', 'c.png'])
  (tmp_path / 'labels.csv').write_text('name,label\na.png,3\n')
  with pytest.raises(InputError, match='file,digit'):
    semantic.load_labels(str(tmp_path), ['a.png'])
  (tmp_path / 'labels.csv').write_text('file,digit\na.png,three\n')
  with pytest.raises(InputError, match='line 2'):
    semantic.load_labels(str(tmp_path), ['a.png'])
  with pytest.raises(MissingInputError, match='labels.csv'):
    semantic.load_labels(str(tmp_path / 'none'), ['a.png'])


def test_semantic_for_split_skips_what_is_missing_unless_asked(tmp_path,
                                                               capsys):
  (tmp_path / 'svhn' / 'test').mkdir(parents=True)  # no labels.csv
  shipped = os.path.join(ROOT, 'models', 'svhn_classifier')
  assert semantic.semantic_for_split('svhn', 'test', ['a.png'], shipped,
                                       str(tmp_path)) is None
  assert 'no labels.csv' in capsys.readouterr().err
  with pytest.raises(MissingInputError, match='labels.csv'):
    semantic.semantic_for_split('svhn', 'test', ['a.png'], shipped,
                                  str(tmp_path), required=True)
  assert semantic.semantic_for_split('celeba', 'test', ['a.png'], shipped,
                                       str(tmp_path)) is None
  # A classifier directory without a classifier: skipped, and said so.
  assert semantic.semantic_for_split('svhn', 'test', ['a.png'],
                                       str(tmp_path / 'none'),
                                       str(tmp_path)) is None
  assert 'no digit classifier' in capsys.readouterr().err


def test_evaluate_reports_semantic_accuracy():
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (5, 16, 16, 3)).astype(np.float32)
  masks = evaluate.make_masks('center', None, 5, 16, jax.random.PRNGKey(0))
  names = [f'im{i}.png' for i in range(5)]
  labels = np.array([0, 1, 0, 1, 0])

  def predict_fn(x):  # 1 where the centre is not flat (i.e. not mean-filled)
    return (np.std(x[:, 6:10, 6:10], axis=(1, 2)).max(-1) > 1e-3).astype(int)

  method = methods.mean_fill_method()
  plain = evaluate.evaluate(method, images, names, masks, batch_size=2,
                            show_progress=False)
  scored = evaluate.evaluate(method, images, names, masks, batch_size=2,
                             show_progress=False,
                             semantic=(predict_fn, labels))
  assert list(plain.metrics) == ['psnr', 'ssim', 'psnr_mean_fill',
                                 'missing_fraction']
  assert list(scored.metrics) == list(plain.metrics) + ['correct']
  assert not any(k.startswith('semantic') for k in plain.summary)
  # Mean-filled and masked centres are flat (-> 0), originals are not (-> 1).
  np.testing.assert_array_equal(scored.metrics['correct'], [1, 0, 1, 0, 1])
  assert scored.summary['semantic_accuracy'] == pytest.approx(0.6)
  assert scored.summary['semantic_accuracy_originals'] == pytest.approx(0.4)
  assert scored.summary['semantic_accuracy_masked'] == pytest.approx(0.6)
  assert scored.summary['semantic_accuracy_ratio'] == pytest.approx(1.5)
  with pytest.raises(InputError, match='one integer label per image'):
    evaluate.evaluate(method, images, names, masks, show_progress=False,
                      semantic=(predict_fn, labels[:3]))

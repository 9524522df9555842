"""Tests for inpaint_jax.reproduce: every method on the same cell, tables."""

import csv
import json
import os

import jax
import numpy as np
import pytest

from inpaint_jax import checkpoints
from inpaint_jax.baselines import context_encoder
from inpaint_jax.evaluation import evaluate
from inpaint_jax.report import figures
from inpaint_jax.data import input_pipeline
from inpaint_jax import methods
from inpaint_jax import refine
from inpaint_jax.evaluation import reproduce
from inpaint_jax.report import results_page
from inpaint_jax.report import tables
from inpaint_jax.config import SearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
@pytest.mark.requires_data('svhn')
def test_a_cell_runs_every_method_and_writes_the_tables(tmp_path):
  images, names = input_pipeline.load_split('svhn', 'test', limit=3)
  train, _ = input_pipeline.load_split('svhn', 'train', limit=8,
                                       dtype=np.uint8)  # NN candidates
  ce_config = context_encoder.ContextEncoderConfig(width=2, d_width=2)
  ce_model = context_encoder.save(  # untrained: the plumbing, not quality
      str(tmp_path / 'ce_model'), ce_config,
      context_encoder.init_variables(ce_config, jax.random.PRNGKey(0)))
  factories = reproduce.method_factories(
      os.path.join(ROOT, 'models', 'svhn64'), SearchConfig(iterations=2),
      train, ce_model, record_every=1)
  rows = reproduce.run_cell('svhn', 'center', images, names, factories,
                            reproduce.METHODS, str(tmp_path), batch_size=2,
                            show_progress=False)
  assert [r['method'] for r in rows] == list(reproduce.METHODS)
  cell = tmp_path / 'svhn' / 'center'
  with np.load(cell / 'ours' / 'arrays.npz') as saved:  # only ours records
    assert saved['frames'].shape[:2] == (2, 3)  # first batch, steps 0, 1, 2
  with np.load(cell / 'ours_noblend' / 'arrays.npz') as saved:
    assert 'frames' not in saved.files
  assert os.path.exists(cell / 'ours' / 'search.gif')
  assert reproduce.run_cell('svhn', 'center', images, names, factories,
                            reproduce.METHODS, str(tmp_path), batch_size=2,
                            show_progress=False) == rows  # read back
  written = figures.write_figures(str(tmp_path), str(tmp_path / 'fig'))
  # Every figure but Fig. 6 (random mask), from real arrays.
  assert len(written) == 10  # fig3b: a PNG and a GIF
  assert 'fig6_random80.png' not in {os.path.basename(f.path) for f in written}
  for r in rows:
    assert np.isfinite(r['psnr']) and np.isfinite(r['psnr_hole'])
    assert r['psnr_hole'] < r['psnr']  # the hole is where the errors are
  tables.write_tables(rows, str(tmp_path))
  with open(tmp_path / 'results.csv') as f:
    assert len(list(csv.DictReader(f))) == len(reproduce.METHODS)
  table1 = (tmp_path / 'table1.md').read_text()
  assert '22.3 / 19.0' in table1  # the paper's CE / ours, SVHN centre
  assert table1.count('±') == 2  # our CE and ours
  assert os.path.exists(tmp_path / 'svhn' / 'center' / 'tv' / 'grid.png')


def test_ce_is_offered_only_with_a_model(tmp_path):
  factories = reproduce.method_factories('unused', SearchConfig(), None,
                                         str(tmp_path / 'no_ce'))
  assert 'ce' not in factories and 'nn' not in factories
  assert 'ce' in reproduce.METHODS


def test_the_refinements_are_offered_with_their_presets():
  factories = reproduce.method_factories(
      os.path.join(ROOT, 'models', 'svhn64'), SearchConfig(iterations=3),
      None)
  for name, preset in refine.PRESETS.items():
    search = factories[f'ours_{name}']().settings['search']
    assert {k: search[k] for k in preset} == preset and search[
        'iterations'] == 3
    assert f'ours_{name}' in reproduce.EXTRA_METHODS
  members = factories['ours_ilo_average']()
  assert members.name == 'ours_ilo_average'


def test_ours_average_is_the_mean_of_ours_from_its_seeds():
  images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3))
  masks = evaluate.make_masks('center', None, 2, 64, jax.random.PRNGKey(0))
  corrupted = (images * masks).astype(np.float32)
  factories = reproduce.method_factories(
      os.path.join(ROOT, 'models', 'svhn64'), SearchConfig(iterations=3),
      None)
  averaged = factories['ours_average']().fill(corrupted, masks, 0)
  model = checkpoints.restore_model(os.path.join(ROOT, 'models', 'svhn64'))
  fills = [methods.zsearch_method(*model, SearchConfig(iterations=3),
                                  seed=seed).fill(corrupted, masks, 0)
           for seed in range(reproduce.AVERAGED_SEEDS)]
  for key in ('generated', 'inpainted'):
    np.testing.assert_allclose(
        averaged[key], np.mean([f[key] for f in fills], axis=0), atol=1e-5)
  # The seeds differ: an average of identical fills would prove nothing.
  assert np.abs(fills[0]['generated'] - fills[1]['generated']).max() > 0.1
  assert 'ours_average' not in reproduce.METHODS  # only when asked for


def _counting_method(calls, value):
  """A Method filling holes with `value`; each fill call is noted in calls."""

  def fill(images, masks):
    calls.append(len(images))
    return images * masks + value * (1.0 - masks)

  return methods.fill_method('constant', fill, {'value': value})


def _tiny_images(n=3):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)
  return images, [f'{i}.png' for i in range(n)]


def test_a_finished_cell_is_not_run_again(tmp_path):
  images, names = _tiny_images()
  calls = []
  factories = {'constant': lambda: _counting_method(calls, 0.0)}

  def run(seed=0):
    return reproduce.run_cell('svhn', 'random', images, names, factories,
                              ['constant'], str(tmp_path), batch_size=2,
                              seed=seed, show_progress=False)

  first = run()
  assert len(calls) == 2  # two batches
  assert run() == first and len(calls) == 2  # read back from arrays.npz
  factories['constant'] = lambda: _counting_method(calls, 0.5)
  changed = run()
  assert len(calls) == 4 and changed[0]['psnr'] != first[0]['psnr']
  run(seed=1)  # other masks
  assert len(calls) == 6
  assert not os.path.isdir(tmp_path / 'svhn' / 'random' / 'constant'
                           / 'partial')


def test_semantic_accuracy_joins_the_rows_and_its_table(tmp_path):
  images, names = _tiny_images()
  calls = []
  factories = {'constant': lambda: _counting_method(calls, 0.0)}
  labels = np.array([0, 0, 1])

  def predict(batch):  # the brightest channel's index: 0/1/2
    return np.argmax(np.asarray(batch).mean(axis=(1, 2)), axis=-1)

  def run(semantic):
    return reproduce.run_cell('svhn', 'center', images, names, factories,
                              ['constant'], str(tmp_path), batch_size=3,
                              show_progress=False, semantic=semantic)

  plain = run(None)
  assert 'semantic_accuracy' not in plain[0] and len(calls) == 1
  row, = run((predict, labels))
  assert len(calls) == 2  # the saved cell had no semantic accuracy: rerun
  hits = lambda x: float(np.mean(predict(x) == labels))
  assert row['semantic_accuracy_originals'] == pytest.approx(hits(images))
  masks = evaluate.make_masks('center', None, 3, 16,
                              jax.random.split(jax.random.PRNGKey(0))[0])
  assert row['semantic_accuracy_masked'] == pytest.approx(hits(images * masks))
  filled = np.where(masks > 0, images, 0.0)  # the constant method's result
  assert row['semantic_accuracy'] == pytest.approx(hits(filled))
  assert run((predict, labels)) == [row] and len(calls) == 2
  table = tables.table_semantic_markdown(plain + [row])
  assert f"| svhn | center | {row['semantic_accuracy_originals']:.3f} |" in (
      table)
  assert 'No data set' in tables.table_semantic_markdown(plain)
  tables.write_tables([row], str(tmp_path))
  with open(tmp_path / 'results.csv') as f:
    saved, = csv.DictReader(f)
  assert float(saved['semantic_accuracy']) == pytest.approx(
      row['semantic_accuracy'])
  assert 'masked classifier' not in table
  # With the classifier of centre-masked inputs: its accuracy joins every
  # row of the cell without running the methods again.
  ceiling_row, = run((predict, labels, lambda x: np.asarray(labels)))
  assert len(calls) == 2 and ceiling_row[tables.CEILING] == 1.0
  table = tables.table_semantic_markdown([ceiling_row])
  assert '| masked classifier |' in table and '| 1.000 |' in table
  assert f"ceiling {row['semantic_accuracy']:.2f})" in table
  tables.write_tables([ceiling_row], str(tmp_path))
  with open(tmp_path / 'results.csv') as f:
    saved, = csv.DictReader(f)
  assert float(saved[tables.CEILING]) == 1.0
  # results.csv's text cell reads as the number (and '' as none).
  assert tables.table_semantic_markdown(
      [ceiling_row | {tables.CEILING: saved[tables.CEILING]}]) == table
  assert 'masked classifier' not in tables.table_semantic_markdown(
      [ceiling_row | {tables.CEILING: ''}])


def test_cell_arrays_hold_what_the_figures_need(tmp_path):
  images, names = _tiny_images(3)

  def fill(batch, masks, index_offset):
    del index_offset
    n = len(batch)
    return {'generated': batch, 'inpainted': batch,
            'loss': np.arange(n, dtype=np.float32),
            'frames': np.zeros((n, 3) + batch.shape[1:], np.float32),
            'loss_curve': np.ones((n, 4), np.float32)}

  recorded = methods.Method('recorded', fill, scores=('loss',), settings={
      'search': {'iterations': 4, 'record_every': 2}})
  rows = reproduce.run_cell('svhn', 'half', images, names,
                            {'ours': lambda: recorded}, ['ours'],
                            str(tmp_path), batch_size=2, show_progress=False)
  with np.load(tmp_path / 'svhn' / 'half' / 'ours' / 'arrays.npz') as saved:
    for key in ('images', 'generated', 'inpainted'):
      assert saved[key].dtype == np.uint8 and saved[key].shape == images.shape
    assert saved['masks'].dtype == np.uint8
    assert set(np.unique(saved['masks'])) == {0, 1}
    for score in tables.SCORES + ('loss',):
      assert saved[f'metric_{score}'].dtype == np.float32
      assert saved[f'metric_{score}'].shape == (3,)
    assert saved['frames'].shape == (2, 3, 16, 16, 3)  # the first batch
    assert saved['loss_curve'].shape == (2, 4)
    np.testing.assert_array_equal(saved['frame_steps'], [0, 2, 4])
    assert json.loads(str(saved['row'])) == rows[0]
    assert json.loads(str(saved['summary']))['search']['record_every'] == 2


def test_record_every_defaults_to_fifteen_frames_and_not_with_early_stop():
  assert reproduce.default_record_every(SearchConfig(iterations=300)) == 20
  assert reproduce.default_record_every(SearchConfig(iterations=10)) == 0
  assert reproduce.default_record_every(
      SearchConfig(iterations=300, stop_tolerance=0.01)) == 0


def test_ssim_table_has_ce_and_ours_per_data_set(tmp_path):
  rows = [dict(_row('svhn', 'center', 'ce', 20.0), ssim=0.81),
          dict(_row('svhn', 'center', 'ours', 21.0), ssim=0.79)]
  tables.write_tables(rows, str(tmp_path))
  table = (tmp_path / 'table1_ssim.md').read_text()
  assert 'svhn: CE here | svhn: ours here' in table
  assert '| center | 0.810 ± 0.010 | 0.790 ± 0.010 |' in table


def _row(dataset, kind, method, psnr, hole=None):
  row = {'dataset': dataset, 'mask': kind, 'method': method, 'images': 8}
  for score in tables.SCORES:
    row[score], row[f'{score}_ci95'] = 0.5, 0.01
  row['psnr'], row['psnr_hole'] = psnr, psnr - 6.0 if hole is None else hole
  return row


def _page(tmp_path, rows):
  info = results_page.RunInfo(
      'python -m experiments.reproduce --num_images=8', 'test machine',
      '2026-01-01 00:00 UTC', {'svhn': results_page.DatasetInfo(
          20, 0.003, 15, 1, {'models/svhn64': 'ab' * 32})})
  figure = figures.Figure(str(tmp_path / 'docs' / 'figures' / 'fig5.png'),
                          'Fig. 5: blending.')
  tables.write_tables(rows, str(tmp_path / 'out'))
  path = results_page.write_results_page(
      str(tmp_path / 'docs' / 'RESULTS.md'), rows, info, [figure],
      str(tmp_path / 'out'))
  assert (tmp_path / 'docs' / 'results.csv').read_text() == (
      tmp_path / 'out' / 'results.csv').read_text()
  with open(path) as f:
    return f.read()


def test_results_page_has_tables_figures_and_computed_claims(tmp_path):
  rows = [_row('svhn', 'center', 'ce', 25.0),
          _row('svhn', 'center', 'ours', 23.0),
          _row('svhn', 'center', 'ours_noblend', 22.0),
          _row('svhn', 'center', 'tv', 20.0),
          _row('svhn', 'random', 'ce', 24.0),
          _row('svhn', 'random', 'ours', 30.0)]
  page = _page(tmp_path, rows)
  for table in (tables.table1_markdown(rows),
                tables.table1_ssim_markdown(rows),
                tables.table_all_markdown(rows),
                tables.table_semantic_markdown(rows)):
    assert table in page
  assert '![Fig. 5: blending.](figures/fig5.png)' in page
  assert '[results.csv](results.csv)' in page
  assert '`python -m experiments.reproduce --num_images=8`' in page
  assert 'abababababab' in page  # the model's checksum
  assert 'holds in 2 of 2 cells here.' in page
  assert 'ahead of the TV/LR/NN/PM baselines on PSNR in 1 of 1' in page
  assert 'Poisson blending raises PSNR by 1.00 dB' in page
  assert 'ours and ours with λ = 0 did not run on the same cell' in page
  # CE behind ours on the centre mask: the claim fails there.
  rows[0] = _row('svhn', 'center', 'ce', 21.0)
  rows[2] = _row('svhn', 'center', 'ours_noblend', 24.0)
  page = _page(tmp_path, rows)
  assert 'holds in 1 of 2 cells here; it fails in svhn/center' in page
  assert 'Poisson blending lowers PSNR by 1.00 dB' in page


def test_results_page_compares_whole_and_hole_psnr_with_the_paper(tmp_path):
  # The paper's SVHN centre: CE 22.3, ours 19.0 dB.
  near_hole = [_row('svhn', 'center', 'ce', 28.0, hole=22.0),
               _row('svhn', 'center', 'ours', 25.0, hole=19.5)]
  assert ('closer to our hole-only PSNR than to our whole-image PSNR in'
          ' 2 of 2 rows') in results_page.hole_gap_section(near_hole)
  near_whole = [_row('svhn', 'center', 'ce', 23.0, hole=17.0),
                _row('svhn', 'center', 'ours', 19.0, hole=13.0)]
  assert ('closer to our hole-only PSNR than to our whole-image PSNR in'
          ' 0 of 2 rows') in results_page.hole_gap_section(near_whole)
  assert 'not compared' in results_page.hole_gap_section(
      [_row('svhn', 'center', 'tv', 20.0)])


def test_ours_noblend_after_ours_reuses_its_search_and_matches_its_own(
    tmp_path):
  images = np.random.default_rng(1).uniform(-1, 1, (3, 64, 64, 3)).astype(
      np.float32)
  names = ['a', 'b', 'c']
  factories = reproduce.method_factories(
      os.path.join(ROOT, 'models', 'svhn64'), SearchConfig(iterations=4),
      None, record_every=2)
  run = lambda methods_, out: reproduce.run_cell(
      'svhn', 'center', images, names, factories, methods_, str(out),
      batch_size=2, show_progress=False)  # a padded last batch
  shared = run(('ours', 'ours_noblend'), tmp_path / 'shared')
  alone = run(('ours_noblend',), tmp_path / 'alone')  # its own search
  cell = lambda out: out / 'svhn' / 'center' / 'ours_noblend'
  metrics_json = lambda out: json.loads((cell(out) / 'metrics.json').read_text())
  assert metrics_json(tmp_path / 'shared')['search_reused_from'] == 'ours'
  assert 'search_reused_from' not in metrics_json(tmp_path / 'alone')
  with np.load(cell(tmp_path / 'shared') / 'arrays.npz') as a, np.load(
      cell(tmp_path / 'alone') / 'arrays.npz') as b:
    for key in ('generated', 'inpainted'):
      assert np.abs(a[key].astype(int) - b[key].astype(int)).max() <= 1
    np.testing.assert_allclose(a['metric_loss'], b['metric_loss'], rtol=1e-4)
  assert shared[1]['psnr'] == pytest.approx(alone[0]['psnr'], abs=0.01)
  assert shared[0]['psnr'] != pytest.approx(shared[1]['psnr'], abs=1e-3)

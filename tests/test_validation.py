"""Tests for inpaint_jax.training.validation and export: the validation curve
of a training run and the export of its best step."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax.evaluation import model_card
from inpaint_jax.training import export
from inpaint_jax.training import train_dcgan
from inpaint_jax.training import validation
from inpaint_jax.config import SearchConfig, TrainConfig
from inpaint_jax.errors import InputError
from tests.conftest import leaves


def _tiny_run(tmp_path, config, rng):
  """A 4-step training run with checkpoints at steps 2 and 4; its workdir."""
  workdir = str(tmp_path / 'run')
  train_dcgan.train(
      config, TrainConfig(batch_size=8, num_steps=4, checkpoint_every=2,
                          keep_checkpoints=10, sample_every=4),
      rng.integers(0, 256, (16, 16, 16, 3), dtype=np.uint8), workdir,
      show_progress=False)
  return workdir


@pytest.mark.slow
def test_every_kept_checkpoint_is_evaluated_once(tmp_path, tiny_config):
  rng = np.random.default_rng(0)
  workdir = _tiny_run(tmp_path, tiny_config, rng)
  images = rng.uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
  names = ['a', 'b', 'c']
  search = SearchConfig(iterations=2)
  reference = rng.uniform(-1, 1, (4, 16, 16, 3)).astype(np.float32)
  rows = validation.validation_curve(workdir, images, names, kinds=('center',),
                                     search_config=search, batch_size=2,
                                     show_progress=False,
                                     sample_reference=reference,
                                     floor_images=reference[::-1] * 0.5)
  assert [(r['step'], r['mask']) for r in rows] == [(2, 'center'),
                                                   (4, 'center')]
  assert all(np.isfinite(r['mean_psnr']) and r['num_images'] == 3
             for r in rows)
  # Realism: of the fills (paired) and of 4 samples against the reference,
  # with the floor of the two real sets.
  assert all(r['ms_swd'] > 0 and r['samples_images'] == 4
             and r['samples_ms_swd'] > 0 and r['samples_ms_swd_floor'] > 0
             for r in rows)
  assert rows[0]['samples_ms_swd'] != rows[1]['samples_ms_swd']
  assert rows[0]['samples_ms_swd_floor'] == rows[1]['samples_ms_swd_floor']
  assert os.path.exists(os.path.join(workdir, validation.REALISM_PLOT_FILE))
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


def test_best_step_averages_over_the_mask_types():
  rows = [{'step': 1, 'mask': 'center', 'mean_psnr': 20.0},
          {'step': 1, 'mask': 'half', 'mean_psnr': 15.0},
          {'step': 2, 'mask': 'center', 'mean_psnr': 21.0},
          {'step': 2, 'mask': 'half', 'mean_psnr': 13.0},
          {'step': 3, 'mask': 'center', 'mean_psnr': 30.0}]  # half missing
  assert validation.best_step(rows) == 1
  rows[3]['mean_psnr'] = 15.0
  assert validation.best_step(rows) == 2
  with pytest.raises(InputError, match='validation curve is empty'):
    validation.best_step([])


def test_best_step_weighs_realism_within_a_margin_of_the_best_psnr():
  rows = [{'step': s, 'mask': 'center', 'mean_psnr': p, 'samples_ms_swd': r}
          for s, p, r in ((1, 20.0, 50.0), (2, 20.3, 90.0), (3, 20.1, 70.0))]
  assert validation.best_step(rows) == 2
  assert validation.best_step(rows, realism_within_db=0.25) == 3
  assert validation.best_step(rows, realism_within_db=0.5) == 1
  step, rule = validation.choose_step(rows, realism_within_db=0.25)
  assert step == 3 and rule == (
      'lowest samples MS-SWD among the steps within 0.25 dB of the highest'
      ' mean validation PSNR over center')
  del rows[2]['samples_ms_swd']  # not measured: never preferred
  assert validation.best_step(rows, realism_within_db=0.25) == 2
  # Only a step outside the margin measured: PSNR decides, and the rule says so.
  del rows[1]['samples_ms_swd']
  assert validation.choose_step(rows, realism_within_db=0.25) == (
      2, 'highest mean validation PSNR over center')
  for row in rows:
    row.pop('samples_ms_swd', None)
  assert validation.best_step(rows, realism_within_db=0.5) == 2


@pytest.mark.slow
def test_export_checkpoint_ships_the_best_step_with_its_history(
    tmp_path, tiny_config):
  rng = np.random.default_rng(0)
  workdir = _tiny_run(tmp_path, tiny_config, rng)
  images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  search = SearchConfig(iterations=2)
  rows = validation.validation_curve(workdir, images, ['a', 'b'],
                                     search_config=search, batch_size=2,
                                     show_progress=False)
  best = validation.best_step(rows)
  # As after a curve run killed part-way: the export draws from the rows.
  os.remove(os.path.join(workdir, validation.PLOT_FILE))
  model_dir = str(tmp_path / 'model')
  added = export.export_checkpoint(
      workdir, model_dir, weights_dtype='bfloat16', check_images=images,
      search_config=search)
  assert added['selected_step'] == best
  config, metadata = checkpoints.load_model_config(model_dir)
  assert config == tiny_config and metadata['steps'] == best
  assert metadata['weights_dtype'] == 'bfloat16'
  assert len(metadata['validation_curve']) == len(rows)
  assert all(r['ms_swd'] == s['ms_swd'] and 'samples_ms_swd' not in r
             for r, s in zip(metadata['validation_curve'], rows))
  assert added['selected_by'].startswith('highest mean validation PSNR')
  check = metadata['bfloat16_check']['psnr']
  assert set(check) == {'center', 'half'}
  per_image = metadata['bfloat16_check']['per_image_psnr']
  fixed = metadata['bfloat16_check']['fixed_latent_psnr']
  for kind, psnr in check.items():
    assert abs(psnr['float32'] - psnr['bfloat16']) < 0.05
    # The float32 search's own fills, scored the same way.
    assert fixed[kind]['float32'] == psnr['float32']
    assert abs(fixed[kind]['bfloat16'] - psnr['float32']) < 0.05
    for dtype, mean in psnr.items():
      assert len(per_image[kind][dtype]) == len(images)
      assert abs(np.mean(per_image[kind][dtype]) - mean) < 1e-3
  assert metadata['samples_over_time_steps'][-1] == best
  with Image.open(os.path.join(model_dir,
                               checkpoints.SAMPLES_OVER_TIME_FILE)) as grid:
    rows_shown = len(metadata['samples_over_time_steps'])
    assert grid.size == (8 * 18 + 2, rows_shown * 18 + 2)
  assert os.path.exists(os.path.join(model_dir, checkpoints.MODEL_CURVE_FILE))
  text = '\n'.join(model_card._training_lines(metadata))
  assert f'| **{best}** |' in text and 'bfloat16' in text
  with pytest.raises(InputError, match='no checkpoint at step 3'):
    export.export_checkpoint(workdir, str(tmp_path / 'm3'), step=3)


def test_stored_weights_fail_on_rounding_or_a_shift_beyond_the_chaos():
  def check(search, fixed, interval):
    return {'psnr': {'half': {'float32': 22.0, 'float16': 22.0 + search}},
            'fixed_latent_psnr': {'half': {'float32': 22.0,
                                           'float16': 22.0 + fixed}},
            'search_difference': {'half': interval}}
  assert export.stored_weights_failure(check(0.01, 0.001, [0.01, 0.02]),
                                       'float16') is None
  # One image's search ending elsewhere: a large, uncertain mean change.
  assert export.stored_weights_failure(check(-0.16, -0.002, [-0.16, 0.22]),
                                       'float16') is None
  failure = export.stored_weights_failure(check(-0.16, -0.002, [-0.16, 0.1]),
                                          'float16')
  assert 'half validation PSNR by -0.160 ± 0.100 dB' in failure
  failure = export.stored_weights_failure(check(0.0, -0.06, [0.0, 0.1]),
                                          'float16')
  assert 'half fills of the same latents by -0.060 dB' in failure
  old = check(-0.06, 0.0, [0.0, 0.0])
  del old['fixed_latent_psnr'], old['search_difference']
  assert 'by -0.060 dB' in export.stored_weights_failure(old, 'float16')


def test_convert_model_stores_a_float32_model_in_16_bits_checked(
    tmp_path, tiny_config, tiny_variables):
  source = checkpoints.save_model(str(tmp_path / 'f32'), tiny_config,
                                  *tiny_variables, {'steps': 7})
  with open(os.path.join(source, checkpoints.SAMPLES_OVER_TIME_FILE), 'wb'):
    pass
  images = np.random.default_rng(0).uniform(
      -1, 1, (2, 16, 16, 3)).astype(np.float32)
  converted = str(tmp_path / 'bf16')
  added = export.convert_model(source, converted, 'bfloat16', images,
                               SearchConfig(iterations=2))
  config, metadata = checkpoints.load_model_config(converted)
  assert config == tiny_config and metadata['steps'] == 7
  assert metadata['weights_dtype'] == 'bfloat16'
  with open(os.path.join(source, checkpoints.CONFIG_FILE)) as f:
    assert (metadata['converted_from']['variables_sha256']
            == json.load(f)['variables_sha256'])
  assert set(added['bfloat16_check']['psnr']) == {'center', 'half'}
  assert os.path.exists(os.path.join(converted,
                                     checkpoints.SAMPLES_OVER_TIME_FILE))
  _, g_vars, _ = checkpoints.restore_model(converted)
  for stored, original in zip(leaves(g_vars), leaves(tiny_variables[0])):
    np.testing.assert_allclose(stored, original, rtol=2 ** -8, atol=1e-30)
  with pytest.raises(InputError, match='stores bfloat16 weights'):
    export.convert_model(converted, str(tmp_path / 'twice'), 'float16',
                         images)
  with pytest.raises(InputError, match='bfloat16 or float16'):
    export.convert_model(source, str(tmp_path / 'f32b'), 'float32', images)
  assert not os.path.exists(tmp_path / 'twice')


def _write_curve(workdir, rows):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, validation.CURVE_FILE), 'w') as f:
    for row in rows:
      f.write(json.dumps(row) + '\n')


def _row(step, mask, psnr, hours, fill=13.0, iterations=300):
  return {'step': step, 'wall_seconds': hours * 3600, 'mask': mask,
          'num_images': 64, 'iterations': iterations, 'window': 15,
          'mean_psnr': psnr, 'mean_psnr_mean_fill': fill}


def test_compare_runs_tables_the_common_masks_against_wall_time(tmp_path):
  small, large = str(tmp_path / 'w32'), str(tmp_path / 'w64')
  _write_curve(small, [_row(500, 'center', 18.0, 0.1),
                       _row(500, 'half', 13.0, 0.1),
                       _row(1000, 'center', 18.5, 0.2)])  # half not yet
  _write_curve(large, [_row(500, 'center', 18.4, 0.3),
                       _row(500, 'half', 14.0, 0.3),
                       _row(500, 'pattern', 22.0, 0.3)])  # only this run
  path = str(tmp_path / 'compare.png')
  table = validation.compare_runs({'w32': small, 'w64': large}, path)
  assert table == [
      {'run': 'w32', 'step': 500, 'hours': 0.1, 'center': 18.0, 'half': 13.0,
       'mean': 15.5},
      {'run': 'w64', 'step': 500, 'hours': 0.3, 'center': 18.4, 'half': 14.0,
       'mean': 16.2}]
  with Image.open(path) as plot:
    assert plot.size == (640, 400)
  assert not os.path.exists(tmp_path / 'compare_realism.png')
  # With the samples' realism in every row, it is tabled and drawn too.
  _write_curve(small, [dict(_row(500, m, 18.0, 0.1), samples_ms_swd=40.0,
                            samples_images=256) for m in ('center', 'half')])
  _write_curve(large, [dict(_row(500, m, 18.0, 0.3), samples_ms_swd=30.0,
                            samples_images=256) for m in ('center', 'half')])
  table = validation.compare_runs({'w32': small, 'w64': large}, path)
  assert [e['samples_ms_swd'] for e in table] == [40.0, 30.0]
  with Image.open(tmp_path / 'compare_realism.png') as plot:
    assert plot.size == (640, 400)


def test_compare_runs_refuses_curves_measured_differently(tmp_path):
  first, other = str(tmp_path / 'a'), str(tmp_path / 'b')
  _write_curve(first, [_row(500, 'center', 18.0, 0.1)])
  _write_curve(other, [_row(500, 'center', 18.0, 0.1, iterations=100)])
  path = str(tmp_path / 'compare.png')
  with pytest.raises(InputError, match='measured differently'):
    validation.compare_runs({'a': first, 'b': other}, path)
  _write_curve(other, [_row(500, 'center', 18.0, 0.1, fill=20.0)])  # slice
  with pytest.raises(InputError, match='measured differently'):
    validation.compare_runs({'a': first, 'b': other}, path)
  with pytest.raises(InputError, match='has no validation curve'):
    validation.compare_runs({'a': first, 'c': str(tmp_path / 'c')}, path)
  assert not os.path.exists(path)


def test_plot_curves_draws_the_rows_and_refuses_none(tmp_path):
  path = str(tmp_path / validation.PLOT_FILE)
  validation.plot_curves([_row(1000, 'half', 13.0, 0.2),
                          _row(500, 'center', 18.0, 0.1),
                          _row(1000, 'center', 18.5, 0.2)], path)
  with Image.open(path) as plot:
    assert plot.size == (640, 400)
  with pytest.raises(ValueError):
    validation.plot_curves([], str(tmp_path / 'empty.png'))

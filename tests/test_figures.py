"""Tests for inpaint_jax.report figures, panels and cells: the paper's figures
from arrays.npz files."""

import os

import numpy as np
from PIL import Image
import pytest

from inpaint_jax.evaluation import reproduce
from inpaint_jax.evaluation import results
from inpaint_jax.report import cells
from inpaint_jax.report import figures
from inpaint_jax.report import panels
from inpaint_jax.report import tables

SIZE = 16  # image side of the fake run
IMAGES = 4
FRAMES = 5
DATASETS = ('svhn', 'cars')
KINDS = ('center', 'random')


def _fake_result(method, rng, record):
  images = rng.uniform(-1, 1, (IMAGES, SIZE, SIZE, 3)).astype(np.float32)
  masks = np.ones((IMAGES, SIZE, SIZE, 1), np.float32)
  masks[:, 4:12, 4:12] = 0.0
  generated = rng.uniform(-1, 1, images.shape).astype(np.float32)
  inpainted = images * masks + generated * (1 - masks)
  per_image = {s: rng.uniform(10, 30, IMAGES).astype(np.float32)
               for s in tables.SCORES}
  summary = {'search': {'lam': 0.003, 'iterations': 8, 'record_every': 2}}
  if method.startswith('ours'):
    per_image['loss'] = rng.uniform(0, 100, IMAGES).astype(np.float32)
  frames = curve = None
  if record:
    frames = rng.uniform(-1, 1, (IMAGES, FRAMES, SIZE, SIZE, 3))
    curve = rng.uniform(0, 1, (IMAGES, 8))
  result = results.EvalResult(images, masks,
                              tuple(f'{i}.png' for i in range(IMAGES)),
                              generated, inpainted, per_image, summary,
                              method=method, frames=frames, loss_curve=curve)
  return result, per_image


def make_fake_run(directory, method_names=reproduce.METHODS):
  """A reproduce output folder of random arrays: 2 data sets x 2 masks."""
  rng = np.random.default_rng(0)
  for dataset in DATASETS:
    for kind in KINDS:
      for method in method_names:
        result, per_image = _fake_result(method, rng, method == 'ours')
        row = reproduce.summary_row(dataset, kind, method, per_image)
        reproduce.save_cell_arrays(
            os.path.join(directory, dataset, kind, method), result,
            per_image, row, 'fake')
  return str(directory)


def _width(columns):
  """Width of a one-panel figure of `columns` pictures."""
  grid = panels.PAD + columns * (SIZE * panels.SCALE + panels.PAD)
  return grid + 2 * panels.PAD


def test_every_figure_is_written_from_a_fake_run(tmp_path):
  run = make_fake_run(tmp_path / 'run')
  written = figures.write_figures(run, str(tmp_path / 'fig'))
  names = sorted(os.path.basename(f.path) for f in written)
  assert names == sorted([
      'fig1_large_holes.png', 'fig3b_search.png', 'fig3b_search.gif',
      'fig4_prior.png', 'fig5_blending.png', 'fig6_random80.png',
      'fig7_nearest_neighbour.png', 'fig8_11_ce_svhn.png',
      'fig8_11_ce_cars.png', 'fig12_error_images.png', 'fig13_failures.png',
      'psnr_per_method.png'])
  assert all(f.caption for f in written)
  sizes = {os.path.basename(f.path): Image.open(f.path).size for f in written}
  columns = {'fig1_large_holes.png': 6, 'fig5_blending.png': 4,
             'fig4_prior.png': 4, 'fig6_random80.png': 5,
             'fig7_nearest_neighbour.png': 4, 'fig8_11_ce_svhn.png': 4,
             'fig12_error_images.png': 5, 'fig13_failures.png': 4,
             # masked | every frame (5 <= 6 shown) | blended | original
             'fig3b_search.png': 1 + FRAMES + 2}
  for name, count in columns.items():
    assert sizes[name][0] == _width(count), name
  # Fig. 1: 2 data sets x (centre only: no half mask here) x 2 images.
  assert sizes['fig1_large_holes.png'][1] > 4 * SIZE * panels.SCALE
  # The matplotlib chart: a panel per data set.
  assert sizes['psnr_per_method.png'] == (720, 2 * 300)
  with Image.open(tmp_path / 'fig' / 'fig3b_search.gif') as gif:
    assert gif.n_frames == FRAMES


def test_a_figure_without_its_methods_is_skipped_with_a_note(tmp_path,
                                                              capsys):
  run = make_fake_run(tmp_path / 'run', ('ours', 'tv', 'lr'))
  written = figures.write_figures(run, str(tmp_path / 'fig'))
  names = {os.path.basename(f.path) for f in written}
  assert 'fig6_random80.png' in names and 'psnr_per_method.png' in names
  assert 'fig1_large_holes.png' not in names  # no PM
  assert 'fig12_error_images.png' not in names  # no CE
  err = capsys.readouterr().err
  assert 'note: fig1_large_holes.png skipped' in err
  assert 'note: fig12_error_images.png skipped' in err
  assert not os.path.exists(tmp_path / 'fig' / 'fig1_large_holes.png')


def test_an_empty_folder_gives_notes_not_errors(tmp_path, capsys):
  assert figures.write_figures(str(tmp_path / 'none'), str(tmp_path)) == []
  assert 'skipped' in capsys.readouterr().err


def test_read_cell_returns_what_was_saved(tmp_path):
  run = cells.Run.scan(make_fake_run(tmp_path, ('ours', 'tv')))
  assert run.datasets == ['svhn', 'cars']  # the paper's order
  assert run.methods('svhn', 'center') == ['ours', 'tv']
  cell = run.cell('svhn', 'center', 'ours')
  assert cell.images.shape == (IMAGES, SIZE, SIZE, 3)
  assert cell.images.min() >= -1 and cell.images.max() <= 1
  assert set(np.unique(cell.masks)) == {0.0, 1.0}
  assert cell.frames.shape == (IMAGES, FRAMES, SIZE, SIZE, 3)
  np.testing.assert_array_equal(cell.frame_steps, [0, 2, 4, 6, 8])
  assert 'loss' in cell.metrics and 'loss' not in run.cell(
      'svhn', 'center', 'tv').metrics
  assert len(run.rows()) == 2 * 2 * 2


def test_error_image_is_black_where_equal_and_amplified():
  a = np.zeros((1, 2, 2, 3), np.float32)
  b = a.copy()
  b[0, 0, 0] = 0.1  # 0.05 on [0, 1], x4 = 0.2
  error = panels.error_image(b, a)
  assert error.shape == (1, 2, 2, 3)
  np.testing.assert_allclose(error[0, 1, 1], -1.0)
  np.testing.assert_allclose(error[0, 0, 0], 2 * 0.2 - 1, atol=1e-6)


def test_labelled_grid_size_and_wrapped_labels():
  column = np.zeros((3, 8, 8, 3), np.float32)
  grid = panels.labelled_grid([column, column], ['a', 'b'], scale=2, pad=4)
  assert grid.width == 4 + 2 * (16 + 4)
  long = panels.labelled_grid([column, column],
                              ['a long label that wraps', 'b'],
                              cell_labels=[['x', ''], ['', 'y'], ['', '']],
                              scale=2, pad=4)
  assert long.width == grid.width and long.height > grid.height
  with pytest.raises(ValueError):
    panels.labelled_grid([column], ['a', 'b'])


def test_only_the_cells_asked_for_are_drawn(tmp_path):
  run = make_fake_run(tmp_path / 'run', ('ours', 'ce'))
  written = figures.write_figures(run, str(tmp_path / 'fig'),
                                  [('cars', 'center', 'ours'),
                                   ('cars', 'center', 'ce')])
  names = {os.path.basename(f.path) for f in written}
  assert 'fig8_11_ce_cars.png' in names
  assert 'fig8_11_ce_svhn.png' not in names

"""results: the report files an EvalResult is written to, and the grids."""

import csv
import dataclasses
import io
import json
import os

import numpy as np
from PIL import Image
import pytest

from inpaint_jax.data import images as image_io
from inpaint_jax.evaluation import results
N, SIZE, FRAMES, STEPS = 20, 8, 3, 4


def _result(frames=True):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (N, SIZE, SIZE, 3)).astype(np.float32)
  masks = np.ones((N, SIZE, SIZE, 1), np.float32)
  masks[:, 2:6, 2:6] = 0
  generated = rng.uniform(-1, 1, images.shape).astype(np.float32)
  inpainted = images * masks + generated * (1 - masks)
  per_image = {'psnr': rng.uniform(10, 30, N), 'loss': rng.uniform(0, 1, N)}
  return results.EvalResult(
      images, masks, tuple(f'dir/im{i}.jpg' for i in range(N)),
      generated, inpainted, per_image,
      {'num_images': N, 'mean_psnr': float(per_image['psnr'].mean())},
      method='test',
      frames=rng.uniform(-1, 1, (4, FRAMES, SIZE, SIZE, 3)) if frames else
      None,
      loss_curve=rng.uniform(0, 1, (4, STEPS)) if frames else None)


def test_write_all_writes_every_file_and_removes_the_partial_batches(
    tmp_path):
  result = _result()
  results.save_partial(str(tmp_path), 0, 'f', {'x': np.zeros(1)})
  results.write_all(str(tmp_path), result)
  assert sorted(os.listdir(tmp_path)) == [
      'grid.png', 'images', 'loss_curves.csv', 'metrics.csv', 'metrics.json',
      'search.gif']
  with open(tmp_path / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ['image', 'psnr', 'loss']
  assert [r['image'] for r in rows] == list(result.names)
  assert float(rows[3]['psnr']) == float(f"{result.metrics['psnr'][3]:.6g}")
  assert json.loads((tmp_path / 'metrics.json').read_text()) == result.summary
  grid = np.asarray(Image.open(tmp_path / 'grid.png'))
  assert grid.shape == (16 * (SIZE + 2) + 2, 4 * (SIZE + 2) + 2, 3)
  np.testing.assert_array_equal(
      grid, image_io.to_uint8(results.comparison_grid(result)))
  assert Image.open(tmp_path / 'search.gif').n_frames == FRAMES
  lines = (tmp_path / 'loss_curves.csv').read_text().splitlines()
  assert lines[0] == 'step,image_0,image_1,image_2,image_3'
  assert len(lines) == 1 + STEPS
  assert len(os.listdir(tmp_path / 'images')) == 3 * N
  inpainted = np.asarray(Image.open(tmp_path / 'images' /
                                    'im7_inpainted.png'))
  np.testing.assert_array_equal(inpainted,
                                image_io.to_uint8(result.inpainted[7]))
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)


def test_without_frames_or_images_only_the_grid_and_metrics(tmp_path):
  results.write_all(str(tmp_path), _result(frames=False), save_images=False)
  assert sorted(os.listdir(tmp_path)) == ['grid.png', 'metrics.csv',
                                          'metrics.json']


def test_a_shorter_grid_is_the_top_of_the_full_one(tmp_path):
  """The model card's 8-row grid: what cropping grid.png used to give."""
  result = _result(frames=False)
  results.write_all(str(tmp_path), result, save_images=False)
  cropped = io.BytesIO()
  with Image.open(tmp_path / 'grid.png') as grid:
    grid.crop((0, 0, grid.width, 2 + 8 * (SIZE + 2))).save(cropped, 'PNG')
  image_io.save_png(str(tmp_path / 'grid_8.png'),
                    results.comparison_grid(result, 8))
  assert (tmp_path / 'grid_8.png').read_bytes() == cropped.getvalue()


def test_partial_batches_round_trip_under_their_fingerprint(tmp_path):
  arrays = {'a': np.arange(3.0), 'b': np.ones((2, 2), np.float32)}
  images = np.zeros((2, 4, 4, 3), np.float32)
  masks = np.ones((2, 4, 4, 1), np.float32)
  fingerprint = results.run_fingerprint(None, images, masks, {'s': 1})
  assert fingerprint != results.run_fingerprint(None, images, masks, {'s': 2})
  results.save_partial(str(tmp_path), 4, fingerprint, arrays)
  loaded = results.load_partial(str(tmp_path), 4, fingerprint)
  assert loaded.keys() == arrays.keys()
  np.testing.assert_array_equal(loaded['b'], arrays['b'])
  assert results.load_partial(str(tmp_path), 4, 'other') is None
  assert results.load_partial(str(tmp_path), 0, fingerprint) is None
  results.remove_partial(str(tmp_path))
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)


# Per-image file names --------------------------------------------------------


@pytest.mark.parametrize('names,stems', [
    (['a.png', 'b.jpg'], ['a', 'b']),
    (['a.png', 'a.jpg', 'b.png'], ['a_png', 'a_jpg', 'b']),
    (['x/a.png', 'y/a.png'], ['a_png_0', 'a_png_1']),
    (['A.png', 'a.jpg'], ['A_png', 'a_jpg']),  # case-insensitive file systems
    (['a.png', 'A.PNG'], ['a_png_0', 'A_PNG_1']),
    (['a', 'a', 'c.d.png', 'c.d.jpg'], ['a_0', 'a_1', 'c.d_png', 'c.d_jpg']),
    (['a.png', 'a.jpg', 'a_png.bmp'], ['a_png_0', 'a_jpg', 'a_png_2']),
])
def test_image_stems_are_unique_and_plain_where_they_can_be(names, stems):
  assert results.image_stems(names) == stems
  assert results.image_stems(names) == stems  # stable


def test_images_whose_names_differ_by_extension_do_not_overwrite(tmp_path):
  result = dataclasses.replace(
      _result(frames=False),
      names=('a.png', 'a.jpg') + tuple(f'im{i}.png' for i in range(2, N)))
  results.write_all(str(tmp_path), result)
  files = os.listdir(tmp_path / 'images')
  assert len(files) == 3 * N
  for stem, i in (('a_png', 0), ('a_jpg', 1), ('im2', 2)):
    saved = np.asarray(Image.open(tmp_path / 'images' /
                                  f'{stem}_inpainted.png'))
    np.testing.assert_array_equal(saved,
                                  image_io.to_uint8(result.inpainted[i]))


# Stale files of an earlier run ------------------------------------------------


def test_a_rerun_removes_what_an_earlier_run_left_and_nothing_else(tmp_path):
  result = _result()
  results.write_all(str(tmp_path), result)  # 20 images, frames recorded
  images_dir = tmp_path / 'images'
  kept = ['notes.txt', 'im0_masked.jpg', 'logo.png', 'im0_inpainted.png.bak']
  for name in kept:
    (images_dir / name).write_text('mine')
  (images_dir / 'x_inpainted.png').mkdir()  # a folder: not touched
  # Saved batches of other settings, of images beyond the new run's and a
  # temporary file of a run killed mid-write.
  results.save_partial(str(tmp_path), 0, 'other settings', {'x': np.zeros(1)})
  results.save_partial(str(tmp_path), 40, 'other settings', {'x': np.zeros(1)})
  (tmp_path / 'partial' / 'batch_000000008.npz.tmp0.npz').write_bytes(b'PK')

  fewer = dataclasses.replace(
      _result(frames=False), images=result.images[:3], masks=result.masks[:3],
      names=('new.png', 'im1.jpg', 'im2.jpg'),
      generated=result.generated[:3], inpainted=result.inpainted[:3],
      metrics={k: v[:3] for k, v in result.metrics.items()})
  results.write_all(str(tmp_path), fewer)
  written = [f'{s}_{k}.png' for s in ('new', 'im1', 'im2')
             for k in results.IMAGE_KINDS]
  assert sorted(os.listdir(images_dir)) == sorted(
      written + kept + ['x_inpainted.png'])
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)
  # No frames this time: the earlier run's search.gif would be misleading.
  assert sorted(os.listdir(tmp_path)) == ['grid.png', 'images', 'metrics.csv',
                                          'metrics.json']
  # Without per-image PNGs, none of an earlier run's are left either.
  results.write_all(str(tmp_path), fewer, save_images=False)
  assert sorted(os.listdir(images_dir)) == sorted(kept + ['x_inpainted.png'])
  for name in kept:
    os.remove(images_dir / name)
  os.rmdir(images_dir / 'x_inpainted.png')
  results.write_all(str(tmp_path), fewer)
  results.write_all(str(tmp_path), fewer, save_images=False)
  assert not os.path.exists(images_dir)  # emptied: removed


def test_saving_a_batch_twice_leaves_no_temporary_file(tmp_path):
  for value in (1.0, 2.0):
    results.save_partial(str(tmp_path), 2, 'f', {'x': np.full(3, value)})
  assert os.listdir(tmp_path / 'partial') == ['batch_000000002.npz']
  np.testing.assert_array_equal(
      results.load_partial(str(tmp_path), 2, 'f')['x'], [2.0] * 3)


# The output folder ------------------------------------------------------------

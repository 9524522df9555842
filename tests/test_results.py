"""results: the report files an EvalResult is written to, and the grids."""

import csv
import io
import json
import os

import numpy as np
from PIL import Image

from inpaint_jax import images as image_io
from inpaint_jax import results

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
      'test', images, masks, tuple(f'dir/im{i}.jpg' for i in range(N)),
      generated, inpainted, per_image,
      {'num_images': N, 'mean_psnr': float(per_image['psnr'].mean())},
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
  results.remove_partial(str(tmp_path), 6)
  assert not os.path.exists(tmp_path / results.PARTIAL_DIR)

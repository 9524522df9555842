"""End to end through the experiment modules, as a user runs them."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from inpaint_jax.data import input_pipeline
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = input_pipeline.default_data_dir()


def _run(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', module, *flags], cwd=ROOT,
                        capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope='module')
def small_data_dir(tmp_path_factory):
  """A data root with a few real CelebA images (links into ../shared/data)."""
  root = tmp_path_factory.mktemp('data')
  train_count = input_pipeline.VALIDATION_HOLDOUT + 8  # 8 to train on.
  for split, count in (('train', train_count), ('test', 3)):
    source = os.path.join(SHARED, 'celeba', split)
    target = root / 'celeba' / split
    target.mkdir(parents=True)
    for name in input_pipeline.list_images(source)[:count]:
      os.symlink(os.path.join(source, name), target / name)
  return str(root)


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, small_data_dir):
  work = tmp_path_factory.mktemp('train')
  result = _run('experiments.train_dcgan', '--dataset=celeba',
                f'--data_dir={small_data_dir}', '--resolution=16', '--width=4',
                '--num_steps=2', '--batch_size=8',
                '--checkpoint_every=1', f'--workdir={work}/run',
                f'--export_dir={work}/model')
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.exists(work / 'run' / 'samples' / 'step_0000002.png')
  return str(work / 'model')


@pytest.mark.slow
@pytest.mark.requires_data('celeba/train')
def test_training_continues_from_a_model_in_its_own_architecture(
    tiny_model, small_data_dir, tmp_path):
  # No model flags: the run takes --init_from's (width 4, 16x16), not the
  # defaults (width 64, 64x64), which would not fit its weights.
  result = _run('experiments.train_dcgan', '--dataset=celeba',
                f'--data_dir={small_data_dir}', f'--init_from={tiny_model}',
                '--num_steps=1', '--batch_size=8', '--ema_decay=0.9',
                f'--workdir={tmp_path}/run')
  assert result.returncode == 0, result.stderr[-3000:]
  record = json.loads((tmp_path / 'run' / 'run.json').read_text())
  assert record['settings']['model']['width'] == 4
  assert record['settings']['model']['resolution'] == 16
  result = _run('experiments.train_dcgan', '--dataset=celeba',
                f'--data_dir={small_data_dir}', f'--init_from={tiny_model}',
                '--width=8', f'--workdir={tmp_path}/other')
  assert result.returncode == 2
  assert 'different config' in result.stderr.strip().splitlines()[-1]
  assert 'Traceback' not in result.stderr


@pytest.mark.slow
@pytest.mark.requires_data('celeba/train', 'celeba/test')
def test_inpaint_experiment_writes_grid_images_and_metrics(tiny_model,
                                                           small_data_dir,
                                                           tmp_path):
  out = tmp_path / 'out'
  result = _run('experiments.inpaint', f'--checkpoint={tiny_model}',
                '--dataset=celeba', '--split=test',
                f'--data_dir={small_data_dir}', '--num_images=3',
                '--batch_size=2', '--iterations=4', '--mask=pattern',
                '--window=9', '--record_every=2', f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'PSNR' in result.stdout
  summary = json.loads((out / 'metrics.json').read_text())
  assert summary['num_images'] == 3 and summary['mask'] == 'pattern'
  assert summary['search']['window'] == 9
  assert np.isfinite(summary['mean_psnr']) and 0 < summary['mean_ssim'] <= 1
  with open(out / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  assert [r['image'] for r in rows] == sorted(
      os.listdir(os.path.join(small_data_dir, 'celeba', 'test')))
  grid = Image.open(out / 'grid.png')
  assert grid.size == (4 * 18 + 2, 3 * 18 + 2)  # 4 columns, 3 rows of 16x16
  assert len(os.listdir(out / 'images')) == 9
  gif = Image.open(out / 'search.gif')
  assert gif.n_frames == 3  # the start and every 2 of 4 steps
  with open(out / 'loss_curves.csv') as f:
    assert len(f.read().splitlines()) == 1 + 4


@pytest.mark.slow
@pytest.mark.requires_data('celeba/train', 'celeba/test')
def test_own_images_with_a_mask_file(tiny_model, tmp_path):
  folder = tmp_path / 'mine'
  folder.mkdir()
  Image.new('RGB', (40, 30), (200, 10, 10)).save(folder / 'red.jpg')
  mask = np.full((16, 16), 255, np.uint8)
  mask[4:12, 4:12] = 0
  Image.fromarray(mask).save(tmp_path / 'mask.png')
  result = _run('experiments.inpaint', f'--checkpoint={tiny_model}',
                f'--images={folder}', f'--mask_file={tmp_path / "mask.png"}',
                '--iterations=2', '--compute_dtype=bfloat16',
                f'--output_dir={tmp_path / "out"}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.exists(tmp_path / 'out' / 'images' / 'red_inpainted.png')
  # A mask without missing pixels is refused in one line.
  Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / 'full.png')
  result = _run('experiments.inpaint', f'--checkpoint={tiny_model}',
                f'--images={folder}', f'--mask_file={tmp_path / "full.png"}',
                '--iterations=2', f'--output_dir={tmp_path / "out2"}')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith('error:')
  assert 'no missing' in result.stderr and 'Traceback' not in result.stderr


def test_missing_checkpoint_is_one_clear_line(tmp_path):
  result = _run('experiments.inpaint', f'--checkpoint={tmp_path / "nope"}',
                f'--output_dir={tmp_path}')
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith('error: No model directory')
  assert 'Traceback' not in result.stderr


def test_even_window_is_one_clear_line(tmp_path):
  result = _run('experiments.inpaint', '--window=4', f'--output_dir={tmp_path}')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      'error: SearchConfig.window=4')
  assert '--window=7' in result.stderr and 'Traceback' not in result.stderr


@pytest.mark.parametrize('module,flag,names', [
    ('experiments.inpaint', '--lam=nan', '--lam'),
    ('experiments.inpaint', '--learning_rate=-0.03', '--learning_rate'),
    ('experiments.inpaint', '--restarts=0', '--restarts'),
    ('experiments.train_dcgan', '--checkpoint_every=0', '--checkpoint_every'),
    ('experiments.train_dcgan', '--batch_size=0', '--batch_size'),
])
def test_meaningless_flags_are_refused_before_any_work(tmp_path, module, flag,
                                                       names):
  out = tmp_path / 'out'
  where = ('--workdir' if module.endswith('train_dcgan') else '--output_dir')
  result = _run(module, flag, f'{where}={out}')
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and names in last
  assert 'Traceback' not in result.stderr
  assert not out.exists()  # nothing written


def test_compare_runs_refuses_a_run_without_its_label(tmp_path):
  result = _run('experiments.compare_runs', f'--run={tmp_path}',
                f'--output={tmp_path / "compare.png"}')
  assert result.returncode == 2
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: --run=') and 'LABEL=WORKDIR' in last
  assert not (tmp_path / 'compare.png').exists()


def test_counts_below_one_are_flag_errors(tmp_path):
  result = _run('experiments.inpaint', '--num_images=0',
                f'--output_dir={tmp_path / "out"}')
  assert result.returncode != 0
  assert '--num_images=0' in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'out').exists()


@pytest.mark.slow
@pytest.mark.requires_data('svhn/test')
def test_svhn_inpainting_reports_semantic_accuracy(tmp_path):
  common = ('experiments.inpaint', '--checkpoint=models/svhn64',
            '--dataset=svhn', '--split=test', '--num_images=2',
            '--iterations=2', '--save_images=false')
  result = _run(*common, f'--output_dir={tmp_path / "on"}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Semantic accuracy' in result.stdout
  summary = json.loads((tmp_path / 'on' / 'metrics.json').read_text())
  assert 0 <= summary['semantic_accuracy'] <= 1
  assert summary['semantic_accuracy_originals'] > 0
  with open(tmp_path / 'on' / 'metrics.csv') as f:
    assert next(csv.reader(f))[-1] == 'correct'
  # --classifier= turns it off: the columns of every other data set.
  result = _run(*common, '--classifier=', f'--output_dir={tmp_path / "off"}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Semantic accuracy' not in result.stdout
  with open(tmp_path / 'off' / 'metrics.csv') as f:
    assert next(csv.reader(f))[-1] == 'missing_fraction'

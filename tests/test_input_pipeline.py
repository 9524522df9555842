"""Tests for inpaint_jax.input_pipeline on the real shared images and TFDS mocks."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from inpaint_jax import input_pipeline

DATA_DIR = input_pipeline.default_data_dir()
needs_data = pytest.mark.skipif(
    not os.path.isdir(os.path.join(DATA_DIR, 'celeba')),
    reason=f'shared data not found at {DATA_DIR}')


@needs_data
@pytest.mark.parametrize('dataset', input_pipeline.DATASETS)
def test_shared_folders_load_as_64x64_rgb(dataset):
  for split in ('train', 'test'):
    images, names = input_pipeline.load_split(dataset, split, limit=6)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.float32
    assert -1 <= images.min() < images.max() <= 1
    assert names == sorted(names) and all(
        n.lower().endswith(('.jpg', '.png')) for n in names)


@needs_data
def test_celeba_crop_is_the_central_108_of_178():
  path = os.path.join(DATA_DIR, 'celeba', 'test')
  name = input_pipeline.list_images(path)[0]
  with Image.open(os.path.join(path, name)) as image:
    w, h = image.size  # 89 x 109 in the shared copy
    side = round(min(w, h) * 108 / 178)
    left, top = (w - side) // 2, (h - side) // 2
    expected = np.asarray(image.convert('RGB').crop(
        (left, top, left + side, top + side)).resize((64, 64), Image.BICUBIC))
  images, _ = input_pipeline.load_split_uint8('celeba', 'test', limit=1)
  np.testing.assert_array_equal(images[0], expected)


@needs_data
def test_svhn_labels_file_is_ignored_and_digits_are_resized():
  names = input_pipeline.list_images(os.path.join(DATA_DIR, 'svhn', 'test'))
  assert 'labels.csv' not in names
  images, _ = input_pipeline.load_split_uint8('svhn', 'test', limit=1)
  with Image.open(os.path.join(DATA_DIR, 'svhn', 'test', names[0])) as image:
    expected = np.asarray(image.convert('RGB').resize((64, 64), Image.BICUBIC))
  np.testing.assert_array_equal(images[0], expected)


def test_any_folder_any_mode_becomes_rgb(tmp_path):
  Image.new('L', (80, 50), 200).save(tmp_path / 'a.png')
  Image.new('RGBA', (30, 40), (10, 20, 30, 128)).save(tmp_path / 'b.png')
  Image.new('P', (64, 64)).save(tmp_path / 'c.bmp')
  (tmp_path / 'notes.txt').write_text('not an image')
  images, names = input_pipeline.load_folder(str(tmp_path))
  assert names == ['a.png', 'b.png', 'c.bmp']
  assert images.shape == (3, 64, 64, 3)
  np.testing.assert_allclose(images[0], 200 / 127.5 - 1, atol=1e-6)


def test_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='INPAINT_DATA_DIR'):
    input_pipeline.load_split('celeba', 'test', data_dir=str(tmp_path))
  with pytest.raises(ValueError, match='use one of'):
    input_pipeline.load_split('imagenet', 'test')
  with pytest.raises(ValueError, match='no JPEG/PNG'):
    input_pipeline.load_folder(str(tmp_path))
  (tmp_path / 'broken.jpg').write_bytes(b'not really a jpeg')
  with pytest.raises(ValueError, match='broken.jpg'):
    input_pipeline.load_folder(str(tmp_path))


def _uint8_images(n=20):
  return np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones(
      (1, 4, 4, 3), np.uint8) + np.arange(4, dtype=np.uint8)[None, None, :,
                                                            None]


def test_train_batches_are_a_function_of_seed_and_step():
  images = _uint8_images()
  first = list(zip(range(7), input_pipeline.train_batches(images, 4, seed=3)))
  resumed = input_pipeline.train_batches(images, 4, seed=3, start_step=5)
  np.testing.assert_array_equal(next(resumed), first[5][1])
  other_seed = input_pipeline.train_batch(images, 4, seed=4, step=0)
  assert not np.array_equal(other_seed, first[0][1])
  # One epoch (5 steps of 4) covers every image once.
  seen = np.concatenate([
      input_pipeline.train_batch(images, 4, 3, step, flip=False)[:, 0, 0, 0]
      for step in range(5)])
  np.testing.assert_allclose(np.sort(seen), np.arange(20) / 127.5 - 1,
                             atol=1e-6)


def test_flip_mirrors_images_left_right():
  images = _uint8_images()
  plain = input_pipeline.train_batch(images, 8, 0, 2, flip=False)
  flipped = input_pipeline.train_batch(images, 8, 0, 2, flip=True)
  mirrored = [np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain)]
  same = [np.array_equal(f, p) for f, p in zip(flipped, plain)]
  assert all(m or s for m, s in zip(mirrored, same))
  assert any(mirrored) and any(same)


def test_processes_get_disjoint_shares_of_the_global_batch():
  images = _uint8_images()
  whole = input_pipeline.train_batch(images, 8, 1, 4)
  parts = [input_pipeline.train_batch(images, 8, 1, 4, process_index=p,
                                      process_count=2) for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_eval_batches_keep_order_and_last_partial_batch():
  images = _uint8_images(10)
  batches = list(input_pipeline.eval_batches(images, 4))
  assert [len(b) for b in batches] == [4, 4, 2]
  np.testing.assert_allclose(np.concatenate(batches), images / 127.5 - 1,
                             atol=1e-6)


@pytest.mark.parametrize('dataset', input_pipeline.DATASETS)
def test_tfds_sources_with_mock_data(dataset):
  with tfds.testing.mock_data(num_examples=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    images, names = input_pipeline.load_split(dataset, 'test', source='tfds')
  assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
  assert -1 <= images.min() and images.max() <= 1
  assert names[0] == f'{input_pipeline.TFDS_NAMES[dataset]}_test_000000'


def test_cars_bounding_box_is_cropped():
  image = Image.new('RGB', (100, 50), (0, 0, 0))
  image.paste((255, 255, 255), (50, 0, 100, 50))  # right half white
  cropped = input_pipeline.preprocess(image, 'cars', 16,
                                      bbox=[0.0, 0.5, 1.0, 1.0])
  assert cropped.min() == 255


def test_unprepared_tfds_dataset_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='tfds build'):
    input_pipeline.load_split('svhn', 'test', source='tfds',
                              data_dir=str(tmp_path))

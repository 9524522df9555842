"""Tests for inpaint_jax.input_pipeline: shared image folders, TFDS mocks.

The shared folders (../shared/data or $INPAINT_DATA_DIR) are read in place,
a few images each. TFDS is exercised with `tfds.testing.mock_data(policy=
MockPolicy.USE_CODE)`, which patches `DatasetBuilder.as_data_source` to serve
random examples generated from each builder's feature spec (numpy only, no
TensorFlow, no files).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from inpaint_jax.data import input_pipeline
from inpaint_jax.data import preprocessing
DATA_DIR = input_pipeline.default_data_dir()


def _manual(path, crop_side=None, box_side=None):
  """What the crop should give, computed independently with PIL."""
  with Image.open(path) as image:
    image = image.convert('RGB')
    w, h = image.size
    if crop_side is not None:
      side = crop_side(w, h)
      left, top = (w - side) // 2, (h - side) // 2
      image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((64, 64), Image.BICUBIC))


def test_default_data_dir(monkeypatch):
  monkeypatch.delenv(input_pipeline.DATA_DIR_ENV, raising=False)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # repo
  assert input_pipeline.default_data_dir() == os.path.normpath(
      os.path.join(root, '..', 'shared', 'data'))
  monkeypatch.setenv(input_pipeline.DATA_DIR_ENV, '/somewhere/else')
  assert input_pipeline.default_data_dir() == '/somewhere/else'


@pytest.mark.requires_data(*input_pipeline.DATASETS)
@pytest.mark.parametrize('dataset', input_pipeline.DATASETS)
def test_shared_folders_load_as_64x64_rgb(dataset):
  for split in ('train', 'test'):
    images, names = input_pipeline.load_dataset(dataset, split, limit=16)
    assert images.shape == (16, 64, 64, 3) and images.dtype == np.float32
    assert -1 <= images.min() < images.max() <= 1
    assert names == sorted(names) and all(
        n.lower().endswith(('.jpg', '.png')) for n in names)
  as_uint8, _ = input_pipeline.load_dataset(dataset, 'test', limit=2,
                                            dtype=np.uint8)
  assert as_uint8.dtype == np.uint8
  np.testing.assert_allclose(as_uint8 / 127.5 - 1, images[:2], atol=1e-6)


@pytest.mark.requires_data(*input_pipeline.DATASETS)
@pytest.mark.parametrize('dataset,crop_side', [
    ('celeba', lambda w, h: 54),  # 89x109 shared copies: 108/178 of 89.
    ('cars', lambda w, h: 96),    # 128x96 frames: the central 96x96.
    ('svhn', None),               # 32x32 digits: resized as they are.
])
def test_crop_matches_manual_pil(dataset, crop_side):
  path = os.path.join(DATA_DIR, dataset, 'test')
  name = input_pipeline.list_images(path)[0]
  images, names = input_pipeline.load_dataset(dataset, 'test', limit=1,
                                              dtype=np.uint8)
  assert names == [name]
  np.testing.assert_array_equal(
      images[0], _manual(os.path.join(path, name), crop_side))


@pytest.mark.requires_data('svhn/test')
def test_svhn_labels_file_is_ignored():
  path = os.path.join(DATA_DIR, 'svhn', 'test')
  assert os.path.exists(os.path.join(path, 'labels.csv'))
  assert 'labels.csv' not in input_pipeline.list_images(path)


def test_any_folder_any_mode_becomes_rgb(tmp_path):
  Image.new('L', (80, 50), 200).save(tmp_path / 'a.png')
  Image.new('RGBA', (30, 40), (10, 20, 30, 128)).save(tmp_path / 'b.PNG')
  Image.new('P', (64, 64)).save(tmp_path / 'c.bmp')
  (tmp_path / 'notes.txt').write_text('not an image')
  (tmp_path / 'labels.csv').write_text('name,label\n')
  images, names = input_pipeline.load_folder(str(tmp_path))
  assert names == ['a.png', 'b.PNG', 'c.bmp']
  assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
  np.testing.assert_allclose(images[0], 200 / 127.5 - 1, atol=1e-6)
  # Half-transparent: composited on white, 255 - (255 - c) * 128 / 255.
  np.testing.assert_allclose(images[1, 0, 0], np.array([132, 137, 142])
                             / 127.5 - 1, atol=1e-6)
  limited, names = input_pipeline.load_folder(str(tmp_path), limit=2)
  assert len(limited) == 2 and names == ['a.png', 'b.PNG']


def test_16_bit_and_tiff_images_of_a_folder_keep_their_brightness(tmp_path):
  Image.new('I;16', (20, 20), 32768).save(tmp_path / 'a.png')
  Image.new('I;16B', (20, 20), 65535).save(tmp_path / 'b.tif')
  Image.new('F', (20, 20), 0.2).save(tmp_path / 'c.TIFF')
  images, names = input_pipeline.load_folder(str(tmp_path), size=4,
                                             dtype=np.uint8)
  assert names == ['a.png', 'b.tif', 'c.TIFF']
  np.testing.assert_array_equal(images[:, 0, 0, 0], [128, 255, 51])
  Image.new('F', (20, 20), 7.0).save(tmp_path / 'd.tif')
  with pytest.raises(ValueError, match=r'd.tif.*outside \[0, 1\]'):
    input_pipeline.load_folder(str(tmp_path))


def test_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match='INPAINT_DATA_DIR') as e:
    input_pipeline.load_dataset('celeba', 'test', data_dir=str(tmp_path))
  assert os.path.join(str(tmp_path), 'celeba', 'test') in str(e.value)
  assert '--data_dir' in str(e.value)
  with pytest.raises(ValueError, match="celeba', 'svhn', 'cars"):
    input_pipeline.load_dataset('imagenet', 'test')
  with pytest.raises(ValueError, match='use one of'):
    input_pipeline.tfds_source('mnist', 'test')
  with pytest.raises(ValueError, match='no JPEG/PNG'):
    input_pipeline.load_folder(str(tmp_path))
  (tmp_path / 'broken.jpg').write_bytes(b'not really a jpeg')
  with pytest.raises(ValueError, match='broken.jpg'):
    input_pipeline.load_folder(str(tmp_path))


def _numbered_images(n=20):
  """(n, 4, 4, 3) uint8: image i has value 10*i + column in every pixel."""
  column = np.arange(4, dtype=np.uint8)[None, None, :, None]
  ids = (10 * np.arange(n, dtype=np.uint8))[:, None, None, None]
  return np.broadcast_to(ids + column, (n, 4, 4, 3)).copy()


def _ids(batch):
  """Which images (by _numbered_images id) a float batch holds, flip-proof."""
  pixels = np.round((batch + 1) * 127.5).astype(int)
  return pixels.min(axis=(1, 2, 3)) // 10


def test_train_batches_are_a_function_of_seed_and_step():
  images = _numbered_images()
  first = [input_pipeline.train_batch(images, 4, 3, step)
           for step in range(12)]
  for step in (11, 7, 9):  # In any order, as after a resume.
    np.testing.assert_array_equal(
        input_pipeline.train_batch(images, 4, 3, step), first[step])
  assert first[0].dtype == np.float32 and first[0].shape == (4, 4, 4, 3)
  assert not np.array_equal(input_pipeline.train_batch(images, 4, 4, 0),
                            first[0])
  # Each epoch (5 steps of 4) covers every image once, in a new order.
  epoch0 = np.concatenate([_ids(b) for b in first[:5]])
  epoch1 = np.concatenate([_ids(b) for b in first[5:10]])
  np.testing.assert_array_equal(np.sort(epoch0), np.arange(20))
  np.testing.assert_array_equal(np.sort(epoch1), np.arange(20))
  assert not np.array_equal(epoch0, epoch1)


def test_remainder_is_dropped_in_training():
  images = _numbered_images(10)
  epoch = [input_pipeline.train_batch(images, 4, 0, s) for s in range(2)]
  assert all(len(b) == 4 for b in epoch)
  assert len(set(np.concatenate([_ids(b) for b in epoch]))) == 8
  with pytest.raises(ValueError, match='must lie in'):
    input_pipeline.train_batch(images, 11, 0, 0)
  with pytest.raises(ValueError, match='must lie in'):
    input_pipeline.train_batch(images, 0, 0, 0)


def test_flip_mirrors_images_left_right():
  images = _numbered_images()
  plain = input_pipeline.train_batch(images, 16, 0, 2, flip=False)
  flipped = input_pipeline.train_batch(images, 16, 0, 2, flip=True)
  np.testing.assert_array_equal(_ids(plain), _ids(flipped))
  mirrored = [np.array_equal(f, p[:, ::-1]) for f, p in zip(flipped, plain)]
  same = [np.array_equal(f, p) for f, p in zip(flipped, plain)]
  assert all(m != s for m, s in zip(mirrored, same))  # Never both: asymmetric.
  assert any(mirrored) and any(same)


def test_processes_get_disjoint_shares_of_the_global_batch():
  images = _numbered_images()
  for step in (0, 4, 9):
    whole = input_pipeline.train_batch(images, 8, 1, step)
    parts = [input_pipeline.train_batch(images, 8, 1, step, process_index=p,
                                        process_count=4) for p in range(4)]
    assert all(len(p) == 2 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    ids = [set(_ids(p)) for p in parts]
    assert all(not a & b for i, a in enumerate(ids) for b in ids[i + 1:])
  with pytest.raises(ValueError, match='divisible'):
    input_pipeline.train_batch(images, 8, 1, 0, process_count=3)


def test_train_batch_accepts_a_jax_key():
  import jax
  images = _numbered_images()
  a = input_pipeline.train_batch(images, 4, jax.random.key(1), 3)
  b = input_pipeline.train_batch(images, 4, jax.random.key(1), 3)
  c = input_pipeline.train_batch(images, 4, jax.random.PRNGKey(2), 3)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)


@pytest.fixture
def mock_tfds():
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # USE_CODE: examples are generated from the builder's features (no metadata
  # files for these builders ship with tfds, so USE_FILES would fail).
  with tfds.testing.mock_data(num_examples=5,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    yield


@pytest.mark.parametrize('dataset', input_pipeline.DATASETS)
def test_tfds_sources_with_mock_data(dataset, mock_tfds):
  del mock_tfds
  source = input_pipeline.tfds_source(dataset, 'train')
  assert len(source) == 5
  example = source[0]
  assert example['image'].dtype == np.uint8 and example['image'].ndim == 3
  if dataset == 'cars':
    assert example['bbox'].shape == (4,)
  images, names = input_pipeline.load_tfds(dataset, 'train', limit=3)
  assert images.shape == (3, 64, 64, 3) and images.dtype == np.float32
  assert -1 <= images.min() and images.max() <= 1
  builder = input_pipeline.TFDS_NAMES[dataset]
  assert names == [f'{builder}_train_{i:06d}' for i in range(3)]
  expected = preprocessing.preprocess(
      Image.fromarray(example['image']), dataset, 64,
      example['bbox'] if dataset == 'cars' else None)
  np.testing.assert_array_equal(
      input_pipeline.load_tfds(dataset, 'train', limit=1, dtype=np.uint8)[0][0],
      expected)


def test_tfds_images_are_lazy_and_batchable(mock_tfds):
  del mock_tfds
  lazy = input_pipeline.tfds_images('svhn', 'train', size=16)
  assert lazy.shape == (5, 16, 16, 3) and len(lazy) == 5
  head = lazy[:3]
  assert isinstance(head, input_pipeline.TfdsImages) and len(head) == 3
  batch = input_pipeline.train_batch(head, 2, 0, 1)
  assert batch.shape == (2, 16, 16, 3) and batch.dtype == np.float32
  images, description = input_pipeline.training_images('svhn', source='tfds',
                                                       size=16, holdout=2)
  assert len(images) == 3 and 'first 3 of 5' in description
  np.testing.assert_array_equal(np.asarray(images), lazy[np.arange(3)])


def test_unprepared_tfds_dataset_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='tfds build svhn_cropped'):
    input_pipeline.load_tfds('svhn', 'test', data_dir=str(tmp_path))


def test_training_and_validation_split_of_a_folder_tree(tmp_path):
  folder = tmp_path / 'celeba' / 'train'
  folder.mkdir(parents=True)
  for i in range(6):
    Image.new('RGB', (89, 109), (i * 40, 0, 0)).save(folder / f'{i:06d}.jpg')
  train, description = input_pipeline.training_images(
      'celeba', data_dir=str(tmp_path), size=8, holdout=2)
  assert train.shape == (4, 8, 8, 3) and train.dtype == np.uint8
  assert 'first 4 of 6' in description
  held, names = input_pipeline.validation_images(
      'celeba', data_dir=str(tmp_path), size=8, holdout=2)
  assert names == ['000004.jpg', '000005.jpg']
  everything, _ = input_pipeline.load_dataset('celeba', 'train',
                                              data_dir=str(tmp_path), size=8)
  np.testing.assert_array_equal(held, everything[4:])
  with pytest.raises(ValueError, match='too few'):
    input_pipeline.training_images('celeba', data_dir=str(tmp_path), holdout=6)


@pytest.mark.requires_data('svhn/train')
def test_validation_split_is_the_held_out_end_of_train():
  images, names = input_pipeline.load_split('svhn', 'validation', limit=4)
  train_names = input_pipeline.list_images(
      os.path.join(DATA_DIR, 'svhn', 'train'))
  assert names == train_names[-input_pipeline.VALIDATION_HOLDOUT:][:4]
  assert images.shape == (4, 64, 64, 3)

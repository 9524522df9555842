"""Tests for inpaint_jax.fullsize and evaluation.own_photos: own photos
inpainted at their own size."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax import fullsize
from inpaint_jax.data import images as image_io
from inpaint_jax.data import preprocessing
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import own_photos
from tests.conftest import png_claiming, upright_and_rotated

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [(173, 131), (131, 173), (64, 64), (10, 3), (178, 218), (89, 109),
         (7, 7)]


def _photo(width, height, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (height, width, 3), np.uint8)


def _hole(shape, rows, cols):
  known = np.ones(shape, bool)
  known[rows[0]:rows[1], cols[0]:cols[1]] = False
  return known


@pytest.mark.parametrize('crop', ['center', 'celeba'])
@pytest.mark.parametrize('width,height', SIZES)
def test_crop_box_is_the_square_preprocess_cuts(width, height, crop):
  photo = _photo(width, height)
  left, top, side = preprocessing.crop_box(width, height, crop)
  short = min(width, height)
  assert side == (short if crop == 'center'
                  else max(1, round(short * 108 / 178)))
  assert 0 <= left and left + side <= width and top + side <= height
  square = Image.fromarray(photo).crop((left, top, left + side, top + side))
  expected = np.asarray(square.resize((16, 16), Image.BICUBIC))
  np.testing.assert_array_equal(
      preprocessing.preprocess(Image.fromarray(photo), crop, 16), expected)
  view, box = fullsize.model_view(photo, crop, 16)
  assert box == (left, top, side) and view.dtype == np.float32
  np.testing.assert_array_equal(view, image_io.from_uint8(expected))


def test_crop_box_of_celeba_faces_and_bad_crops():
  assert preprocessing.crop_box(178, 218, 'celeba') == (35, 55, 108)
  assert preprocessing.crop_box(89, 109, 'celeba') == (17, 27, 54)
  with pytest.raises(InputError, match='square'):
    preprocessing.crop_box(30, 20, 'svhn')
  with pytest.raises(InputError, match='uint8'):
    fullsize.model_view(np.zeros((5, 5, 3), np.float32))


@pytest.mark.parametrize('width,height', [(173, 131), (40, 30), (256, 256)])
def test_view_mask_is_conservative(width, height):
  rng = np.random.default_rng(1)
  left, top, side = box = preprocessing.crop_box(width, height, 'center')
  size = 16
  known = np.ones((height, width), bool)
  # Scattered single pixels, about 0.3 per view pixel.
  inside = rng.random((side, side)) > min(0.03, 0.3 * (size / side) ** 2)
  inside[:2] = True
  known[top:top + side, left:left + side] = inside
  view = fullsize.view_mask(known, box, size)
  assert view.shape == (size, size, 1) and view.dtype == np.float32
  for i in range(size):
    for j in range(size):
      r0, r1 = i * side / size, (i + 1) * side / size
      c0, c1 = j * side / size, (j + 1) * side / size
      under = inside[int(np.floor(r0)):int(np.ceil(r1)),
                     int(np.floor(c0)):int(np.ceil(c1))]
      assert view[i, j, 0] == float(under.all())


@pytest.mark.parametrize('width,height,crop', [
    (173, 131, 'center'), (131, 173, 'celeba'), (40, 30, 'center'),
    (64, 64, 'center')])
def test_full_mask_covers_the_hole_of_view_mask(width, height, crop):
  rng = np.random.default_rng(2)
  left, top, side = box = preprocessing.crop_box(width, height, crop)
  known = np.ones((height, width), bool)
  known[top:top + side, left:left + side] = rng.random((side, side)) > 0.02
  known[top, left] = True
  view = fullsize.view_mask(known, box, 16)
  back = fullsize.full_mask(view, box, (height, width, 3))
  assert back.shape == (height, width) and back.dtype == bool
  assert not np.any(back & ~known)  # every missing pixel stays missing
  outside = np.ones((height, width), bool)
  outside[top:top + side, left:left + side] = False
  assert back[outside].all()


@pytest.mark.parametrize('scale', [1, 3])
def test_view_mask_of_full_mask_is_the_view_mask(scale):
  rng = np.random.default_rng(3)
  view = (rng.random((16, 16, 1)) > 0.3).astype(np.float32)
  view[0, 0] = 0.0
  side = 16 * scale
  box = (5, 2, side)
  full = fullsize.full_mask(view, box, (side + 4, side + 9))
  np.testing.assert_array_equal(fullsize.view_mask(full, box, 16), view)
  # Nearest neighbour: each view pixel is a scale x scale block.
  np.testing.assert_array_equal(
      full[2:2 + side, 5:5 + side],
      np.kron(view[..., 0], np.ones((scale, scale))) > 0.5)


def test_view_mask_refuses_a_hole_outside_the_box():
  box = preprocessing.crop_box(173, 131, 'center')  # (21, 0, 131)
  known = _hole((131, 173), (50, 60), (5, 30))  # columns 5..20 are outside
  with pytest.raises(InputError, match='outside the square.*--crop'):
    fullsize.view_mask(known, box, 16)
  photo = _photo(173, 131)
  with pytest.raises(InputError, match='outside the square'):
    fullsize.paste_back(photo, known, np.zeros((16, 16, 3)), box)
  with pytest.raises(InputError, match='no missing pixel'):
    fullsize.view_mask(np.ones((131, 173), bool), box, 16)


def test_paste_back_keeps_every_known_pixel_bit_for_bit():
  photo = _photo(173, 131)
  view, box = fullsize.model_view(photo, 'center', 16)
  known = _hole((131, 173), (40, 95), (60, 120))
  known[20, 30:34] = False  # a second, small hole
  rng = np.random.default_rng(4)
  generated = rng.uniform(-1, 1, (16, 16, 3)).astype(np.float32)
  for blend in (True, False):
    out = fullsize.paste_back(photo, known, generated, box, blend=blend)
    assert out.shape == photo.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[known], photo[known])
    assert np.mean(out[~known] != photo[~known]) > 0.9
  del view


def test_paste_back_of_a_constant_g_is_the_harmonic_fill():
  # A ramp photo and a flat G: the fill is the (discrete harmonic) ramp.
  height, width = 131, 173
  columns = np.linspace(20, 230, width)
  photo = np.repeat(np.round(columns)[None, :, None], height, 0)
  photo = np.repeat(photo, 3, 2).astype(np.uint8)
  _, box = fullsize.model_view(photo, 'center', 16)
  known = _hole((height, width), (30, 100), (50, 140))
  generated = np.full((16, 16, 3), 0.7, np.float32)
  out = fullsize.paste_back(photo, known, generated, box)
  diff = np.abs(out.astype(int) - photo.astype(int))
  assert diff.max() <= 1
  # Without blending the hole is G itself: 0.7 -> 217.
  flat = fullsize.paste_back(photo, known, generated, box, blend=False)
  assert np.all(flat[~known] == 217)


def test_paste_back_follows_the_gradients_of_g():
  # A flat grey photo and a G with a bump in the hole: the fill has the bump,
  # set on the photo's grey (G's gradients, the photo's colours around).
  height, width = 100, 120
  photo = np.full((height, width, 3), 128, np.uint8)
  _, box = fullsize.model_view(photo, 'center', 16)  # (10, 0, 100)
  known = _hole((height, width), (20, 80), (30, 90))
  axis = np.arange(16) - 7.5
  bump = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / 4.5)
  generated = np.repeat((bump - 0.5)[..., None], 3, 2).astype(np.float32)
  out = fullsize.paste_back(photo, known, generated, box).astype(float)
  upsampled = np.asarray(Image.fromarray(bump.astype(np.float32), 'F').resize(
      (100, 100), Image.BICUBIC))[:, 20:80]  # the hole's columns in the box
  rise = (upsampled[50, 30] - upsampled[20, 30]) * 127.5
  assert rise > 80
  assert abs((out[50, 60, 0] - 128) - rise) < 0.1 * rise
  assert abs(out[50, 60, 0] - out[50, 60, 2]) <= 1
  edge = out[21, 31:89, 0]  # the hole's first row: close to the grey around
  assert np.abs(edge - 128).max() < 0.15 * rise


def test_paste_back_warns_when_the_solve_stops_short():
  photo = _photo(173, 131)
  _, box = fullsize.model_view(photo, 'center', 16)
  known = _hole((131, 173), (20, 110), (40, 140))
  generated = np.zeros((16, 16, 3), np.float32)
  with pytest.warns(RuntimeWarning, match='max_iters'):
    out = fullsize.paste_back(photo, known, generated, box, max_iters=2)
  np.testing.assert_array_equal(out[known], photo[known])
  with pytest.raises(InputError, match='damaged'):
    fullsize.paste_back(photo, known, np.full((16, 16, 3), np.nan), box)


def test_paste_back_starts_from_the_coarse_blend():
  # The same fill as from G, in fewer CG iterations (with a warm start).
  photo = _photo(173, 131, seed=5)
  _, box = fullsize.model_view(photo, 'center', 16)
  known = _hole((131, 173), (10, 120), (30, 150))
  generated = np.random.default_rng(6).uniform(-1, 1, (16, 16, 3))
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    out = fullsize.paste_back(photo, known, generated, box)
  tight = fullsize.paste_back(photo, known, generated, box, tol=1e-7,
                              max_iters=20000)
  assert np.abs(out.astype(int) - tight.astype(int)).max() <= 1


# experiments.inpaint --images ------------------------------------------------


def _run(*flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'experiments.inpaint', *flags],
                        cwd=ROOT, capture_output=True, text=True, env=env,
                        timeout=600)


@pytest.fixture(scope='module')
def tiny_model_dir(tmp_path_factory, tiny_config, tiny_variables):
  path = tmp_path_factory.mktemp('model') / 'tiny'
  return checkpoints.save_model(str(path), tiny_config, *tiny_variables)


@pytest.fixture(scope='module')
def photo_folder(tmp_path_factory):
  folder = tmp_path_factory.mktemp('photos')
  Image.fromarray(_photo(53, 41, seed=7)).save(folder / 'wide.png')
  Image.fromarray(_photo(30, 47, seed=8)).save(folder / 'tall.png')
  return folder


def _check_fullsize(out, photos, known_of):
  for stem in ('wide', 'tall'):
    with Image.open(photos / f'{stem}.png') as f:
      photo = np.asarray(f.convert('RGB'))
    with Image.open(out / 'images' / f'{stem}_fullsize.png') as f:
      result = np.asarray(f)
    assert result.shape == photo.shape
    known = known_of(stem, photo.shape[:2])
    np.testing.assert_array_equal(result[known], photo[known])
    assert not np.array_equal(result, photo)


def test_inpaint_own_photos_writes_them_at_their_own_size(
    tiny_model_dir, photo_folder, tmp_path):
  out = tmp_path / 'out'
  result = _run(f'--checkpoint={tiny_model_dir}', f'--images={photo_folder}',
                '--iterations=2', '--num_images=2', '--batch_size=2',
                '--mask=center', f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(out / 'images')) == sorted(
      f'{s}_{k}.png' for s in ('tall', 'wide')
      for k in ('masked', 'generated', 'inpainted', 'fullsize'))

  def centre_hole(stem, shape):
    h, w = shape
    box = preprocessing.crop_box(w, h, 'center')
    view = np.ones((16, 16, 1), np.float32)
    view[4:12, 4:12] = 0
    return fullsize.full_mask(view, box, shape)

  _check_fullsize(out, photo_folder, centre_hole)

  # A mask at a photo's own size is used there, reduced for the search; the
  # hole lies in both photos' central squares.
  both = np.full((47, 53), 255, np.uint8)  # fits no photo: refused
  Image.fromarray(both).save(tmp_path / 'odd.png')
  result = _run(f'--checkpoint={tiny_model_dir}', f'--images={photo_folder}',
                f'--mask_file={tmp_path / "odd.png"}', '--iterations=2',
                f'--output_dir={tmp_path / "odd"}')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert '53x47' in result.stderr and '16x16' in result.stderr


def test_inpaint_own_photo_with_a_mask_at_its_size(tiny_model_dir, tmp_path):
  photos = tmp_path / 'photos'
  photos.mkdir()
  photo = _photo(53, 41, seed=9)
  Image.fromarray(photo).save(photos / 'wide.png')
  mask = np.full((41, 53), 255, np.uint8)
  mask[10:25, 20:31] = 0
  Image.fromarray(mask).save(tmp_path / 'mask.png')
  out = tmp_path / 'out'
  result = _run(f'--checkpoint={tiny_model_dir}', f'--images={photos}',
                f'--mask_file={tmp_path / "mask.png"}', '--iterations=2',
                f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-3000:]
  with Image.open(out / 'images' / 'wide_fullsize.png') as f:
    result_image = np.asarray(f)
  known = mask > 127
  np.testing.assert_array_equal(result_image[known], photo[known])
  assert np.mean(result_image[~known] != photo[~known]) > 0.5
  summary = json.loads((out / 'metrics.json').read_text())
  assert summary['mask'] == str(tmp_path / 'mask.png')
  # The hole outside the model's square is refused before the search.
  mask[:, 1:5] = 0
  Image.fromarray(mask).save(tmp_path / 'outside.png')
  result = _run(f'--checkpoint={tiny_model_dir}', f'--images={photos}',
                f'--mask_file={tmp_path / "outside.png"}', '--iterations=2',
                f'--output_dir={tmp_path / "out2"}')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  assert 'outside the square' in result.stderr


def test_write_fullsize_with_a_mask_at_the_photo_size(tmp_path):
  photos = tmp_path / 'photos'
  photos.mkdir()
  Image.fromarray(_photo(53, 41, seed=10)).save(photos / 'a.png')
  Image.fromarray(_photo(30, 47, seed=11)).save(photos / 'b.png')
  mask = np.full((41, 53), 255, np.uint8)
  mask[15:25, 20:30] = 0
  Image.fromarray(mask).save(tmp_path / 'mask.png')
  source = own_photos.Photos(str(photos), 'center', str(tmp_path / 'mask.png'))
  with pytest.raises(InputError, match=r'53x41.*16x16.*30x47'):
    own_photos.photo_view_masks(source, ['a.png', 'b.png'], 16)
  views = own_photos.photo_view_masks(source, ['a.png'], 16)
  assert views.shape == (1, 16, 16, 1) and 0 < views.mean() < 1
  generated = np.zeros((1, 16, 16, 3), np.float32)
  written = own_photos.write_fullsize(str(tmp_path / 'out'), source,
                                      ['a.png'], generated, views)
  assert written == ['a_fullsize.png']
  with Image.open(tmp_path / 'out' / 'a_fullsize.png') as f:
    out = np.asarray(f)
  known = mask > 127
  np.testing.assert_array_equal(out[known], _photo(53, 41, seed=10)[known])
  # A model-size mask file goes through as it is.
  Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp_path / 'm16.png')
  assert own_photos.photo_view_masks(
      own_photos.Photos(str(photos), 'center', str(tmp_path / 'm16.png')),
      ['a.png', 'b.png'], 16) is None


def test_a_phone_photo_and_its_mask_are_used_upright(tmp_path):
  photos = tmp_path / 'photos'
  photos.mkdir()
  photo = np.zeros((47, 30, 3), np.uint8)  # portrait, as a viewer shows it
  photo[:, :15] = 255
  # Stored as a 47-wide, 30-high landscape image with EXIF orientation 6.
  (photos / 'phone.jpg').write_bytes(upright_and_rotated(photo, 'JPEG'))
  mask = np.full((47, 30), 255, np.uint8)  # drawn on the upright photo
  mask[18:28, 10:20] = 0
  Image.fromarray(mask).save(tmp_path / 'mask.png')  # saved without EXIF
  source = own_photos.Photos(str(photos), 'center', str(tmp_path / 'mask.png'))
  views = own_photos.photo_view_masks(source, ['phone.jpg'], 16)
  assert views.shape == (1, 16, 16, 1) and 0 < views.mean() < 1
  written = own_photos.write_fullsize(str(tmp_path / 'out'), source,
                                      ['phone.jpg'], np.zeros((1, 16, 16, 3)),
                                      views)
  with Image.open(tmp_path / 'out' / written[0]) as f:
    out = np.asarray(f, np.int16)
  assert out.shape == photo.shape
  known = mask > 127
  assert np.abs(out[known] - photo[known]).max() <= 32  # JPEG's blur only


def test_inpaint_refuses_a_mask_file_bomb_in_one_line(tiny_model_dir,
                                                      photo_folder, tmp_path):
  (tmp_path / 'bomb.png').write_bytes(png_claiming(20000, 20000))
  result = _run(f'--checkpoint={tiny_model_dir}', f'--images={photo_folder}',
                f'--mask_file={tmp_path / "bomb.png"}', '--iterations=2',
                f'--output_dir={tmp_path / "out"}')
  assert result.returncode == 2 and 'Traceback' not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error:') and 'bomb.png' in last
  assert '400,000,000 pixels' in last and 'resize the file' in last
  assert not (tmp_path / 'out').exists()

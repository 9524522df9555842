"""The web page's server (inpaint_jax/serve/), over HTTP, without a browser.

A server on a free port in a thread, with the tiny model saved as
`celeba16` and a few small test photos in a temporary data folder (and the
same model outside the models folder, as `outside/celeba16`). The server
under concurrent clients: tests/test_serve_load.py.
"""

import base64
import io
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import jax
import numpy as np
from PIL import Image
import pytest

from inpaint_jax import checkpoints
from inpaint_jax import encoder
from inpaint_jax import fullsize
from inpaint_jax.data import images as images_lib
from inpaint_jax.serve import app as app_lib
from inpaint_jax.serve import fields
from inpaint_jax.serve import handler
from inpaint_jax.serve import jobs
from inpaint_jax.serve import registry
from tests.conftest import png_claiming, truncated

PHOTO_SIZES = ((30, 40), (16, 16), (41, 23))  # (width, height) of test 0, 1, 2
PHOTOS = [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8)
          for i, (w, h) in enumerate(PHOTO_SIZES)]


def png(pixels) -> bytes:
  return fields.png_bytes(np.asarray(pixels, np.uint8))


def as_data_url(data: bytes) -> str:
  return 'data:image/png;base64,' + base64.b64encode(data).decode()


def read_png(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as image:
    return np.asarray(image)


def hole_mask(width, height, rows, cols) -> np.ndarray:
  """uint8 (H, W) mask: 255 = known, 0 in the hole rows x cols."""
  mask = np.full((height, width), 255, np.uint8)
  mask[rows[0]:rows[1], cols[0]:cols[1]] = 0
  return mask


def make_dirs(root, tiny_config, tiny_variables):
  """(models_dir with celeba16, data_dir with celeba/test/*.png, photos)
  under the pathlib folder `root`."""
  g_vars, d_vars = tiny_variables
  for where in ('models', 'outside'):
    checkpoints.save_model(
        str(root / where / 'celeba16'), tiny_config, g_vars, d_vars,
        metadata={'data': '../shared/data/celeba/train: a test model'})
  test_dir = root / 'data' / 'celeba' / 'test'
  test_dir.mkdir(parents=True)
  for i, photo in enumerate(PHOTOS):
    Image.fromarray(photo).save(test_dir / f'{i:03d}.png')
  (test_dir / 'labels.csv').write_text('not an image\n')
  return str(root / 'models'), str(root / 'data'), PHOTOS


@pytest.fixture(scope='module')
def dirs(tmp_path_factory, tiny_config, tiny_variables):
  """make_dirs in a temporary folder."""
  return make_dirs(tmp_path_factory.mktemp('serve'), tiny_config,
                   tiny_variables)


@pytest.fixture(scope='module')
def url(dirs):
  models_dir, data_dir, _ = dirs
  with handler.running(app_lib.App(models_dir, data_dir)) as base:
    yield base


def call(url, path, body=None, content_type='application/json', raw=False,
         method=None):
  """(status, JSON or bytes) of GET url+path, or POST of `body` (JSON)."""
  data = None
  headers = {}
  if body is not None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers['Content-Type'] = content_type
  request = urllib.request.Request(url + path, data=data, headers=headers,
                                   method=method)
  try:
    with urllib.request.urlopen(request, timeout=60) as response:
      status, payload = response.status, response.read()
  except urllib.error.HTTPError as e:
    status, payload = e.code, e.read()
  return status, payload if raw else json.loads(payload)


def send_raw(url, data: bytes, close_early=False):
  """(status, headers text, body) of raw request bytes sent to the server;
  close_early: stop sending after `data` (a body shorter than said)."""
  host, port = url.rsplit('/', 1)[1].split(':')
  with socket.create_connection((host, int(port)), timeout=60) as s:
    s.sendall(data)
    if close_early:
      s.shutdown(socket.SHUT_WR)
    answer = b''
    while chunk := s.recv(65536):
      answer += chunk
  head, _, body = answer.partition(b'\r\n\r\n')
  return int(head.split()[1]), head.decode('latin-1'), body


def post_raw(url, body: bytes, length=None, path='/api/inpaint', **kwargs):
  """send_raw of a POST with Content-Length `length` (None: none sent)."""
  lines = [f'POST {path} HTTP/1.1', 'Host: x',
           'Content-Type: application/json']
  if length is not None:
    lines.append(f'Content-Length: {length}')
  head = ('\r\n'.join(lines) + '\r\n\r\n').encode()
  return send_raw(url, head + body, **kwargs)


def assert_one_line_error(status, body, expected_status=None):
  """A refusal: 4xx (or 503) with {"error": one line}."""
  assert 400 <= status < 500 or status == 503, (status, body)
  if expected_status is not None:
    assert status == expected_status, (status, body)
  answer = json.loads(body)
  assert set(answer) == {'error'} and answer['error'], answer
  assert '\n' not in answer['error'] and b'\n' not in body.strip(), body


def wait_for(url, job_id, timeout=120.0):
  """The job's JSON once it is no longer queued or running."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    status, job = call(url, f'/api/jobs/{job_id}')
    assert status == 200, job
    if job['status'] not in ('queued', 'running'):
      return job
    time.sleep(0.05)
  raise AssertionError(f'job {job_id} did not finish in {timeout} s: {job}')


def request(photo, mask=None, **fields):
  out = dict(model='celeba16', image=as_data_url(png(photo)), iterations=4,
             restarts=1, lam=0.003)
  if mask is not None:
    out['mask'] = as_data_url(png(mask))
  out.update(fields)
  return out


def test_page_and_its_files_load_nothing_from_outside(url):
  status, page = call(url, '/', raw=True)
  assert status == 200 and b'app.js' in page and b'style.css' in page
  for name in ('index.html', 'app.js', 'style.css'):
    status, text = call(url, '/' + name, raw=True)
    assert status == 200 and text == handler.web_file(name)
    assert b'http://' not in text and b'https://' not in text
    assert b'//fonts.' not in text and b'cdn' not in text.lower()
  assert call(url, '/nothing_here')[0] == 404


def test_models_lists_the_model_with_its_data_set(url):
  status, listing = call(url, '/api/models')
  assert status == 200
  [model] = listing['models']
  assert model['name'] == 'celeba16' and model['dataset'] == 'celeba'
  assert model['resolution'] == 16 and model['crop'] == 'celeba'
  assert model['test_images'] == 3 and model['data_note'] is None
  assert model['encoder'] is False


def test_a_job_can_start_from_the_models_encoder(tmp_path, tiny_config,
                                                 tiny_variables):
  models_dir = tmp_path / 'models'
  model_dir = str(models_dir / 'celeba16')
  checkpoints.save_model(model_dir, tiny_config, *tiny_variables)
  config = encoder.EncoderConfig(width=2)
  encoder.save(model_dir + '_encoder', tiny_config, config,
               encoder.init_variables(tiny_config, config,
                                      jax.random.PRNGKey(0)),
               encoder.generator_record(model_dir))
  with handler.running(app_lib.App(str(models_dir), str(tmp_path))) as base:
    status, listing = call(base, '/api/models')
    assert [m['encoder'] for m in listing['models']] == [True]
    photo = PHOTOS[1]
    status, job = call(base, '/api/inpaint', request(
        photo, mask_kind='center', crop='center', encoder=True))
    assert status == 202, job
    job = wait_for(base, job['id'])
    assert job['status'] == 'done' and job['settings']['encoder'], job


def test_a_job_can_refine_its_search_and_a_bad_choice_is_refused(
    tmp_path, tiny_config, tiny_variables):
  models_dir = tmp_path / 'models'
  checkpoints.save_model(str(models_dir / 'celeba16'), tiny_config,
                         *tiny_variables)
  with handler.running(app_lib.App(str(models_dir), str(tmp_path))) as base:
    photo = PHOTOS[1]
    status, job = call(base, '/api/inpaint', request(
        photo, mask_kind='center', crop='center', iterations=4,
        refine='nosuch'))
    assert status == 400 and 'refine' in job['error'], job
    status, job = call(base, '/api/inpaint', request(
        photo, mask_kind='center', crop='center', iterations=4,
        refine='ilo_finetune'))
    assert status == 202, job
    job = wait_for(base, job['id'])
    assert job['status'] == 'done' and job['settings']['refine'] == (
        'ilo_finetune'), job


def test_a_model_directory_path_works_only_when_allowed(dirs, tmp_path):
  models_dir, data_dir, _ = dirs
  outside = os.path.join(os.path.dirname(models_dir), 'outside', 'celeba16')
  with handler.running(app_lib.App(models_dir, data_dir,
                                   allow_models_outside=True)) as base:
    for path in (outside, os.path.join(models_dir, 'celeba16')):
      status, model = call(base, '/api/model?model=' + path)
      assert status == 200 and model['resolution'] == 16, model
    assert model['path'] == 'celeba16'  # What the page sends back.
  # By default a model is named relative to models_dir, nested or not.
  nested = tmp_path / 'models' / 'mine' / 'celeba16'
  shutil.copytree(os.path.join(models_dir, 'celeba16'), nested)
  with handler.running(app_lib.App(str(tmp_path / 'models'))) as base:
    status, model = call(base, '/api/model?model=mine/celeba16')
    assert status == 200 and model['path'] == 'mine/celeba16', model
    status, answer = call(base, '/api/model?model=' + str(nested))
    assert status == 400 and 'outside the models folder' in answer['error']


def test_test_image_is_the_photo_at_full_size(url, dirs):
  status, image = call(url, '/api/test_image?model=celeba16&index=2')
  assert status == 200
  assert (image['width'], image['height']) == PHOTO_SIZES[2]
  assert image['name'] == '002.png' and image['count'] == 3
  pixels = read_png(base64.b64decode(image['image'].split(',', 1)[1]))
  np.testing.assert_array_equal(pixels, dirs[2][2])


def test_view_gives_the_box_and_the_mask_of_a_kind(url):
  status, view = call(
      url, '/api/view?model=celeba16&width=30&height=40&crop=center'
      '&kind=center')
  assert status == 200 and view['box'] == [0, 5, 30]
  known = read_png(base64.b64decode(view['mask'].split(',', 1)[1])) > 127
  assert known.shape == (40, 30)
  assert not known[20, 15] and known[0, 0] and known[39, 29]


def test_drawn_mask_job_changes_only_the_hole(url, dirs):
  photo = dirs[2][0]  # 30 x 40
  mask = hole_mask(30, 40, (12, 25), (8, 20))
  status, job = call(url, '/api/inpaint', request(photo, mask, crop='center'))
  assert status == 202, job
  job = wait_for(url, job['id'])
  assert job['status'] == 'done', job
  assert job['step'] == job['total'] == 4 and np.isfinite(job['loss'])
  assert job['preview'].startswith('data:image/png;base64,')
  results = {name: read_png(call(url, info['url'], raw=True)[1])
             for name, info in job['results'].items()}
  assert set(results) == set(jobs.RESULT_NAMES)
  known = mask > 127
  result = results['result']
  assert result.shape == photo.shape
  np.testing.assert_array_equal(result[known], photo[known])
  assert np.any(result[~known] != photo[~known])
  np.testing.assert_array_equal(results['mask'] > 127, known)
  # The 16x16 view: blended equals the view at its known pixels.
  view, box = fullsize.model_view(photo, 'center', 16)
  view_known = fullsize.view_mask(known, box, 16)[..., 0] > 0.5
  for name in ('masked', 'generated', 'blended'):
    assert results[name].shape == (16, 16, 3)
  np.testing.assert_array_equal(results['blended'][view_known],
                                images_lib.to_uint8(view)[view_known])
  assert np.all(results['masked'][~view_known] == 0)


def test_mask_kind_job_uses_the_kind_scaled_up(url, dirs):
  photo = dirs[2][1]  # 16 x 16, the model's size
  status, job = call(url, '/api/inpaint',
                     request(photo, mask_kind='center', crop='center'))
  assert status == 202, job
  job = wait_for(url, job['id'])
  assert job['status'] == 'done', job
  mask = read_png(call(url, job['results']['mask']['url'], raw=True)[1])
  assert (mask == 0).sum() == 8 * 8 and mask[4:12, 4:12].max() == 0
  result = read_png(call(url, job['results']['result']['url'], raw=True)[1])
  np.testing.assert_array_equal(result[mask > 127], photo[mask > 127])


def test_cancel_stops_a_job(url, dirs):
  photo = dirs[2][1]
  status, job = call(url, '/api/inpaint',
                     request(photo, hole_mask(16, 16, (4, 9), (4, 9)),
                             iterations=5000))
  assert status == 202
  assert call(url, f"/api/jobs/{job['id']}/cancel", {})[0] == 200
  assert wait_for(url, job['id'])['status'] == 'cancelled'


def _bad_requests():
  photo = PHOTOS[0]  # 30 x 40: the centre crop's box is rows 5..34
  ok = hole_mask(30, 40, (12, 25), (8, 20))
  yield 'unknown model', request(photo, ok, model='nope'), 'Unknown model'
  yield 'no model', request(photo, ok, model=''), 'No model chosen'
  yield 'no image', request(photo, ok, image=None), 'No image'
  yield 'bad image', request(photo, ok, image=as_data_url(b'not an image')), (
      'cannot be read as an image')
  bomb = as_data_url(png_claiming(20000, 20000))
  yield 'bomb image', request(photo, ok, image=bomb), (
      '400,000,000 pixels, more than the 25,000,000-pixel limit')
  yield 'bomb mask', dict(request(photo), mask=bomb), (
      '25,000,000-pixel limit')
  yield 'truncated image', request(
      photo, ok, image=as_data_url(truncated(png(photo)))), (
          'The uploaded photo ("image") cannot be read as an image: it is'
          ' truncated or damaged')
  yield 'truncated mask', dict(
      request(photo), mask=as_data_url(truncated(png(ok)))), (
      'The uploaded mask ("mask") cannot be read as an image: it is truncated')
  yield 'bad base64', request(photo, ok, image='data:image/png;base64,@@'), (
      'not valid base64')
  yield 'no mask', request(photo), 'No mask'
  yield 'empty mask', request(photo, np.full((40, 30), 255)), 'no hole'
  yield 'full mask', request(photo, np.zeros((40, 30))), 'whole photo'
  yield 'mask size', request(photo, np.zeros((10, 10))), 'is 10x10 pixels'
  yield 'hole outside the view', request(
      photo, hole_mask(30, 40, (0, 3), (0, 3))), 'outside the square'
  yield 'unknown kind', request(photo, mask_kind='round'), 'Unknown mask kind'
  yield 'kind and mask', request(photo, ok, mask_kind='center'), 'not both'
  yield 'bad crop', request(photo, ok, crop='left'), 'crop'
  for value in ('abc', 0, 5001, 2.5, None, True):
    yield f'iterations={value!r}', request(photo, ok, iterations=value), (
        'iterations=')
  for value in (0, 17, 'x'):
    yield f'restarts={value!r}', request(photo, ok, restarts=value), (
        'restarts=')
  for value in (-1, 'nan', 'inf', 'x'):
    yield f'lam={value!r}', request(photo, ok, lam=value), 'lambda='
  yield 'encoder not a bool', request(photo, ok, encoder='yes'), (
      'must be true or false')
  yield 'no encoder', request(photo, ok, encoder=True), 'has no z encoder'


BAD_REQUESTS = list(_bad_requests())


@pytest.mark.parametrize('what, body, expected', BAD_REQUESTS,
                         ids=[case[0] for case in BAD_REQUESTS])
def test_bad_requests_are_400_with_one_clear_line(url, what, body, expected):
  status, answer = call(url, '/api/inpaint', body)
  assert status == 400, (what, answer)
  assert expected in answer['error'], (what, answer)
  assert '\n' not in answer['error']


def test_other_bad_requests(url):
  assert call(url, '/api/inpaint', b'{not json')[0] == 400
  status, answer = call(url, '/api/inpaint', b'{}', content_type='text/plain')
  assert status == 400 and 'JSON' in answer['error']
  status, answer = call(url, '/api/test_image?model=celeba16&index=3')
  assert status == 400 and 'from 0 to 2' in answer['error']
  status, answer = call(url, '/api/model?model=no/such/dir')
  assert status == 400 and 'Unknown model' in answer['error']
  assert call(url, '/api/jobs/999')[0] == 404
  status, answer = call(url, '/api/view?model=celeba16&width=0&height=5'
                        '&crop=center')
  assert status == 400 and 'width=' in answer['error']


def test_missing_data_is_said_and_the_server_stops_cleanly(dirs, tmp_path):
  ours = lambda: {t for t in threading.enumerate()
                  if t.name.startswith('inpaint-')}
  before = ours()
  with handler.running(app_lib.App(dirs[0], str(tmp_path))) as base:
    port = int(base.rsplit(':', 1)[1])
    [model] = call(base, '/api/models')[1]['models']
    assert model['test_images'] == 0 and '--data_dir' in model['data_note']
    status, answer = call(base, '/api/test_image?model=celeba16&index=0')
    assert status == 400 and '--data_dir' in answer['error']
  assert ours() == before  # The new server's and runner's threads ended.
  with socket.socket() as s:
    assert s.connect_ex(('127.0.0.1', port)) != 0


def test_the_default_models_folder_is_the_projects():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  assert registry.default_models_dir() == os.path.join(root, 'models')

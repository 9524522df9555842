"""The web server as a service others may reach (issue #31): unguessable job
ids, ended jobs forgotten, request size and rate limits, model paths kept
inside --models_dir, every refusal one line of JSON.

Loopback only (127.0.0.1, a free port). Helpers and the tiny model's folders
come from tests/test_serve.py; concurrent clients: tests/test_serve_load.py.
"""

import json
import os
import re
import urllib.parse

import pytest

from inpaint_jax.serve import app as app_lib
from inpaint_jax.serve import handler
from inpaint_jax.serve import jobs
from tests.test_serve import (PHOTOS, assert_one_line_error, call, hole_mask,
                              make_dirs, post_raw, request, send_raw,
                              wait_for)

LIMITS = handler.Limits(max_body_bytes=200_000, requests_per_second=0)


@pytest.fixture(scope='module')
def dirs(tmp_path_factory, tiny_config, tiny_variables):
  return make_dirs(tmp_path_factory.mktemp('safety'), tiny_config,
                   tiny_variables)


@pytest.fixture(scope='module')
def url(dirs):
  models_dir, data_dir, _ = dirs
  with handler.running(app_lib.App(models_dir, data_dir), limits=LIMITS
                       ) as base:
    yield base


class FakeClock:
  """A clock the test moves by hand."""

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def quick_job(**fields):
  """A valid request for a 2-step search on the 16 x 16 photo."""
  return request(PHOTOS[1], mask_kind='center', crop='center', iterations=2,
                 **fields)


def test_job_ids_are_unguessable_and_only_they_reach_a_job(url):
  ids = {jobs.new_id() for _ in range(100)}
  assert len(ids) == 100
  for job_id in ids:  # URL-safe base64 of >= 96 random bits.
    assert re.fullmatch(r'[A-Za-z0-9_-]{16,64}', job_id), job_id
  status, job = call(url, '/api/inpaint', quick_job())
  assert status == 202, job
  job_id = job['id']
  assert len(job_id) >= 22 and not job_id.isdigit(), job_id
  done = wait_for(url, job_id)
  assert done['status'] == 'done'
  assert call(url, done['results']['result']['url'], raw=True)[0] == 200
  # Nothing but the exact id reads it (nor lists it).
  for other in ('1', '0', '2', job_id[:-1], job_id + 'A', job_id.lower(),
                job_id.upper(), jobs.new_id()):
    if other == job_id:
      continue
    for path in (f'/api/jobs/{other}', f'/api/jobs/{other}/result.png'):
      status, _, body = send_raw(url, f'GET {path} HTTP/1.0\r\n\r\n'.encode())
      assert_one_line_error(status, body, 404)
  for path in ('/api/jobs', '/api/jobs/', '/api/jobs/*'):
    assert call(url, path)[0] == 404


def test_ended_jobs_are_forgotten_after_keep_seconds(dirs):
  models_dir, data_dir, _ = dirs
  clock = FakeClock()
  app = app_lib.App(models_dir, data_dir, keep_seconds=60, clock=clock)
  with handler.running(app, limits=LIMITS) as base:
    status, job = call(base, '/api/inpaint', quick_job())
    assert status == 202, job
    done = wait_for(base, job['id'])
    assert done['status'] == 'done'
    status, slow = call(base, '/api/inpaint', request(
        PHOTOS[1], hole_mask(16, 16, (4, 9), (4, 9)), iterations=5000))
    assert call(base, f"/api/jobs/{slow['id']}/cancel", {})[0] == 200
    assert wait_for(base, slow['id'])['status'] == 'cancelled'
    kept = app.jobs._jobs  # pylint: disable=protected-access
    assert all(j.photo is None and j.view is None for j in kept.values())
    clock.now += 59
    assert call(base, f"/api/jobs/{job['id']}")[0] == 200
    assert call(base, f"/api/jobs/{slow['id']}")[0] == 200
    clock.now += 2  # Both ended more than 60 s ago now.
    for path in (f"/api/jobs/{job['id']}", done['results']['result']['url'],
                 f"/api/jobs/{slow['id']}"):
      status, answer = call(base, path)
      assert status == 404 and 'No such job' in answer['error'], answer
    assert not kept  # Their photos and results are gone from memory.


def test_cancelling_a_queued_job_ends_it_at_once(url):
  photo, mask = PHOTOS[1], hole_mask(16, 16, (4, 9), (4, 9))
  running = call(url, '/api/inpaint', request(photo, mask,
                                              iterations=5000))[1]
  queued = call(url, '/api/inpaint', request(photo, mask, iterations=5000))[1]
  status, answer = call(url, f"/api/jobs/{queued['id']}/cancel", {})
  assert status == 200 and answer['status'] == 'cancelled', answer
  call(url, f"/api/jobs/{running['id']}/cancel", {})
  assert wait_for(url, running['id'])['status'] == 'cancelled'
  assert wait_for(url, queued['id'])['status'] == 'cancelled'


def test_a_body_over_the_limit_is_refused_before_it_is_read(url):
  status, _, body = post_raw(url, b'', length=LIMITS.max_body_bytes + 1)
  assert_one_line_error(status, body, 413)
  assert f'{LIMITS.max_body_bytes:,}' in json.loads(body)['error']
  status, _, body = post_raw(url, b'', length=10**30)
  assert_one_line_error(status, body, 413)
  status, _, body = post_raw(url, b'{}', length=None)  # No Content-Length.
  assert_one_line_error(status, body, 411)
  for length in ('abc', '-5', '1e3', ''):
    status, _, body = post_raw(url, b'{}', length=length)
    assert_one_line_error(status, body, 400)


def test_a_truncated_body_is_refused_in_one_line(url):
  status, _, body = post_raw(url, b'{"model": "cel', length=1000,
                             close_early=True)
  assert_one_line_error(status, body, 400)
  assert 'ended after 14 of its 1,000 bytes' in json.loads(body)['error']


BAD_BODIES = {
    'NaN': b'{"model": "celeba16", "iterations": NaN}',
    'Infinity': b'{"model": "celeba16", "lam": Infinity}',
    '-Infinity': b'{"model": "celeba16", "lam": -Infinity}',
    '1e999': b'{"model": "celeba16", "iterations": 1e999}',
    'int past 1e308': b'{"model": "celeba16", "seed": ' + b'9' * 400 + b'}',
    '5000 digits': b'{"model": "celeba16", "iterations": ' + b'9' * 5000 +
                   b'}',
    'deep nesting': b'[' * 100_000 + b']' * 100_000,
    'not UTF-8': b'\xff\xfe{}', 'empty': b'', 'null': b'null',
    'a string': b'"text"', 'a list': b'[1, 2]',
    'model a list': b'{"model": ["celeba16"]}',
    'image a number': b'{"model": "celeba16", "image": 5}',
    'restarts an object': b'{"model": "celeba16", "restarts": {"a": 1}}',
}


@pytest.mark.parametrize('body', BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_numbers_and_types_are_400_in_one_line(url, body):
  status, _, answer = post_raw(url, body, length=len(body))
  assert_one_line_error(status, answer, 400)


def test_every_refusal_of_http_itself_is_one_line_of_json(url):
  for method in ('PUT', 'DELETE', 'PATCH', 'OPTIONS'):
    status, _, body = send_raw(url, f'{method} / HTTP/1.0\r\n\r\n'.encode())
    assert_one_line_error(status, body, 405)
  # The last: a request line over http.server's 65536 bytes (HTTP 414).
  for line in (b'GARBAGE\r\n\r\n', b'GET / HTTP/9.9\r\n\r\n',
               b'GET /' + b'a' * (65537 - 5)):
    status, _, body = send_raw(url, line)
    assert_one_line_error(status, body)
  status, head, body = send_raw(url, b'HEAD /api/models HTTP/1.0\r\n\r\n')
  assert status == 200 and body == b''


def test_the_rate_limit_holds_per_client():
  clock = FakeClock()
  limiter = handler.RateLimiter(rate=2, burst=3, clock=clock)
  assert [limiter.take('a') for _ in range(3)] == [0, 0, 0]
  assert limiter.take('a') == pytest.approx(0.5)
  assert limiter.take('b') == 0  # Another address has its own bucket.
  clock.now += 0.5
  assert limiter.take('a') == 0 and limiter.take('a') > 0


def test_too_many_requests_are_429_with_retry_after(dirs):
  limits = handler.Limits(requests_per_second=0.001, burst=5)
  with handler.running(app_lib.App(*dirs[:2]), limits=limits) as base:
    answers = [send_raw(base, b'GET /api/models HTTP/1.0\r\n\r\n')
               for _ in range(8)]
    assert [a[0] for a in answers] == [200] * 5 + [429] * 3
    for status, head, body in answers[5:]:
      assert_one_line_error(status, body, 429)
      retry = re.search(r'(?im)^Retry-After: (\d+)\r?$', head)
      assert retry and int(retry.group(1)) >= 1, head
    # A POST refused so still gets its answer (its body is read first).
    status, _, body = post_raw(base, b'{}', length=2)
    assert_one_line_error(status, body, 429)


def _escaping_models(models_dir):
  outside = os.path.join(os.path.dirname(models_dir), 'outside', 'celeba16')
  yield '../outside/celeba16'
  yield '..%2Foutside%2Fceleba16'
  yield '%2e%2e/outside/celeba16'
  yield 'celeba16/../../outside/celeba16'
  yield '..\\outside\\celeba16'
  yield outside
  yield os.path.join(models_dir, 'celeba16')  # Absolute: not taken either.
  yield '~/celeba16'
  yield 'link_out'  # A symlink in models_dir to a model outside it.
  yield 'link_out/../celeba16'
  yield '.'
  yield 'celeba16\x00'


def test_no_model_outside_the_models_folder_is_reachable(dirs):
  models_dir, data_dir, _ = dirs
  outside = os.path.join(os.path.dirname(models_dir), 'outside', 'celeba16')
  link = os.path.join(models_dir, 'link_out')
  os.symlink(outside, link)
  try:
    with handler.running(app_lib.App(models_dir, data_dir),
                         limits=LIMITS) as base:
      listing = call(base, '/api/models')[1]['models']
      assert [m['name'] for m in listing] == ['celeba16']  # Not the link.
      for model in _escaping_models(models_dir):
        quoted = urllib.parse.quote(model, safe='%/')
        for path in (f'/api/model?model={quoted}',
                     f'/api/test_image?model={quoted}&index=0',
                     f'/api/view?model={quoted}&width=9&height=9'):
          status, _, body = send_raw(
              base, f'GET {path} HTTP/1.0\r\n\r\n'.encode())
          assert_one_line_error(status, body, 400)
        status, answer = call(base, '/api/inpaint', quick_job(model=model))
        assert status == 400, (model, answer)
        assert re.search('outside the models folder|Unknown model|control'
                         ' characters', answer['error']), (model, answer)
  finally:
    os.remove(link)

"""The web server under concurrent clients (issue #31), over loopback only.

8 client threads send 25 requests each, mixed: valid jobs (2 search steps),
job polls and results, malformed JSON, wrong types, NaN / infinite numbers,
bodies over the limit or shorter than their Content-Length, traversal-like
model paths and job ids, unknown ids, unknown methods. Every answer must be
200/202 for a valid request and otherwise a 4xx (or 503: busy) with one line
of JSON; afterwards the server still answers, and every accepted job ends
(done or cancelled). Bounded: 200 requests, each with a socket timeout, and
a deadline for the whole run.
"""

import itertools
import json
import random
import threading
import time

import pytest

from inpaint_jax.serve import app as app_lib
from inpaint_jax.serve import handler
from inpaint_jax.serve import jobs
from tests.test_serve import (PHOTOS, assert_one_line_error, call,
                              make_dirs, post_raw, request, send_raw)

THREADS, REQUESTS = 8, 25
DEADLINE_S = 240  # For all of it: the requests, then the jobs' ends.
LIMITS = handler.Limits(max_body_bytes=100_000, requests_per_second=0)


def valid_job():
  return json.dumps(request(PHOTOS[1], mask_kind='center', crop='center',
                            iterations=2)).encode()


def _cases():
  """(name, send(url, job_ids) -> (status, body), allowed statuses)."""
  get = lambda path: lambda url, ids: send_raw(
      url, f'GET {path} HTTP/1.0\r\n\r\n'.encode())[::2]
  post = lambda body, length=None, **kw: lambda url, ids: post_raw(
      url, body, len(body) if length is None else length, **kw)[::2]
  some_id = lambda ids: ids[-1] if ids else jobs.new_id()
  yield 'valid job', post(valid_job()), {202, 503}
  yield 'poll a job', lambda url, ids: send_raw(
      url, f'GET /api/jobs/{some_id(ids)} HTTP/1.0\r\n\r\n'.encode()
  )[::2], {200, 404}
  yield 'models', get('/api/models'), {200}
  yield 'malformed JSON', post(b'{"model": celeba16'), {400}
  yield 'NaN', post(b'{"model": "celeba16", "lam": NaN}'), {400}
  yield 'Infinity', post(b'{"model": "celeba16", "iterations": Infinity}'), {
      400}
  yield '1e999', post(b'{"model": "celeba16", "lam": 1e999}'), {400}
  yield 'wrong types', post(json.dumps(dict(
      model='celeba16', image=[1], iterations='many', encoder='no')
                                       ).encode()), {400}
  yield 'not an object', post(b'[1, 2, 3]'), {400}
  yield 'huge body', post(b'', length=10**9), {413}
  yield 'truncated body', post(b'{"model": "celeba16", "ima', length=5000,
                               close_early=True), {400}
  yield 'bad length', post(b'{}', length='x'), {400}
  yield 'traversal model', get('/api/model?model=../outside/celeba16'), {400}
  yield 'encoded traversal', get(
      '/api/model?model=%2e%2e%2foutside%2fceleba16'), {400}
  yield 'absolute model', post(json.dumps(dict(
      model='/etc', image='x', mask_kind='center')).encode()), {400}
  yield 'traversal job', get('/api/jobs/../models'), {404}
  yield 'encoded job', get('/api/jobs/%2e%2e%2fmodels'), {404}
  yield 'job file traversal', lambda url, ids: send_raw(
      url, f'GET /api/jobs/{some_id(ids)}/../../etc/passwd.png HTTP/1.0'
      '\r\n\r\n'.encode())[::2], {404}
  yield 'unknown id', get(f'/api/jobs/{jobs.new_id()}'), {404}
  yield 'sequential id', get('/api/jobs/1'), {404}
  yield 'cancel unknown', post(b'{}', path=f'/api/jobs/{jobs.new_id()}/cancel'
                               ), {404}
  yield 'bad method', lambda url, ids: send_raw(
      url, b'DELETE /api/models HTTP/1.0\r\n\r\n')[::2], {405}


CASES = list(_cases())


@pytest.fixture(scope='module')
def served(tmp_path_factory, tiny_config, tiny_variables):
  models_dir, data_dir, _ = make_dirs(tmp_path_factory.mktemp('load'),
                                      tiny_config, tiny_variables)
  app = app_lib.App(models_dir, data_dir, kept_jobs=THREADS * REQUESTS)
  with handler.running(app, limits=LIMITS) as base:
    yield base


@pytest.mark.slow
def test_concurrent_clients_get_one_line_answers_and_jobs_end(served):
  url, deadline = served, time.time() + DEADLINE_S
  accepted, answers, failures = [], [], []
  lock = threading.Lock()

  def client(seed):
    order = random.Random(seed)
    cases = list(itertools.islice(itertools.cycle(CASES), REQUESTS))
    order.shuffle(cases)
    for name, send, allowed in cases:
      if time.time() > deadline:
        failures.append(f'{name}: past the deadline')
        return
      try:
        with lock:
          ids = list(accepted)
        status, body = send(url, ids)
        assert status in allowed, (status, body[:200])
        if status >= 400:
          assert_one_line_error(status, body)
        elif name == 'valid job':
          with lock:
            accepted.append(json.loads(body)['id'])
        with lock:
          answers.append(name)
      except Exception as e:  # pylint: disable=broad-except
        failures.append(f'{name}: {e!r}')

  threads = [threading.Thread(target=client, args=(i,), daemon=True)
             for i in range(THREADS)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join(max(1.0, deadline - time.time()))
  assert not any(thread.is_alive() for thread in threads), 'clients hung'
  assert not failures, failures[:10]
  assert len(answers) == THREADS * REQUESTS
  assert accepted, 'no valid job was accepted'
  # The server still answers, and takes a valid job once the queue allows.
  assert call(url, '/api/models')[0] == 200
  ended = {}
  while len(ended) < len(accepted) and time.time() < deadline:
    for job_id in accepted:
      status, job = call(url, f'/api/jobs/{job_id}')
      assert status == 200, job
      if job['status'] not in ('queued', 'running'):
        ended[job_id] = job['status']
    time.sleep(0.2)
  assert set(ended) == set(accepted), 'jobs did not end in time'
  assert set(ended.values()) <= {'done', 'cancelled'}, ended
  status, job = call(url, '/api/inpaint', json.loads(valid_job()))
  assert status == 202, job

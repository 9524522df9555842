"""The HTTP side: the page's files and the JSON API, routed to an `App`.

Served with Python's standard library (`http.server.ThreadingHTTPServer`):

  GET  /                           the page (web/index.html, app.js, style.css)
  GET  /api/models                 the models under --models_dir
  GET  /api/model?model=M          one model (a name or a directory path)
  GET  /api/test_image?model=M&index=I
                                   test image I of M's data set (full size)
  GET  /api/view?model=M&width=W&height=H&crop=C[&kind=K&seed=S]
                                   the square the model sees (box) and, with
                                   a mask kind, that mask at W x H
  POST /api/inpaint                start a job (JSON body, see `App.submit`)
  GET  /api/jobs/<id>              its status, progress, preview and results
  POST /api/jobs/<id>/cancel       stop it at the next progress report
  GET  /api/jobs/<id>/<name>.png   a result image

Every answer but the page's files is JSON; an error is {"error": <one
line>}, which the page shows. Bad requests (an unreadable image, an empty or
full mask, an unknown model or one outside --models_dir, settings out of
range, NaN or infinite numbers, malformed JSON) raise `errors.InputError`:
HTTP 400; `jobs.NotFound`: 404; `jobs.Busy`: 503; a POST body without a
Content-Length: 411, larger than `Limits.max_body_bytes`: 413 (refused before
it is read), shorter than its Content-Length: 400; more requests from one
client address than `Limits` allows: 429 with Retry-After; an unknown method
or malformed request line: 405 / 400; anything else: 500.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http
import http.server
import importlib.resources
import json
import math
import os
import re
import sys
import threading
import time
from typing import Any, Callable, Iterator
import urllib.parse

from absl import logging

from inpaint_jax.errors import InputError
from inpaint_jax.serve.app import App
from inpaint_jax.serve.jobs import Busy, ID_PATTERN, NotFound

MAX_BODY_BYTES = 64 * 2**20  # A POST body's limit (a large photo, base64).
REQUESTS_PER_SECOND = 20.0  # Per client address, on average ...
BURST = 100  # ... and at once (the page polls 4 times a second).
READ_TIMEOUT_SECONDS = 60  # A client silent for this long is dropped.
_DRAINED_BYTES = 2**20  # An unread body up to this is read before answering.
_STATIC = {'/': 'index.html', '/index.html': 'index.html',
           '/app.js': 'app.js', '/style.css': 'style.css'}
_CONTENT_TYPES = {'.html': 'text/html; charset=utf-8',
                  '.js': 'text/javascript; charset=utf-8',
                  '.css': 'text/css; charset=utf-8'}


@dataclasses.dataclass(frozen=True)
class Limits:
  """What the server takes from its clients.

  max_body_bytes: the largest POST body; requests_per_second and burst: a
  token bucket per client address (`RateLimiter`; requests_per_second <= 0:
  no limit).
  """
  max_body_bytes: int = MAX_BODY_BYTES
  requests_per_second: float = REQUESTS_PER_SECOND
  burst: int = BURST


class RateLimiter:
  """A token bucket per client: `rate` requests a second, `burst` at once.

  Thread-safe; remembers at most MAX_CLIENTS clients (idle ones, whose
  bucket is full again, are forgotten first).
  """

  MAX_CLIENTS = 10_000

  def __init__(self, rate: float, burst: int,
               clock: Callable[[], float] = time.monotonic):
    self.rate, self.burst, self._clock = rate, max(1, burst), clock
    self._buckets: dict[str, tuple[float, float]] = {}  # (tokens, time)
    self._lock = threading.Lock()

  def take(self, client: str) -> float:
    """0 if `client` may make a request now (it is counted), else the
    seconds until it may."""
    if self.rate <= 0:
      return 0.0
    with self._lock:
      now = self._clock()
      tokens, then = self._buckets.get(client, (self.burst, now))
      tokens = min(self.burst, tokens + (now - then) * self.rate)
      if client not in self._buckets and (
          len(self._buckets) >= self.MAX_CLIENTS):
        self._forget(now)
      wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
      self._buckets[client] = (tokens - 1 if tokens >= 1 else tokens, now)
      return wait

  def _forget(self, now: float) -> None:
    full = now - self.burst / self.rate
    self._buckets = {k: v for k, v in self._buckets.items() if v[1] > full}
    if len(self._buckets) >= self.MAX_CLIENTS:
      self._buckets.clear()


class _Refused(Exception):
  """A request refused with an HTTP status other than 400 (one line)."""

  def __init__(self, status: int, message: str, headers=()):
    super().__init__(message)
    self.status, self.headers = status, dict(headers)


def web_file(name: str) -> bytes:
  """The bytes of one of the page's files (package data `serve/web/`)."""
  return (importlib.resources.files('inpaint_jax.serve') / 'web' / name
          ).read_bytes()


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes the page's files and the JSON API to `self.server.app` (App)."""

  server_version = 'inpaint_jax'
  timeout = READ_TIMEOUT_SECONDS  # Of each read: a stalled client is dropped.

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    """Request lines go to the debug log, not stderr (the page polls)."""
    logging.debug('%s %s', self.address_string(), format % args)

  def do_GET(self):  # pylint: disable=invalid-name
    """Serves the page's files and the GET routes of the API."""
    self._respond(self._get)

  def do_HEAD(self):  # pylint: disable=invalid-name
    """GET without the body."""
    self._respond(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    """Serves the POST routes of the API (JSON bodies)."""
    self._respond(self._post)

  def send_error(self, code, message=None, explain=None):
    """http.server's own refusals (a malformed request line or headers, an
    unknown method) as one line of JSON, like the API's."""
    del explain
    if code == http.HTTPStatus.NOT_IMPLEMENTED:
      code, message = 405, (f'Method {self.command} is not allowed; use GET'
                            ' or POST.')
    elif code >= 500:  # E.g. an unknown HTTP version: the client's fault.
      code = 400
    message = ' '.join(str(message or http.HTTPStatus(code).phrase).split())
    self.request_version = 'HTTP/1.0'  # Not 0.9: send the status line.
    self.close_connection = True
    self._send(*_json({'error': message}, code))

  def _get(self, path: str, query: dict[str, str]):
    app = self.server.app
    if path in _STATIC:
      name = _STATIC[path]
      return 200, _CONTENT_TYPES[os.path.splitext(name)[1]], web_file(name)
    if path == '/api/models':
      return _json(app.models())
    if path == '/api/model':
      return _json(app.model(query.get('model')))
    if path == '/api/test_image':
      return _json(app.test_image(query.get('model'), query.get('index', 0)))
    if path == '/api/view':
      return _json(app.view(query.get('model'), query.get('width'),
                            query.get('height'), query.get('crop', 'center'),
                            query.get('kind'), query.get('seed', 0)))
    found = re.fullmatch(rf'/api/jobs/({ID_PATTERN})', path)
    if found:
      return _json(app.job(found.group(1)))
    found = re.fullmatch(rf'/api/jobs/({ID_PATTERN})/(\w+)\.png', path)
    if found:
      return 200, 'image/png', app.file(*found.groups())
    raise NotFound('Nothing here: check the address.')

  def _post(self, path: str, query: dict[str, str]):
    del query
    app = self.server.app
    found = re.fullmatch(rf'/api/jobs/({ID_PATTERN})/cancel', path)
    if found:
      return _json(app.cancel(found.group(1)))
    if path != '/api/inpaint':
      raise NotFound('Nothing to POST to here: check the address.')
    # JSON only: a cross-site form cannot send it without a preflight.
    if self.headers.get('Content-Type', '').split(';')[0] != (
        'application/json'):
      raise InputError('Send the request as JSON (Content-Type:'
                       ' application/json).')
    body = self._body()
    try:
      request = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError):
      raise InputError('The request body is not valid JSON; reload the'
                       ' page.') from None
    return _json(app.submit(request), 202)

  def _length(self) -> int:
    """The request's Content-Length, checked against the limit."""
    text = self.headers.get('Content-Length')
    if text is None:
      raise _Refused(411, 'The request has no Content-Length; send one.')
    text = text.strip()
    if not re.fullmatch(r'[0-9]+', text):
      raise InputError('The Content-Length is not a whole number.')
    most = self.server.limits.max_body_bytes
    if len(text) > 18 or int(text) > most:
      raise _Refused(413, 'The request is larger than the server takes'
                     f' ({most:,} bytes); send a smaller photo.')
    return int(text)

  def _body(self) -> bytes:
    """The request's body, all of it (or a one-line refusal)."""
    self._drain = False  # Read here, or refused (too large: not read).
    length = self._length()
    try:
      body = self.rfile.read(length)
    except OSError:  # A timeout or a reset: the client went away.
      self.close_connection = True
      raise _Refused(408, 'The request body did not arrive in time; send it'
                     ' again.') from None
    if len(body) < length:
      self.close_connection = True
      raise InputError(f'The request body ended after {len(body):,} of its'
                       f' {length:,} bytes; send it again.')
    return body

  def _respond(self, route) -> None:
    self._drain = self.command == 'POST'
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    headers = {}
    try:
      wait = self.server.limiter.take(self.client_address[0])
      if wait:
        raise _Refused(429, 'Too many requests from your address; wait a'
                       ' moment and try again.',
                       {'Retry-After': str(max(1, math.ceil(wait)))})
      status, content_type, body = route(url.path, query)
    except _Refused as e:
      status, content_type, body = _json({'error': str(e)}, e.status)
      headers = e.headers
    except InputError as e:
      status, content_type, body = _json({'error': _line(e)}, 400)
    except NotFound as e:
      status, content_type, body = _json({'error': _line(e)}, 404)
    except Busy as e:
      status, content_type, body = _json({'error': _line(e)}, 503)
    except Exception as e:  # A bug: answer, and keep the trace in the log.
      logging.exception('Request %s failed.', self.path)
      status, content_type, body = _json(
          {'error': f'Internal error ({e.__class__.__name__}); see the'
                    ' server log.'}, 500)
    if self._drain:  # A POST answered without reading its body.
      self._discard_body()
    self._send(status, content_type, body, headers)

  def _discard_body(self) -> None:
    """Reads a small unread body, so that closing the connection does not
    reset it before the client has read the answer; drops a large one."""
    try:
      length = int(self.headers.get('Content-Length', ''))
    except ValueError:
      length = -1
    if 0 <= length <= _DRAINED_BYTES:
      try:
        self.rfile.read(length)
        return
      except OSError:
        pass
    self.close_connection = True

  def _send(self, status: int, content_type: str, body: bytes,
            headers: dict[str, str] | None = None) -> None:
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    for name, value in (headers or {}).items():
      self.send_header(name, value)
    if self.close_connection:
      self.send_header('Connection', 'close')
    self.end_headers()
    if self.command != 'HEAD':
      self.wfile.write(body)


def _no_constant(name: str):
  raise ValueError(f'{name} is not JSON')


def _line(error: Exception) -> str:
  """An error's message on one line."""
  return ' '.join(str(error).split())


def _json(payload: Any, status: int = 200) -> tuple[int, str, bytes]:
  return status, 'application/json', json.dumps(payload).encode()


class Server(http.server.ThreadingHTTPServer):
  """A ThreadingHTTPServer whose handlers reach the App as `server.app`,
  its `Limits` as `server.limits` and its `RateLimiter`."""

  daemon_threads = True
  request_queue_size = 64

  def __init__(self, address: tuple[str, int], app: App,
               limits: Limits | None = None):
    self.app = app
    self.limits = limits or Limits()
    self.limiter = RateLimiter(self.limits.requests_per_second,
                               self.limits.burst)
    super().__init__(address, Handler)

  def handle_error(self, request, client_address):
    """A client that went away mid-request goes to the debug log (not a
    traceback on stderr); anything else to the error log."""
    del request
    if isinstance(sys.exc_info()[1], OSError):
      logging.debug('Connection from %s failed.', client_address[0],
                    exc_info=True)
    else:
      logging.exception('Request from %s failed.', client_address[0])


def make_server(app: App, host: str = '127.0.0.1', port: int = 8000,
                limits: Limits | None = None) -> Server:
  """A bound (not yet serving) server; port 0 picks a free port."""
  try:
    return Server((host, port), app, limits)
  except OSError as e:
    raise InputError(f'Cannot listen on {host}:{port} ({e.strerror}); pick'
                     ' another --port (or stop what uses it).') from None


@contextlib.contextmanager
def running(app: App, host: str = '127.0.0.1', port: int = 0,
            limits: Limits | None = None) -> Iterator[str]:
  """Serves `app` in a thread; yields the base URL ('http://host:port').

  On exit the server is shut down, its socket closed and `app` closed, so
  no thread or port is left behind.
  """
  try:
    server = make_server(app, host, port, limits)
  except BaseException:
    app.close()
    raise
  thread = threading.Thread(target=server.serve_forever, name='inpaint-http',
                            daemon=True)
  thread.start()
  try:
    yield f'http://{host}:{server.server_address[1]}'
  finally:
    server.shutdown()
    server.server_close()
    thread.join()
    app.close()

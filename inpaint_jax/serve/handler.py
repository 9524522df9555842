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

Bad requests (an unreadable image, an empty or full mask, an unknown model,
settings out of range) raise `errors.InputError`; the handler answers them
with HTTP 400 and {"error": <its one-line message>}, which the page shows;
`jobs.NotFound` with 404, `jobs.Busy` with 503, anything else with 500.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.resources
import json
import os
import re
import threading
from typing import Any, Iterator
import urllib.parse

from absl import logging

from inpaint_jax.errors import InputError
from inpaint_jax.serve.app import App
from inpaint_jax.serve.jobs import Busy, NotFound
from inpaint_jax.serve.fields import whole_number

MAX_BODY_BYTES = 64 * 2**20
_STATIC = {'/': 'index.html', '/index.html': 'index.html',
           '/app.js': 'app.js', '/style.css': 'style.css'}
_CONTENT_TYPES = {'.html': 'text/html; charset=utf-8',
                  '.js': 'text/javascript; charset=utf-8',
                  '.css': 'text/css; charset=utf-8'}


def web_file(name: str) -> bytes:
  """The bytes of one of the page's files (package data `serve/web/`)."""
  return (importlib.resources.files('inpaint_jax.serve') / 'web' / name
          ).read_bytes()


class Handler(http.server.BaseHTTPRequestHandler):
  """Routes the page's files and the JSON API to `self.server.app` (App)."""

  server_version = 'inpaint_jax'

  def log_message(self, format, *args):  # pylint: disable=redefined-builtin
    """Request lines go to the debug log, not stderr (the page polls)."""
    logging.debug('%s %s', self.address_string(), format % args)

  def do_GET(self):  # pylint: disable=invalid-name
    """Serves the page's files and the GET routes of the API."""
    self._respond(self._get)

  def do_POST(self):  # pylint: disable=invalid-name
    """Serves the POST routes of the API (JSON bodies)."""
    self._respond(self._post)

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
    found = re.fullmatch(r'/api/jobs/(\w+)', path)
    if found:
      return _json(app.job(found.group(1)))
    found = re.fullmatch(r'/api/jobs/(\w+)/(\w+)\.png', path)
    if found:
      return 200, 'image/png', app.file(*found.groups())
    raise NotFound(f'Nothing at {path}.')

  def _post(self, path: str, query: dict[str, str]):
    del query
    app = self.server.app
    found = re.fullmatch(r'/api/jobs/(\w+)/cancel', path)
    if found:
      return _json(app.cancel(found.group(1)))
    if path != '/api/inpaint':
      raise NotFound(f'Nothing to POST to at {path}.')
    # JSON only: a cross-site form cannot send it without a preflight.
    if self.headers.get('Content-Type', '').split(';')[0] != (
        'application/json'):
      raise InputError('Send the request as JSON (Content-Type:'
                       ' application/json).')
    length = whole_number(self.headers.get('Content-Length'),
                          'Content-Length', 1, MAX_BODY_BYTES)
    body = self.rfile.read(length)
    try:
      request = json.loads(body)
    except ValueError:
      raise InputError('The request body is not valid JSON; reload the'
                       ' page.') from None
    return _json(app.submit(request), 202)

  def _respond(self, route) -> None:
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    try:
      status, content_type, body = route(url.path, query)
    except InputError as e:
      status, content_type, body = _json({'error': str(e)}, 400)
    except NotFound as e:
      status, content_type, body = _json({'error': str(e)}, 404)
    except Busy as e:
      status, content_type, body = _json({'error': str(e)}, 503)
    except Exception as e:  # A bug: answer, and keep the trace in the log.
      logging.exception('Request %s failed.', self.path)
      status, content_type, body = _json(
          {'error': f'Internal error ({e.__class__.__name__}: {e}); see the'
                    ' server log.'}, 500)
    self.send_response(status)
    self.send_header('Content-Type', content_type)
    self.send_header('Content-Length', str(len(body)))
    self.send_header('Cache-Control', 'no-store')
    self.send_header('X-Content-Type-Options', 'nosniff')
    self.end_headers()
    if self.command != 'HEAD':
      self.wfile.write(body)


def _json(payload: Any, status: int = 200) -> tuple[int, str, bytes]:
  return status, 'application/json', json.dumps(payload).encode()


class Server(http.server.ThreadingHTTPServer):
  """A ThreadingHTTPServer whose handlers reach the App as `server.app`."""

  daemon_threads = True

  def __init__(self, address: tuple[str, int], app: App):
    super().__init__(address, Handler)
    self.app = app


def make_server(app: App, host: str = '127.0.0.1', port: int = 8000) -> Server:
  """A bound (not yet serving) server; port 0 picks a free port."""
  try:
    return Server((host, port), app)
  except OSError as e:
    raise InputError(f'Cannot listen on {host}:{port} ({e.strerror}); pick'
                     ' another --port (or stop what uses it).') from None


@contextlib.contextmanager
def running(app: App, host: str = '127.0.0.1',
            port: int = 0) -> Iterator[str]:
  """Serves `app` in a thread; yields the base URL ('http://host:port').

  On exit the server is shut down, its socket closed and `app` closed, so
  no thread or port is left behind.
  """
  try:
    server = make_server(app, host, port)
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

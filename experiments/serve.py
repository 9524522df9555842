r"""A local web page to draw a mask on a photo and inpaint it.

  python -m experiments.serve            # then open http://127.0.0.1:8000

Pick a model (one of --models_dir, or type a model directory), upload a photo
or pick a test image of the model's data set (from --data_dir), paint the hole
with the brush or choose one of the paper's mask kinds, set the z-search
iterations, restarts and lambda, and press Inpaint: the page shows G(z) and
the loss as the search goes, then the masked input, G(z_hat), the blended
result and the result at the photo's full size, each to download.

The page is served by Python's standard library and loads nothing from the
internet. It listens on --host (default 127.0.0.1: this machine only). Jobs
are read through unguessable ids and forgotten --keep_results_minutes after
they end; requests are limited in size (--max_body_mb) and rate per client
address (--rate_limit, --rate_burst); a request names only models under
--models_dir unless --allow_models_outside. Ctrl-C stops it.
"""

import os
import signal

from absl import flags

from experiments import _cli
from inpaint_jax.serve import app as app_lib
from inpaint_jax.serve import handler
from inpaint_jax.serve import jobs
from inpaint_jax.serve import registry
from inpaint_jax.errors import MissingInputError

_PORT = flags.DEFINE_integer('port', 8000, 'Port to listen on (0: any free'
                             ' port).', lower_bound=0, upper_bound=65535)
_HOST = flags.DEFINE_string(
    'host', '127.0.0.1', 'Address to listen on; 0.0.0.0 lets other machines'
    ' reach the page (and run jobs on this one).')
_MODELS_DIR = flags.DEFINE_string(
    'models_dir', registry.default_models_dir(),
    'Folder of model directories (each with a model_config.json) to offer.')
_ALLOW_OUTSIDE = flags.DEFINE_boolean(
    'allow_models_outside', False, 'Let a request name any model directory'
    ' on this machine by its path, not only those under --models_dir.')
_KEEP_MINUTES = flags.DEFINE_float(
    'keep_results_minutes', jobs.KEEP_SECONDS / 60, 'Minutes a finished or'
    ' cancelled job (its photo\'s results) stays readable; then it is'
    f' forgotten (so are all but the newest {jobs.KEPT_JOBS}).',
    lower_bound=0.1)
_MAX_BODY_MB = flags.DEFINE_float(
    'max_body_mb', handler.MAX_BODY_BYTES / 2**20, 'Largest request (MiB);'
    ' a larger one is refused (HTTP 413) before it is read.', lower_bound=0.01)
_RATE = flags.DEFINE_float(
    'rate_limit', handler.REQUESTS_PER_SECOND, 'Requests a second one client'
    ' address may make on average (more: HTTP 429); 0: no limit.',
    lower_bound=0)
_BURST = flags.DEFINE_integer(
    'rate_burst', handler.BURST, 'Requests one client address may make at'
    ' once, above --rate_limit.', lower_bound=1)
_DATA_DIR = _cli.define_data_dir_flag()
flags.adopt_module_key_flags(_cli)


def _stop(signum, frame):
  del signum, frame
  raise KeyboardInterrupt  # SIGTERM stops the server as Ctrl-C does.


def main(argv):
  del argv
  if not os.path.isdir(_MODELS_DIR.value):
    raise MissingInputError(
        f'No folder at --models_dir={_MODELS_DIR.value!r}; point it at a'
        ' folder of model directories (the project\'s models/ by default).')
  signal.signal(signal.SIGTERM, _stop)
  app = app_lib.App(_MODELS_DIR.value, _DATA_DIR.value,
                    allow_models_outside=_ALLOW_OUTSIDE.value,
                    keep_seconds=_KEEP_MINUTES.value * 60)
  limits = handler.Limits(max_body_bytes=int(_MAX_BODY_MB.value * 2**20),
                          requests_per_second=_RATE.value,
                          burst=_BURST.value)
  try:
    http_server = handler.make_server(app, _HOST.value, _PORT.value, limits)
  except BaseException:
    app.close()
    raise
  host, port = http_server.server_address[:2]
  print(f'Serving the inpainting page at http://{host}:{port}/ (models from'
        f' {app.registry.models_dir}; Ctrl-C stops it).', flush=True)
  try:
    http_server.serve_forever()
  except KeyboardInterrupt:
    print('Stopping.', flush=True)
  finally:
    http_server.server_close()
    app.close()


if __name__ == '__main__':
  _cli.run(main)

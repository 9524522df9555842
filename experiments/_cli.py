"""What every experiment's __main__ shares: clear errors and the compile cache."""

import os
import sys

from absl import app
from absl import flags
from absl import logging

import jax


def enable_compilation_cache() -> None:
  """Persistent XLA cache, so a second run does not recompile everything."""
  cache = os.environ.get('INPAINT_JAX_CACHE',
                         os.path.expanduser('~/.cache/inpaint_jax/xla'))
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def run(main) -> None:
  """app.run(main), printing bad-input errors as one line instead of a trace."""

  def guarded(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    enable_compilation_cache()
    try:
      return main(argv)
    except (ValueError, FileNotFoundError) as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)

  app.run(guarded)

"""What every experiment's __main__ shares: clear errors, the compile cache and
the multi-process flags."""

import os
import sys

from absl import app
from absl import flags
from absl import logging

import jax

from inpaint_jax import distributed
from inpaint_jax.config import SearchConfig


def define_distributed_flags():
  """Defines --distributed (+ coordinator flags); returns `initialize()`.

  Call the returned function first in main: with --distributed it calls
  `distributed.initialize` with --coordinator_address, --num_processes and
  --process_id; unset ones are detected on Cloud TPU pods, Slurm and Open MPI
  (the address also from $JAX_COORDINATOR_ADDRESS).
  """
  enabled = flags.DEFINE_bool(
      'distributed', False, 'Multi-process: call jax.distributed.initialize()'
      ' (every process runs the same command).')
  address = flags.DEFINE_string(
      'coordinator_address', None, 'With --distributed: host:port of process'
      ' 0 (default: $JAX_COORDINATOR_ADDRESS, or detected on TPU/Slurm/MPI).')
  count = flags.DEFINE_integer(
      'num_processes', None, 'With --distributed: number of processes'
      ' (default: detected on TPU/Slurm/MPI).')
  index = flags.DEFINE_integer(
      'process_id', None, 'With --distributed: this process, 0..N-1'
      ' (default: detected on TPU/Slurm/MPI).')

  def initialize() -> None:
    if enabled.value:
      distributed.initialize(address.value, count.value, index.value)

  return initialize


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


def define_data_dir_flag() -> flags.FlagHolder:
  """--data_dir, shared by the experiments that read ../shared/data-style trees."""
  return flags.DEFINE_string(
      'data_dir', None, 'Data root (default: $INPAINT_DATA_DIR, else'
      ' ../shared/data beside the project).')


def define_search_flags():
  """The z-search flags; returns `search_config(**extra) -> SearchConfig`.

  --iterations defaults to 300 (a few minutes on a CPU), not the paper's 1500.
  """
  iterations = flags.DEFINE_integer('iterations', 300,
                                    'Adam steps on z (the paper: 1500).')
  lam = flags.DEFINE_float('lam', SearchConfig.lam,
                           'Prior loss weight lambda (Eq. 5).')
  learning_rate = flags.DEFINE_float('learning_rate',
                                     SearchConfig.learning_rate,
                                     'Adam learning rate for z.')
  restarts = flags.DEFINE_integer(
      'restarts', SearchConfig.restarts,
      'Random initialisations per image; the best is kept.')
  window = flags.DEFINE_integer(
      'window', SearchConfig.window, 'Side of the importance-weight window'
      ' of Eq. 3 (odd; the paper: 7).')

  def search_config(**extra) -> SearchConfig:
    return SearchConfig(iterations=iterations.value, lam=lam.value,
                        learning_rate=learning_rate.value,
                        restarts=restarts.value, window=window.value, **extra)

  return search_config

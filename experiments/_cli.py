"""What every experiment's __main__ shares: clear errors, the compile cache,
config flags and the multi-process flags."""

import dataclasses
import os
import shlex
import sys
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging

import jax

from inpaint_jax import distributed
from inpaint_jax.config import (BOOKKEEPING, ModelConfig, SearchConfig,
                                TrainConfig)
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import output_dirs

# Iterations of the z-search when a command does not say: 300 takes about a
# minute for 64 images on a 2-core CPU; the paper's 1500 is --iterations=1500.
DEFAULT_ITERATIONS = 300

_HELP = {
    # ModelConfig
    'resolution': 'Image side in pixels (16, 32, 64 or 128).',
    'z_dim': 'Latent size; z is uniform in [-1, 1].',
    'width': 'Base channel width (the paper: 64 -> 512-256-128-64).',
    'kernel': 'Convolution kernel size (5 as in the paper, or 4).',
    # SearchConfig
    'iterations': 'Adam steps on z (the paper: 1500).',
    'lam': 'Prior loss weight lambda (Eq. 5).',
    'learning_rate': 'Adam learning rate.',
    'beta1': 'Adam beta1.',
    'beta2': 'Adam beta2.',
    'restarts': 'Random initialisations per image; the best is kept.',
    'window': 'Side of the importance-weight window of Eq. 3 (odd; the paper:'
              ' 7).',
    'record_every': 'If > 0: write search.gif (G(z) every N steps for the'
                    ' first batch) and loss_curves.csv (loss at every step).',
    'stop_tolerance': 'Beyond the paper: if > 0, stop an image\'s search once'
                      ' its loss fell by less than this fraction over the'
                      ' last --check_every steps (--iterations stays the'
                      ' cap); 0: all --iterations (the paper).',
    'check_every': 'Steps between the convergence checks of'
                   ' --stop_tolerance.',
    'ilo_steps': 'Beyond the paper: after the z-search, this many Adam steps'
                 ' on the activation of G\'s stage --ilo_layer, kept within'
                 ' an L1 ball around G\'s own (intermediate layer'
                 ' optimisation); 0: none (the paper).',
    'ilo_layer': 'Stage of G whose activation --ilo_steps searches (0: the'
                 ' 4x4 projection, 1: 8x8, ...).',
    'ilo_radius': 'Radius of that L1 ball, as a fraction of the L1 norm of'
                  ' G\'s own activation.',
    'ilo_learning_rate': 'Adam learning rate of --ilo_steps.',
    'finetune_steps': 'Beyond the paper: after the z-search (and'
                      ' --ilo_steps), this many Adam steps on a per-image'
                      ' copy of G\'s weights above the searched input;'
                      ' 0: none (the paper).',
    'finetune_layers': 'How many of G\'s stages --finetune_steps tunes,'
                       ' from the output layer (1: that layer only).',
    'finetune_learning_rate': 'Adam learning rate of --finetune_steps.',
    'finetune_weight': 'Weight of the squared distance of the fine-tuned'
                       ' weights to the trained ones.',
    # TrainConfig
    'batch_size': 'Global batch size.',
    'num_steps': 'Total training steps.',
    'seed': 'Random seed.',
    'flip': 'Random horizontal flips of the training images.',
    'checkpoint_every': 'Steps between checkpoints.',
    'keep_checkpoints': 'How many recent checkpoints to keep.',
    'log_every': 'Steps between lines of metrics.jsonl.',
    'sample_every': 'Steps between sample grids.',
    'ema_decay': 'Beyond the paper: if > 0, keep a moving average of G\'s'
                 ' weights with this decay (e.g. 0.999) and use it for'
                 ' samples, validation and export; 0: none (the paper).',
    'augment': 'Beyond the paper: DiffAugment for D, a comma-separated'
               ' selection of color, translation, cutout (e.g.'
               ' color,translation,cutout); empty: none (the paper).',
}

_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, str: flags.DEFINE_string}


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


def enable_compilation_cache(directory: str | None = None,
                             min_compile_seconds: float = 1.0) -> None:
  """Persistent XLA cache, so a second run does not recompile everything.

  directory: where (default $INPAINT_JAX_CACHE, else
  ~/.cache/inpaint_jax/xla); only compilations of at least
  `min_compile_seconds` are kept.
  """
  cache = directory or os.environ.get(
      'INPAINT_JAX_CACHE', os.path.expanduser('~/.cache/inpaint_jax/xla'))
  jax.config.update('jax_compilation_cache_dir', cache)
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    min_compile_seconds)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def run(main) -> None:
  """app.run(main), printing bad-input errors as one line instead of a trace.

  Only the project's InputError (bad files, flag values, arrays) becomes an
  `error: ...` line and exit status 2; any other exception is a bug and keeps
  its traceback.
  """

  def guarded(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    enable_compilation_cache()
    try:
      return main(argv)
    except InputError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)

  app.run(guarded)


def define_config_flags(cls: type, fields: tuple[str, ...], *,
                        helps: dict[str, str] | None = None,
                        positive: tuple[str, ...] = (),
                        **defaults: Any) -> Callable[..., Any]:
  """One flag per named field of the config dataclass `cls`.

  Each flag's default is the dataclass default (or `defaults[name]`), so the
  defaults live in the config classes only; its help is `helps[name]`, else
  the project-wide text; the integer flags named in `positive` must be >= 1.
  Returns `build(base=None, **extra) -> cls` that makes the config from the
  parsed flags; with a `base` config, the flags not given on the command line
  take its values instead of the defaults.
  """
  helps = {**_HELP, **(helps or {})}
  holders = {}
  by_name = {f.name: f for f in dataclasses.fields(cls)}
  for name in fields:
    default = defaults.get(name, by_name[name].default)
    bounds = {'lower_bound': 1} if name in positive else {}
    holders[name] = _DEFINE[type(default)](name, default, helps[name],
                                           **bounds)

  def build(base: Any = None, **extra) -> Any:
    return cls(**{name: (h.value if base is None or h.present
                         else getattr(base, name))
                  for name, h in holders.items()}, **extra)

  return build


def command_line(module: str) -> str:
  """`python -m <module>` with this process's arguments, shell-quoted."""
  return f'python -m {module} ' + shlex.join(sys.argv[1:])


def note_if_fewer(found: int, asked: int, where: str) -> None:
  """Says on stderr when a source holds fewer images than --num_images."""
  if found < asked:
    print(f'note: {where} holds {found} images, fewer than --num_images='
          f'{asked}; using all {found}.', file=sys.stderr)


def define_source_flag() -> flags.FlagHolder:
  """--source: the shared-folder layout or the TFDS builders."""
  return flags.DEFINE_enum(
      'source', 'folder', ['folder', 'tfds'],
      'folder: <data_dir>/<dataset>/<split> image folders; tfds: the TFDS'
      ' builder (celeb_a, svhn_cropped, cars196), prepared beforehand.')


def define_data_dir_flag() -> flags.FlagHolder:
  """--data_dir, for the experiments that read ../shared/data-style trees."""
  return flags.DEFINE_string(
      'data_dir', None, 'Data root (default: $INPAINT_DATA_DIR, else'
      ' ../shared/data beside the project).')


def define_classifier_flag() -> flags.FlagHolder:
  """--classifier: the digit classifier behind the semantic accuracy."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return flags.DEFINE_string(
      'classifier', os.path.join(root, 'models', 'svhn_classifier'),
      'Digit classifier for the semantic accuracy (used for --dataset=svhn,'
      ' --split=test or validation, when the directory exists); empty: off.')


def define_search_flags(record: bool = False) -> Callable[..., SearchConfig]:
  """The z-search flags; returns `search_config(**extra) -> SearchConfig`.

  --iterations defaults to DEFAULT_ITERATIONS (a minute or two on a CPU), not
  the paper's 1500. With `record`, also --record_every.
  """
  fields = ('iterations', 'lam', 'learning_rate', 'beta1', 'beta2',
            'restarts', 'window', 'stop_tolerance', 'check_every',
            'ilo_steps', 'ilo_layer', 'ilo_radius', 'ilo_learning_rate',
            'finetune_steps', 'finetune_layers', 'finetune_learning_rate',
            'finetune_weight') + (('record_every',) if record else ())
  return define_config_flags(SearchConfig, fields,
                             iterations=DEFAULT_ITERATIONS)


def define_train_flags() -> Callable[..., TrainConfig]:
  """Every TrainConfig field as a flag; returns `train_config()`."""
  return define_config_flags(
      TrainConfig, tuple(f.name for f in dataclasses.fields(TrainConfig)))


def bookkeeping_fields(cls: type) -> tuple[str, ...]:
  """The bookkeeping fields (config.BOOKKEEPING) of the trainer config `cls`:
  with `define_config_flags`, the same flags for every trainer."""
  names = {f.name for f in dataclasses.fields(cls)}
  return tuple(name for name in BOOKKEEPING if name in names)


def define_run_flags() -> tuple[flags.FlagHolder, flags.FlagHolder]:
  """--workdir and --stop_after, the same for every trainer."""
  workdir = flags.DEFINE_string(
      'workdir', None, 'Run directory (run again with the same one, it'
      ' resumes).', required=True)
  stop_after = flags.DEFINE_integer(
      'stop_after', None, 'Stop after this many steps of this invocation (the'
      ' run can be resumed).', lower_bound=1)
  return workdir, stop_after


def check_run_outputs(workdir: str, export_dir: str | None = None) -> None:
  """Refuses a --workdir or --export_dir that cannot be written, before any
  work: an empty name (`--export_dir=` too: an unset shell variable, not
  "no export"), a file, a folder under a file, an --export_dir that already
  holds something (exports do not overwrite) or is the --workdir."""
  output_dirs.check_output_dir(workdir, '--workdir')
  if export_dir is None:
    return
  if os.path.abspath(export_dir) == os.path.abspath(workdir):
    raise InputError(f'--export_dir={export_dir} is the --workdir; export to'
                     ' a folder of its own, e.g. models/<name>.')
  output_dirs.check_output_dir(export_dir, '--export_dir', new=True)


def check_output_file(path: str, flag: str) -> None:
  """Refuses an output file path that cannot be written, before any work:
  empty, a folder, or in a folder that cannot be made or written."""
  if not path:
    raise InputError(f'{flag} is empty; name the file to write.')
  if os.path.isdir(path):
    raise InputError(f'{flag}={path} is a folder; name a file in it, e.g.'
                     f' {flag}={os.path.join(path, "out")}.')
  output_dirs.check_output_dir(os.path.dirname(path) or '.', flag)


def define_model_flags() -> Callable[..., ModelConfig]:
  """The ModelConfig flags (all but `channels`: images are RGB)."""
  return define_config_flags(ModelConfig,
                             ('resolution', 'z_dim', 'width', 'kernel'))

"""Training runs on disk: orbax checkpoints of the train state, the run
record (run.json: the trainer and its settings) and the metrics log."""

from __future__ import annotations

import contextlib
import errno
import json
import logging as std_logging
import os
import re
import shutil
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from inpaint_jax.config import BOOKKEEPING
from inpaint_jax.errors import InputError, MissingInputError

RUN_FILE = 'run.json'


def training_manager(workdir: str, keep: int = 3, async_save: bool = True,
                     cleanup: bool = False) -> ocp.CheckpointManager:
  """An orbax CheckpointManager for train states under `workdir`/checkpoints.

  cleanup: delete the unfinished step folders of a killed or failed save
  (`*.orbax-checkpoint-tmp`, never read back); only for the invocation that
  trains, not for readers of a run that may be saving.
  """
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, enable_async_checkpointing=async_save, create=True,
      cleanup_tmp_directories=cleanup)
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'), options=options)


def save_train_state(manager: ocp.CheckpointManager, step: int, state: Any,
                     meta: dict[str, Any]) -> None:
  """Saves a (host-local, unreplicated) train state and JSON `meta` at `step`.

  Asynchronous: the files are written in the background. InputError (the
  step, the reason, the step a rerun resumes from) if this save or the one
  before it cannot be written, e.g. on a full disk; the unfinished step
  folder is removed.
  """
  finish_saves(manager)
  with writing(manager, f'the checkpoint of step {step} to'
               f' {manager.directory}'):
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(jax.device_get(state)),
        meta=ocp.args.JsonSave(meta)))


def finish_saves(manager: ocp.CheckpointManager) -> None:
  """Waits for the save in flight; InputError as `save_train_state`'s."""
  step = manager.latest_step()  # the one in flight, if any
  with writing(manager, f'the checkpoint of step {step} to'
               f' {manager.directory}'):
    manager.wait_until_finished()


@contextlib.contextmanager
def writing(manager: ocp.CheckpointManager, what: str):
  """Within: a failed write (a full disk) becomes one InputError line naming
  `what`, the reason and the step a rerun resumes from, once the unfinished
  step folders of `manager` are removed. Other errors pass unchanged."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    _raise_write_error(manager, what, e)


def _write_failure(error: BaseException) -> tuple[str, int] | None:
  """(reason, errno) if `error` (or its cause) is a failed file write: an
  OSError, or tensorstore's ValueError with an os_error_code; else None."""
  while error is not None:
    if isinstance(error, OSError) and error.errno:
      return os.strerror(error.errno), error.errno
    code = re.search(r"os_error_code='?(\d+)", str(error))
    if code:
      return os.strerror(int(code.group(1))), int(code.group(1))
    error = error.__cause__ or error.__context__
  return None


def _raise_write_error(manager: ocp.CheckpointManager, what: str,
                       error: Exception) -> None:
  """Re-raises `error` as one InputError line if a write failed (else as is),
  after removing the unfinished step folders."""
  failure = _write_failure(error)
  if failure is None:
    raise error
  with contextlib.suppress(Exception):  # it raises the same error again
    manager.close()
  directory = str(manager.directory)
  if jax.process_index() == 0:
    for name in os.listdir(directory):
      if '.orbax-checkpoint-tmp' in name:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
  done = ocp.path.step.checkpoint_steps(directory)
  resume = (f'it resumes from step {max(done)}' if done
            else 'it starts again from step 0')
  reason, code = failure
  raise InputError(
      f'could not write {what}: {reason}; {_fix(code)} and run the same command'
      f' again: {resume}.'
  ) from error


def _fix(code: int | None) -> str:
  """The advice for a write that failed with errno `code`."""
  return ('free space' if code in (errno.ENOSPC, errno.EDQUOT)
          else 'fix that')


class _NoOrbaxErrors(std_logging.Filter):
  """Drops orbax's error logs (tracebacks of a failed background save): the
  failure reaches the caller as an exception, `save_train_state`'s line."""

  def filter(self, record):
    return not (record.levelno >= std_logging.ERROR
                and f'{os.sep}orbax{os.sep}' in record.pathname)


def _closed_loops_ignored(previous):
  """sys.unraisablehook without the 'Event loop is closed' RuntimeErrors of a
  failed save: tensorstore's callbacks of its other writes reach orbax's
  closed event loop afterwards, and Python prints each as a traceback."""

  def hook(unraisable):
    error = unraisable.exc_value
    if not (isinstance(error, RuntimeError)
            and str(error) == 'Event loop is closed'):
      previous(unraisable)

  hook.closed_loops_ignored = True
  return hook


@contextlib.contextmanager
def quiet_save_errors():
  """Within: a failed save comes back as one exception, no error logs or
  stray tracebacks (these stay ignored after an exception: they may come
  later)."""
  logger, quiet = std_logging.getLogger('absl'), _NoOrbaxErrors()
  logger.addFilter(quiet)
  previous = sys.unraisablehook
  if not getattr(previous, 'closed_loops_ignored', False):
    sys.unraisablehook = _closed_loops_ignored(previous)
  try:
    yield
  finally:
    logger.removeFilter(quiet)
  sys.unraisablehook = previous


def restore_train_state(manager: ocp.CheckpointManager, template: Any,
                        step: int | None = None) -> tuple[Any, dict, int] | None:
  """(state, meta, step) of the newest intact (or the given) step.

  None if no checkpoint was saved. Without `step`, a checkpoint that cannot
  be read (a run killed mid-save, a damaged file) is skipped with a warning
  and the one before it is tried; InputError if none can be read, or if the
  given `step` cannot.
  """
  steps = ([step] if step is not None
           else sorted(manager.all_steps(), reverse=True))
  failures = []
  for candidate in steps:
    try:
      restored = manager.restore(candidate, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(jax.device_get(template)),
          meta=ocp.args.JsonRestore()))
      return restored['state'], restored['meta'], candidate
    except Exception as e:  # orbax's errors name no fix; ours does below.
      failures.append(f'step {candidate}: {e.__class__.__name__}')
      logging.warning('Training checkpoint at step %d of %s cannot be read'
                      ' (%s); trying the one before.', candidate,
                      manager.directory, e)
  if not failures:
    return None
  raise InputError(
      f'No readable training checkpoint in {manager.directory}'
      f' ({"; ".join(failures[:3])}): delete the damaged step folders to'
      ' start again from the newest intact one, or use a new --workdir.')


def restore_run_state(workdir: str, template: Any, step: int | None = None
                      ) -> tuple[Any, dict[str, Any], int]:
  """(state, metadata, step) of the latest intact (or the given) checkpoint
  of the run in `workdir`, on the host; MissingInputError if it has none."""
  manager = training_manager(workdir, async_save=False)
  try:
    restored = restore_train_state(manager, template, step)
  finally:
    manager.close()
  if restored is None:
    raise MissingInputError(f'No training checkpoint under {workdir}; train'
                            ' first.')
  return restored


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the training checkpoints kept in `workdir`, ascending."""
  manager = training_manager(workdir, async_save=False)
  try:
    return sorted(manager.all_steps())
  finally:
    manager.close()


# The run record: workdir/run.json, {'trainer': name, 'settings': {section:
# {name: value}}}, e.g. {'model': ModelConfig, 'train': TrainConfig} of the
# DCGAN as dicts. Written (whole, then renamed) by every invocation once its
# settings are accepted; read by the next to refuse a resume that would change
# the result, and by the exports.


def check_run(workdir: str, trainer: str,
              settings: dict[str, dict[str, Any]],
              defaults: dict[str, dict[str, Any]] | None = None) -> None:
  """On resume, refuses another trainer's run or other settings.

  Args:
    workdir: the run directory; nothing is checked if it holds no record.
    trainer: the trainer's name ('dcgan': experiments.train_dcgan).
    settings: {section: {name: value}} of this invocation; every name but
      the bookkeeping ones (config.BOOKKEEPING) must have the run's value.
    defaults: {section: {name: default}}: the value of a setting that the
      run's record lacks (a field added to the config after the run was
      recorded, whose default keeps the behaviour it had then).
  """
  path = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(path):
    return
  saved = _read_record(workdir, trainer, '; use a new --workdir')
  names = sorted(
      name for section, current in settings.items() for name in current
      if name not in BOOKKEEPING
      and saved['settings'].get(section, {}).get(
          name, (defaults or {}).get(section, {}).get(name)) != current[name])
  if names:
    raise InputError(
        f'{workdir} holds a run with other settings ({", ".join(names)};'
        f' see {path}); use a new --workdir, or the same values as that run.')


def write_run(workdir: str, trainer: str,
              settings: dict[str, dict[str, Any]]) -> None:
  """Writes workdir/run.json, the record that `check_run` reads."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, RUN_FILE)
  # Written whole, then renamed: processes sharing the workdir each write the
  # same file and none reads a half-written one.
  temporary = f'{path}.{jax.process_index()}.{os.getpid()}.tmp'
  try:
    with open(temporary, 'w') as f:
      json.dump({'trainer': trainer, 'settings': settings}, f, indent=2,
                sort_keys=True)
    os.replace(temporary, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise InputError(f'could not write {path}: {e.strerror or e};'
                     f' {_fix(e.errno)} and run the same command again.'
                     ) from e


def read_run(workdir: str, trainer: str) -> dict[str, dict[str, Any]]:
  """The {section: settings} that the last invocation of a run recorded."""
  if not workdir or os.path.isfile(workdir):
    raise MissingInputError(
        f'No training run at {workdir!r} (not a folder): pass --workdir=DIR'
        f' of a run of experiments.train_{trainer}.')
  if not os.path.isfile(os.path.join(workdir, RUN_FILE)):
    raise MissingInputError(f'{workdir!r} holds no {RUN_FILE}: it is not a'
                            f' training run of experiments.train_{trainer}.')
  return _read_record(workdir, trainer)['settings']


def _read_record(workdir: str, trainer: str,
                 advice: str = '') -> dict[str, Any]:
  """workdir/run.json, refused (InputError + `advice`) if of another trainer
  or damaged."""
  path = os.path.join(workdir, RUN_FILE)
  try:
    with open(path) as f:
      saved = json.load(f)
  except (OSError, ValueError) as e:
    saved = e
  if not (isinstance(saved, dict)
          and isinstance(saved.get('settings'), dict)):
    why = (f'{saved.__class__.__name__}' if isinstance(saved, Exception)
           else 'no settings')
    raise InputError(
        f'{path} is damaged ({why}): restore it, or delete it and resume the'
        ' run with its training command (that writes it again), or use a new'
        ' --workdir.')
  if saved.get('trainer') != trainer:
    raise InputError(
        f'{workdir!r} holds a run of experiments.train_{saved.get("trainer")},'
        f' not of experiments.train_{trainer}{advice}.')
  return saved


def trim_metrics_log(path: str, step: int) -> None:
  """Removes lines of metrics.jsonl past `step`, logged by a killed run
  after its last checkpoint (the resumed run logs those steps again)."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  kept = [line for line in lines
          if line.strip() and json.loads(line)['step'] <= step]
  if len(kept) != len(lines):
    with open(path + '.tmp', 'w') as f:
      f.writelines(kept)
    os.replace(path + '.tmp', path)

"""Training runs on disk: orbax checkpoints of the train state, the run
record (run.json: the trainer and its settings) and the metrics log."""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from inpaint_jax.config import BOOKKEEPING
from inpaint_jax.errors import InputError, MissingInputError

RUN_FILE = 'run.json'


def training_manager(workdir: str, keep: int = 3,
                     async_save: bool = True) -> ocp.CheckpointManager:
  """An orbax CheckpointManager for train states under `workdir`/checkpoints."""
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), 'checkpoints'), options=options)


def save_train_state(manager: ocp.CheckpointManager, step: int, state: Any,
                     meta: dict[str, Any]) -> None:
  """Saves a (host-local, unreplicated) train state and JSON `meta` at `step`."""
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(jax.device_get(state)),
      meta=ocp.args.JsonSave(meta)))


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
              settings: dict[str, dict[str, Any]]) -> None:
  """On resume, refuses another trainer's run or other settings.

  Args:
    workdir: the run directory; nothing is checked if it holds no record.
    trainer: the trainer's name ('dcgan': experiments.train_dcgan).
    settings: {section: {name: value}} of this invocation; every name but
      the bookkeeping ones (config.BOOKKEEPING) must have the run's value.
  """
  path = os.path.join(workdir, RUN_FILE)
  if not os.path.exists(path):
    return
  saved = _read_record(workdir, trainer, '; use a new --workdir')
  names = sorted(
      name for section, current in settings.items() for name in current
      if name not in BOOKKEEPING
      and saved['settings'].get(section, {}).get(name) != current[name])
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
  with open(temporary, 'w') as f:
    json.dump({'trainer': trainer, 'settings': settings}, f, indent=2,
              sort_keys=True)
  os.replace(temporary, path)


def read_run(workdir: str, trainer: str) -> dict[str, dict[str, Any]]:
  """The {section: settings} that the last invocation of a run recorded."""
  if not os.path.isfile(os.path.join(workdir, RUN_FILE)):
    raise MissingInputError(f'{workdir!r} holds no {RUN_FILE}: it is not a'
                            f' training run of experiments.train_{trainer}.')
  return _read_record(workdir, trainer)['settings']


def _read_record(workdir: str, trainer: str,
                 advice: str = '') -> dict[str, Any]:
  """workdir/run.json, refused (InputError + `advice`) if of another trainer."""
  with open(os.path.join(workdir, RUN_FILE)) as f:
    saved = json.load(f)
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

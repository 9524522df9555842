"""Training runs on disk: orbax managers of the train state, run records."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from absl import logging

from inpaint_jax.config import ModelConfig, TrainConfig
from inpaint_jax.errors import InputError, MissingInputError


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


# Training run directories ----------------------------------------------


def resume_train_state(manager: ocp.CheckpointManager, template: Any
                       ) -> tuple[Any, dict[str, Any]]:
  """(state, metadata) of the latest intact checkpoint, else (template, {})."""
  restored = restore_train_state(manager, template)
  if restored is None:
    return template, {}
  state, meta, _ = restored
  logging.info('Resumed from step %d.', int(state.step))
  return state, meta


def changed_settings(saved: dict[str, Any], current: dict[str, Any],
                     ignore: tuple[str, ...] = ()) -> list[str]:
  """The keys of `current` (but `ignore`) whose value `saved` lacks, sorted."""
  return sorted(k for k in current
                if k not in ignore and saved.get(k) != current[k])


def check_run_record(workdir: str, file_name: str, what: str,
                     differing: Callable[[dict[str, Any]], list[str]]
                     ) -> None:
  """On resume, refuses settings that differ from the run's.

  Args:
    workdir: the run directory; nothing is checked if it lacks `file_name`.
    file_name: the JSON record of the settings the run started with.
    what: the run, for the message ('a classifier run').
    differing: saved record -> the names of the settings that differ.
  """
  path = os.path.join(workdir, file_name)
  if not os.path.exists(path):
    return
  with open(path) as f:
    names = differing(json.load(f))
  if names:
    raise InputError(
        f'{workdir} holds {what} with other settings ({", ".join(names)};'
        f' see {path}); use a new --workdir, or the same values as that run.')


def write_run_record(workdir: str, file_name: str,
                     record: dict[str, Any]) -> None:
  """Writes workdir/file_name: the JSON that `check_run_record` reads."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, file_name), 'w') as f:
    json.dump(record, f, indent=2, sort_keys=True)


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps of the training checkpoints kept in `workdir`, ascending."""
  manager = training_manager(workdir, async_save=False)
  try:
    return sorted(manager.all_steps())
  finally:
    manager.close()


def run_configs(workdir: str) -> tuple[ModelConfig, TrainConfig]:
  """The (ModelConfig, TrainConfig) a training run in `workdir` was started
  with (its train_config.json; num_steps is not recorded there)."""
  path = os.path.join(workdir, 'train_config.json')
  if not os.path.isfile(path):
    raise MissingInputError(f'{workdir!r} holds no train_config.json: it is'
                            ' not a training run of experiments.train_dcgan.')
  with open(path) as f:
    saved = json.load(f)
  return ModelConfig.from_dict(saved['model']), TrainConfig(**saved['train'])


# What a resumed run must share with the first one: the settings that change
# the result. Bookkeeping (num_steps, checkpoint_every, keep_checkpoints,
# log_every, sample_every) may differ between invocations.
_RESULT_SETTINGS = ('batch_size', 'learning_rate', 'beta1', 'seed', 'flip')


def _config_record(model_config: ModelConfig,
                   train_config: TrainConfig) -> dict[str, Any]:
  """What train_config.json holds (all but num_steps)."""
  return {'model': model_config.to_dict(),
          'train': {k: v for k, v in dataclasses.asdict(train_config).items()
                    if k != 'num_steps'}}


def check_run_configs(workdir: str, model_config: ModelConfig,
                   train_config: TrainConfig) -> None:
  """On resume, refuses a model or result-changing setting that differs."""
  current = _config_record(model_config, train_config)
  result = {k: current['train'][k] for k in _RESULT_SETTINGS}
  check_run_record(workdir, 'train_config.json', 'a run', lambda saved: sorted(
      changed_settings(saved['model'], current['model']) +
      changed_settings(saved['train'], result)))


def write_run_configs(workdir: str, model_config: ModelConfig,
                   train_config: TrainConfig) -> None:
  """Writes train_config.json once, when a run starts."""
  path = os.path.join(workdir, 'train_config.json')
  if os.path.exists(path):
    return
  # Written whole, then renamed: processes sharing the workdir each write the
  # same file and none reads a half-written one.
  temporary = f'{path}.{jax.process_index()}.{os.getpid()}.tmp'
  with open(temporary, 'w') as f:
    json.dump(_config_record(model_config, train_config), f, indent=2,
              sort_keys=True)
  os.replace(temporary, path)


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

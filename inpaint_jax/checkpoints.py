"""Saving and restoring models and training state with orbax.

Two kinds of directories:

* A **model directory** (what `experiments.inpaint` loads and what `models/`
  ships): `model_config.json` (the ModelConfig plus free-form metadata) and
  `variables/`, an orbax checkpoint of {'generator': G variables,
  'discriminator': D variables}. Weights may be stored in bfloat16 to halve the
  size; they are restored as float32.
* A **training directory**: an orbax CheckpointManager of the full train state
  (both networks, both optimiser states, batch statistics, step), used for
  exact resume. `export_model` turns its latest step into a model directory.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from inpaint_jax import models
from inpaint_jax.config import ModelConfig
from inpaint_jax.errors import InputError, MissingInputError

CONFIG_FILE = 'model_config.json'
VARIABLES_DIR = 'variables'


def _cast_floats(tree: Any, dtype) -> Any:
  return jax.tree_util.tree_map(
      lambda x: np.asarray(x, dtype) if np.issubdtype(np.asarray(x).dtype,
                                                      np.floating) else x,
      tree)


def save_model(directory: str, config: ModelConfig, g_vars: Any, d_vars: Any,
               metadata: dict[str, Any] | None = None,
               weights_dtype: str = 'float32') -> str:
  """Writes a model directory (config JSON + orbax variables); returns its path.

  Args:
    directory: where to write (created; must not hold a model already).
    config: the ModelConfig of G and D.
    g_vars, d_vars: {'params', 'batch_stats'} of G and D.
    metadata: extra JSON-serialisable facts (steps, data, wall time, ...).
    weights_dtype: 'float32' or 'bfloat16' (half the size on disk).
  """
  directory = os.path.abspath(directory)
  if weights_dtype not in ('float32', 'bfloat16'):
    raise ValueError(f'weights_dtype={weights_dtype!r}; use float32 or bfloat16.')
  os.makedirs(directory, exist_ok=True)
  tree = {'generator': jax.device_get(g_vars),
          'discriminator': jax.device_get(d_vars)}
  tree = _cast_floats(tree, jnp.bfloat16 if weights_dtype == 'bfloat16'
                      else np.float32)
  with ocp.StandardCheckpointer() as checkpointer:  # every process calls it.
    checkpointer.save(os.path.join(directory, VARIABLES_DIR), tree)
  if jax.process_index() == 0:
    with open(os.path.join(directory, CONFIG_FILE), 'w') as f:
      json.dump({'model': config.to_dict(), 'weights_dtype': weights_dtype,
                 'metadata': metadata or {}}, f, indent=2, sort_keys=True)
  if jax.process_count() > 1:  # nobody returns before the model is complete.
    multihost_utils.sync_global_devices('inpaint_jax.checkpoints.save_model')
  return directory


def load_model_config(directory: str) -> tuple[ModelConfig, dict[str, Any]]:
  """(ModelConfig, metadata) of a model directory, with clear errors."""
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isdir(directory):
    raise MissingInputError(
        f'No model directory at {directory!r}: pass --checkpoint=DIR of a model'
        ' saved by experiments.train_dcgan (or one under models/).')
  if not os.path.exists(path):
    raise MissingInputError(
        f'{directory!r} holds no {CONFIG_FILE}: it is not a model directory.'
        ' Pass a directory written by save_model / experiments.train_dcgan.')
  with open(path) as f:
    saved = json.load(f)
  return ModelConfig.from_dict(saved['model']), saved.get('metadata', {})


def restore_model(directory: str, expected: ModelConfig | None = None
                  ) -> tuple[ModelConfig, Any, Any]:
  """Loads (config, G variables, D variables) from a model directory.

  Raises:
    FileNotFoundError: no model there.
    ValueError: `expected` is given and differs from the saved config, or the
      saved arrays do not fit the saved config.
  """
  directory = os.path.abspath(directory)
  config, _ = load_model_config(directory)
  if expected is not None and expected != config:
    diff = {k: (v, getattr(config, k)) for k, v in expected.to_dict().items()
            if getattr(config, k) != v}
    raise InputError(
        f'Checkpoint {directory!r} holds a model with a different config'
        f' (flag value, saved value): {diff}. Drop the model flags to use the'
        ' saved config, or pass a matching checkpoint.')
  g_template, d_template = jax.eval_shape(
      lambda: models.init_variables(config, jax.random.PRNGKey(0)))
  template = {'generator': g_template, 'discriminator': d_template}
  with ocp.StandardCheckpointer() as checkpointer:
    metadata = checkpointer.metadata(os.path.join(directory, VARIABLES_DIR))
    saved_tree = getattr(metadata, 'item_metadata', metadata)
    saved_tree = getattr(saved_tree, 'tree', saved_tree)
    _check_shapes(saved_tree, template, directory)
    abstract = jax.tree_util.tree_map(
        lambda t, m: jax.ShapeDtypeStruct(t.shape, m.dtype), template,
        saved_tree)
    tree = checkpointer.restore(os.path.join(directory, VARIABLES_DIR),
                                abstract)
  tree = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), tree)
  return config, tree['generator'], tree['discriminator']


def _check_shapes(saved: Any, template: Any, directory: str) -> None:
  saved_shapes = jax.tree_util.tree_map(lambda m: tuple(m.shape), saved)
  wanted = jax.tree_util.tree_map(lambda t: tuple(t.shape), template)
  flat_saved = dict(jax.tree_util.tree_flatten_with_path(saved_shapes)[0])
  flat_wanted = dict(jax.tree_util.tree_flatten_with_path(wanted)[0])
  if flat_saved != flat_wanted:
    bad = sorted(jax.tree_util.keystr(k) for k in
                 set(flat_saved.items()) ^ set(flat_wanted.items()))
    raise InputError(
        f'Checkpoint {directory!r} does not match its {CONFIG_FILE}'
        f' (differing arrays: {bad[:3]}...); it is corrupt or was edited.')


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
  """(state, meta, step) of the latest (or given) step, or None if none saved."""
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(jax.device_get(template)),
      meta=ocp.args.JsonRestore()))
  return restored['state'], restored['meta'], step

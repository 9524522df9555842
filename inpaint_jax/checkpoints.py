"""Model directories: saving and restoring trained networks with orbax.

A **model directory** (what `experiments.inpaint` loads and what `models/`
ships): `model_config.json` (the ModelConfig plus free-form metadata) and
`variables/`, an orbax checkpoint of {'generator': G variables,
'discriminator': D variables}. Weights may be stored in bfloat16 or float16 to
halve the size; they are restored as float32. Training directories (the full
train state, for exact resume) are `inpaint_jax.training.run_state`'s.
"""

from __future__ import annotations

import hashlib
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
# How a model directory may store its weights; all restore as float32.
WEIGHT_DTYPES = {'float32': np.float32, 'bfloat16': jnp.bfloat16,
                 'float16': np.float16}
# Pictures an exported model directory may hold beside its weights (drawn at
# export, shown by its card): the validation curve and G's samples over the
# training steps.
MODEL_CURVE_FILE = 'validation_curve.png'
SAMPLES_OVER_TIME_FILE = 'samples_over_time.png'


def stored_weights_check_key(weights_dtype: str) -> str:
  """The metadata key of the check of weights stored as `weights_dtype`."""
  return f'{weights_dtype}_check'


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
    weights_dtype: a key of WEIGHT_DTYPES: 'float32', or 'bfloat16' /
      'float16' (half the size on disk; float16 keeps 3 more mantissa bits,
      bfloat16 a wider range).
  """
  directory = os.path.abspath(directory)
  if weights_dtype not in WEIGHT_DTYPES:
    raise ValueError(f'weights_dtype={weights_dtype!r}; use one of'
                     f' {", ".join(WEIGHT_DTYPES)}.')
  os.makedirs(directory, exist_ok=True)
  tree = {'generator': jax.device_get(g_vars),
          'discriminator': jax.device_get(d_vars)}
  tree = _cast_floats(tree, WEIGHT_DTYPES[weights_dtype])
  with ocp.StandardCheckpointer() as checkpointer:  # every process calls it.
    checkpointer.save(os.path.join(directory, VARIABLES_DIR), tree)
  if jax.process_index() == 0:
    with open(os.path.join(directory, CONFIG_FILE), 'w') as f:
      json.dump({'model': config.to_dict(), 'weights_dtype': weights_dtype,
                 'variables_sha256': variables_digest(directory),
                 'metadata': metadata or {}}, f, indent=2, sort_keys=True)
  if jax.process_count() > 1:  # nobody returns before the model is complete.
    multihost_utils.sync_global_devices('inpaint_jax.checkpoints.save_model')
  return directory


def save_network(directory: str, config_file: str, fields: dict[str, Any],
                 variables: Any) -> str:
  """Writes an extra network's model directory (classifier, encoders).

  `variables` go to orbax `variables/` as float32; `config_file` holds
  `fields` (JSON-able: configs, metadata) and the `variables_sha256` that
  `restore_network` checks. Returns the absolute path.
  """
  directory = os.path.abspath(directory)
  os.makedirs(directory, exist_ok=True)
  tree = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32),
                                jax.device_get(variables))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(directory, VARIABLES_DIR), tree,
                      force=True)
  with open(os.path.join(directory, config_file), 'w') as f:
    json.dump({**fields, 'variables_sha256': variables_digest(directory)}, f,
              indent=2, sort_keys=True)
  return directory


def restore_network(directory: str, config_file: str, what: str,
                    missing_fix: str, parse: Any, init: Any
                    ) -> tuple[Any, Any, dict[str, Any]]:
  """Reads a directory written by `save_network`, refusing damaged ones.

  Args:
    directory: the model directory.
    config_file: its JSON file name (e.g. 'encoder_config.json').
    what: the network's name in messages (e.g. 'encoder').
    missing_fix: what to do when there is none (the end of the message).
    parse: saved JSON dict -> parsed config(s); a ValueError, KeyError or
      TypeError in it means the file is damaged.
    init: parsed -> a variables pytree of the right shapes (only traced,
      with jax.eval_shape, for the restore template).

  Returns:
    (parsed, variables as float32, the saved JSON dict).

  Raises:
    MissingInputError: no `config_file` in `directory`.
    InputError: the JSON is damaged or the weights fail their checksum or
      cannot be read.
  """
  directory = os.path.abspath(directory)
  path = os.path.join(directory, config_file)
  weights = os.path.join(directory, VARIABLES_DIR)
  if not os.path.isfile(path):
    raise MissingInputError(
        f'No {what} at {directory!r} (no {config_file}): {missing_fix}')
  try:
    with open(path) as f:
      saved = json.load(f)
    parsed = parse(saved)
  except (ValueError, KeyError, TypeError) as e:
    raise InputError(f'{path} is damaged ({e.__class__.__name__}: {e});'
                     f' export the {what} again.') from None
  if saved.get('variables_sha256') != variables_digest(directory):
    raise InputError(
        f'The weights in {weights} do not match the checksum in'
        f' {config_file}: a file is damaged or was changed. Export the'
        f' {what} again (or restore it, e.g. with git checkout).')
  template = jax.eval_shape(lambda: init(parsed))
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      variables = checkpointer.restore(weights, template)
  except Exception as e:  # orbax says little about the file.
    raise InputError(
        f'The weights in {weights} cannot be read ({e.__class__.__name__}:'
        f' {str(e)[:200]}); export the {what} again.') from None
  variables = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32),
                                     variables)
  return parsed, variables, saved


def variables_digest(directory: str) -> str:
  """sha256 of every file under `directory`/variables (paths and bytes).

  Stored in model_config.json by `save_model` and checked by
  `restore_model`, so that a damaged weight file is refused, not loaded.
  """
  root = os.path.join(directory, VARIABLES_DIR)
  digest = hashlib.sha256()
  for folder, _, files in sorted(os.walk(root)):
    for name in sorted(files):
      path = os.path.join(folder, name)
      digest.update(os.path.relpath(path, root).encode() + b'\0')
      with open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def _read_config_file(directory: str) -> dict[str, Any]:
  path = os.path.join(directory, CONFIG_FILE)
  if not os.path.isdir(directory):
    raise MissingInputError(
        f'No model directory at {directory!r}: name a folder written by'
        ' experiments.train_dcgan --export_dir or experiments.export_model'
        ' (e.g. models/celeba64).')
  if not os.path.exists(path):
    raise MissingInputError(
        f'{directory!r} holds no {CONFIG_FILE}: it is not a model directory.'
        ' Pass a directory written by save_model / experiments.train_dcgan.')
  try:
    with open(path) as f:
      saved = json.load(f)
    ModelConfig.from_dict(saved['model'])
    return saved
  except (ValueError, KeyError, TypeError) as e:
    raise InputError(f'{path} is damaged ({e.__class__.__name__}: {e}); export'
                     ' the model again or restore the file.') from None


def model_record(directory: str) -> dict[str, Any]:
  """What another artefact records of a model directory it derives from:
  {'path': as given, normalised; 'variables_sha256': the one in its
  model_config.json, or None if it has none}. MissingInputError if there is
  no model there."""
  saved = _read_config_file(directory)
  return {'path': os.path.normpath(directory),
          'variables_sha256': saved.get('variables_sha256')}


def update_metadata(directory: str, **fields: Any) -> None:
  """Adds `fields` (JSON-able) to the metadata of a model directory.

  The weights and their `variables_sha256` are untouched.
  """
  saved = _read_config_file(directory)
  saved['metadata'] = {**saved.get('metadata', {}), **fields}
  with open(os.path.join(directory, CONFIG_FILE), 'w') as f:
    json.dump(saved, f, indent=2, sort_keys=True)


def load_model_config(directory: str) -> tuple[ModelConfig, dict[str, Any]]:
  """(ModelConfig, metadata) of a model directory, with clear errors."""
  saved = _read_config_file(directory)
  return ModelConfig.from_dict(saved['model']), saved.get('metadata', {})


def check_model_config(directory: str, expected: ModelConfig | None = None,
                       saved: dict[str, Any] | None = None) -> ModelConfig:
  """The ModelConfig of a model directory, checked against `expected`.

  Raises:
    MissingInputError: no model there.
    InputError: `expected` is given and differs from the saved config.
  """
  saved = saved if saved is not None else _read_config_file(directory)
  config = ModelConfig.from_dict(saved['model'])
  if expected is not None:
    require_same_config(directory, expected, config)
  return config


def require_same_config(directory: str, expected: ModelConfig,
                        saved: ModelConfig) -> None:
  """InputError naming the differences if `expected` (from flags) is not the
  `saved` config of the model directory `directory`."""
  if expected != saved:
    diff = {k: (v, getattr(saved, k)) for k, v in expected.to_dict().items()
            if getattr(saved, k) != v}
    raise InputError(
        f'Checkpoint {directory!r} holds a model with a different config'
        f' (flag value, saved value): {diff}. Drop the model flags to use the'
        ' saved config, or pass a matching checkpoint.')


def restore_model(directory: str, expected: ModelConfig | None = None
                  ) -> tuple[ModelConfig, Any, Any]:
  """Loads (config, G variables, D variables) from a model directory.

  Raises:
    MissingInputError: no model there.
    InputError: `expected` is given and differs from the saved config, the
      weights fail their checksum, or orbax cannot read them.
  """
  directory = os.path.abspath(directory)
  saved = _read_config_file(directory)
  config = check_model_config(directory, expected, saved)
  stored = saved.get('variables_sha256')
  if stored is not None and stored != variables_digest(directory):
    raise InputError(
        f'The weights in {os.path.join(directory, VARIABLES_DIR)} do not match'
        f' the checksum in {CONFIG_FILE}: a file is damaged or was changed.'
        ' Export the model again (or restore it, e.g. with git checkout).')
  try:
    tree = _restore_variables(directory, config)
  except InputError:
    raise
  except Exception as e:  # orbax / tensorstore say little about the file.
    raise InputError(
        f'The weights in {os.path.join(directory, VARIABLES_DIR)} cannot be'
        f' read ({e.__class__.__name__}: {str(e)[:200]}): the directory is'
        ' damaged; export the model again.') from None
  tree = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), tree)
  return config, tree['generator'], tree['discriminator']


def _restore_variables(directory: str, config: ModelConfig) -> Any:
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
    return checkpointer.restore(os.path.join(directory, VARIABLES_DIR),
                                abstract)


def _check_shapes(saved: Any, template: Any, directory: str) -> None:
  saved_shapes = jax.tree_util.tree_map(lambda m: tuple(m.shape), saved)
  wanted = jax.tree_util.tree_map(lambda t: tuple(t.shape), template)
  flat_saved = dict(jax.tree_util.tree_flatten_with_path(saved_shapes)[0])
  flat_wanted = dict(jax.tree_util.tree_flatten_with_path(wanted)[0])
  if flat_saved != flat_wanted:
    bad = sorted(jax.tree_util.keystr(k) for k in
                 set(flat_saved.items()) ^ set(flat_wanted.items()))
    raise InputError(
        f'The weights in {os.path.join(directory, VARIABLES_DIR)} cannot be'
        f' read or do not fit its {CONFIG_FILE} ({len(bad)} arrays differ,'
        f' e.g. {bad[0]}): the directory is damaged or was edited; export'
        ' the model again.')

"""Tests for inpaint_jax.config: meaningless settings are refused, naming the flag."""

import pytest

from inpaint_jax.config import ModelConfig, SearchConfig, TrainConfig
from inpaint_jax.errors import InputError

NAN, INF = float('nan'), float('inf')


@pytest.mark.parametrize('field,value', [
    ('iterations', -1), ('lam', NAN), ('lam', -0.1), ('lam', INF),
    ('learning_rate', 0.0), ('learning_rate', -0.03), ('learning_rate', NAN),
    ('learning_rate', INF), ('beta1', 1.0), ('beta2', NAN), ('restarts', 0),
    ('window', 4), ('window', 0), ('record_every', -1)])
def test_bad_search_settings_name_their_flag(field, value):
  with pytest.raises(InputError, match=f'--{field}'):
    SearchConfig(**{field: value})


@pytest.mark.parametrize('field,value', [
    ('batch_size', 0), ('batch_size', -8), ('learning_rate', NAN),
    ('learning_rate', -2e-4), ('beta1', -0.5), ('num_steps', 0),
    ('checkpoint_every', 0), ('keep_checkpoints', 0), ('log_every', 0),
    ('sample_every', 0)])
def test_bad_train_settings_name_their_flag(field, value):
  with pytest.raises(InputError, match=f'--{field}'):
    TrainConfig(**{field: value})


def test_paper_defaults_are_accepted():
  assert SearchConfig().lam == 0.003 and SearchConfig().window == 7
  assert TrainConfig().learning_rate == 2e-4 and TrainConfig().beta1 == 0.5
  assert ModelConfig().width == 64 and ModelConfig().kernel == 5
  with pytest.raises(InputError, match='resolution'):
    ModelConfig(resolution=48)

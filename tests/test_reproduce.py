"""Tests for inpaint_jax.reproduce: every method on the same cell, tables."""

import csv
import os

import jax
import numpy as np
import pytest

from inpaint_jax import context_encoder, input_pipeline, reproduce
from inpaint_jax.config import SearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_data = pytest.mark.skipif(
    not os.path.isdir(os.path.join(input_pipeline.default_data_dir(), 'svhn')),
    reason='shared data not found')


def test_confidence_interval():
  mean, half = reproduce.confidence_interval([1.0, 2.0, 3.0, 4.0])
  assert mean == 2.5
  np.testing.assert_allclose(half, 1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)


@pytest.mark.slow
@needs_data
def test_a_cell_runs_every_method_and_writes_the_tables(tmp_path):
  images, names = input_pipeline.load_split('svhn', 'test', limit=3)
  train, _ = input_pipeline.load_split('svhn', 'train', limit=8,
                                       dtype=np.uint8)  # NN candidates
  ce_config = context_encoder.ContextEncoderConfig(width=2, d_width=2)
  ce_model = context_encoder.save(  # untrained: the plumbing, not quality
      str(tmp_path / 'ce_model'), ce_config,
      context_encoder.init_variables(ce_config, jax.random.PRNGKey(0)))
  factories = reproduce.method_factories(
      os.path.join(ROOT, 'models', 'svhn64'), SearchConfig(iterations=2),
      train, ce_model)
  rows = reproduce.run_cell('svhn', 'center', images, names, factories,
                            reproduce.METHODS, str(tmp_path), batch_size=2,
                            show_progress=False)
  assert [r['method'] for r in rows] == list(reproduce.METHODS)
  for r in rows:
    assert np.isfinite(r['psnr']) and np.isfinite(r['psnr_hole'])
    assert r['psnr_hole'] < r['psnr']  # the hole is where the errors are
  reproduce.write_tables(rows, str(tmp_path))
  with open(tmp_path / 'results.csv') as f:
    assert len(list(csv.DictReader(f))) == len(reproduce.METHODS)
  table1 = (tmp_path / 'table1.md').read_text()
  assert '22.3 / 19.0' in table1  # the paper's CE / ours, SVHN centre
  assert table1.count('±') == 2  # our CE and ours
  assert os.path.exists(tmp_path / 'svhn' / 'center' / 'tv' / 'grid.png')


def test_ce_is_offered_only_with_a_model(tmp_path):
  factories = reproduce.method_factories('unused', SearchConfig(), None,
                                         str(tmp_path / 'no_ce'))
  assert 'ce' not in factories and 'nn' not in factories
  assert 'ce' in reproduce.METHODS

"""Two JAX processes on localhost give the results of one process.

The fixture starts tests/multihost_worker.py twice (one CPU device each,
joined with `distributed.initialize('localhost:PORT', 2, i)` and gloo CPU
collectives); both train the same tiny DCGAN in one shared workdir (each
process reading its half of every batch) and inpaint 5 images (3 + 2). While
they run, this pytest process (one process, two CPU devices: conftest) makes
the same calls; the tests compare the two.
"""

import csv
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax import distributed
from inpaint_jax.evaluation import evaluate
from inpaint_jax import models
from inpaint_jax.training import train_dcgan
from inpaint_jax.config import SearchConfig, TrainConfig
from tests.conftest import TINY_CONFIG as MODEL
from tests.conftest import leaves
TRAIN = TrainConfig(batch_size=8, num_steps=2, checkpoint_every=2, log_every=1,
                    sample_every=2)
EVAL_KWARGS = dict(mask_kind='center', search_config=SearchConfig(iterations=3),
                   batch_size=2, show_progress=False)
NUM_EVAL = 5  # odd: the processes get 3 and 2 images.
TIMEOUT = 300
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'multihost_worker.py')


def _inputs():
  rng = np.random.default_rng(0)
  train_images = rng.integers(0, 256, (24, 16, 16, 3), dtype=np.uint8)
  eval_images = (rng.integers(0, 256, (NUM_EVAL, 16, 16, 3)) / 127.5 - 1
                 ).astype(np.float32)
  names = np.array([f'image{i}.png' for i in range(NUM_EVAL)])
  return train_images, eval_images, names


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """(directory the two workers wrote, the one-process results).

  The one-process results: {'state': the final TrainState, 'summary':
  inpaint_and_evaluate's summary, 'eval': its output directory}.
  """
  assert jax.local_device_count() == 2 and jax.process_count() == 1
  directory = tmp_path_factory.mktemp('multihost')
  train_images, eval_images, names = _inputs()
  np.savez(directory / 'inputs.npz', train_images=train_images,
           eval_images=eval_images, names=names)
  g_vars, d_vars = models.init_variables(MODEL, jax.random.PRNGKey(3))
  checkpoints.save_model(str(directory / 'model'), MODEL, g_vars, d_vars)
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)
  procs, logs = [], []
  for i in range(2):
    log = open(directory / f'worker_{i}.log', 'w+')
    logs.append(log)
    procs.append(subprocess.Popen(
        [sys.executable, WORKER, str(port), '2', str(i), str(directory)],
        stdout=log, stderr=subprocess.STDOUT, env=env))
  try:
    single = {'eval': directory / 'single_eval'}
    single['state'], _ = train_dcgan.train(
        MODEL, TRAIN, train_images, str(directory / 'single_train'),
        show_progress=False)
    single['summary'] = evaluate.inpaint_and_evaluate(
        str(directory / 'model'), eval_images, list(names),
        str(single['eval']), **EVAL_KWARGS)
    for proc in procs:
      proc.wait(timeout=TIMEOUT)
  except subprocess.TimeoutExpired:
    pass
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  failures = []
  for i, (proc, log) in enumerate(zip(procs, logs)):
    log.seek(0)
    if proc.returncode != 0:
      failures.append(f'--- worker {i} exited with {proc.returncode} (timeout'
                      f' {TIMEOUT} s):\n{log.read()[-5000:]}')
    log.close()
  assert not failures, '\n'.join(failures)
  return directory, single


def test_process_slice_covers_every_row_once():
  for n in range(12):
    for count in range(1, 5):
      shares = [distributed.process_slice(n, p, count) for p in range(count)]
      rows = [i for s in shares for i in range(n)[s]]
      assert rows == list(range(n))
      sizes = [s.stop - s.start for s in shares]
      assert max(sizes) - min(sizes) <= 1
  assert distributed.process_slice(5, 0, 2) == slice(0, 3)
  assert distributed.process_slice(5, 1, 2) == slice(3, 5)


def test_gather_rows_with_one_process_is_the_identity():
  rows = np.arange(6.0).reshape(3, 2)
  np.testing.assert_array_equal(distributed.gather_rows(rows), rows)


@pytest.mark.slow
def test_two_process_training_equals_one_process(runs):
  two_processes, reference = runs
  single = leaves(reference['state'])
  for i in range(2):
    with np.load(two_processes / f'params_{i}.npz') as saved:
      multi = [saved[f'arr_{j}'] for j in range(len(saved.files))]
    assert len(multi) == len(single)
    for a, b in zip(multi, single):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # The gradients were not zero (Adam's first moment starts at zero), so the
  # parameters moved and the comparison is not vacuous.
  assert int(reference['state'].step) == TRAIN.num_steps
  first_moment = reference['state'].g_opt_state[0].mu
  assert max(np.abs(x).max() for x in leaves(first_moment)) > 1e-4
  # The shared workdir: one metrics log (process 0), one checkpoint.
  work = two_processes / 'train'
  lines = (work / 'metrics.jsonl').read_text().splitlines()
  assert [json.loads(l)['step'] for l in lines] == [1, 2]
  assert os.listdir(work / 'samples') == ['step_0000002.png']
  assert [d for d in os.listdir(work / 'checkpoints') if d.isdigit()] == ['2']


def _csv_rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_process_evaluation_equals_one_process(runs):
  two_processes, reference = runs
  single, single_out = reference['summary'], reference['eval']
  names = _inputs()[2]
  summaries = [json.loads((two_processes / f'summary_{i}.json').read_text())
               for i in range(2)]
  assert summaries[0] == summaries[1]  # every process returns the same.
  # Only process 0 writes results (process 1 removed its partial batches).
  out = two_processes / 'eval_0'
  assert not any(path.is_file()
                 for path in (two_processes / 'eval_1').rglob('*'))
  assert json.loads((out / 'metrics.json').read_text()) == summaries[0]
  for key, value in single.items():
    if key.startswith('mean_'):
      np.testing.assert_allclose(summaries[0][key], value, rtol=1e-5,
                                 atol=1e-5, err_msg=key)
  assert summaries[0]['num_images'] == NUM_EVAL
  # Every image once, in order, with the one-process per-image results.
  multi_rows = _csv_rows(out / 'metrics.csv')
  single_rows = _csv_rows(single_out / 'metrics.csv')
  assert [r['image'] for r in multi_rows] == list(names)
  assert [r['image'] for r in single_rows] == list(names)
  for m, s in zip(multi_rows, single_rows):
    for key in s:
      if key != 'image':
        np.testing.assert_allclose(float(m[key]), float(s[key]), rtol=1e-5,
                                   atol=1e-5, err_msg=f"{m['image']} {key}")
  assert sorted(os.listdir(out / 'images')) == sorted(os.listdir(
      single_out / 'images'))
  assert len(os.listdir(out / 'images')) == 3 * NUM_EVAL
  for name in os.listdir(out / 'images'):
    a = np.asarray(Image.open(out / 'images' / name), np.int16)
    b = np.asarray(Image.open(single_out / 'images' / name), np.int16)
    assert np.abs(a - b).max() <= 1, name
  grid = lambda d: np.asarray(Image.open(d / 'grid.png'), np.int16)
  assert np.abs(grid(out) - grid(single_out)).max() <= 1

"""Kill-and-resume of every trainer, and checkpoints that cannot be written.

A run stopped at any moment (between checkpoints, right after one, half-way
through writing one) and run again with the same command ends equal to the
uninterrupted run: parameters, optimizer state and the metrics log. A
checkpoint that cannot be written (a full disk, simulated) stops training with
one line and leaves nothing a resume would read.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax import encoder
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.config import TrainConfig
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import semantic
from inpaint_jax.training import loop
from inpaint_jax.training import run_state
from inpaint_jax.training import train_classifier
from inpaint_jax.training import train_context_encoder
from inpaint_jax.training import train_dcgan
from inpaint_jax.training import train_encoder
from tests import test_loop
from tests.conftest import TINY_CONFIG, leaves

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TMP = '.orbax-checkpoint-tmp'  # orbax's suffix of a step folder being written
# Six steps, a checkpoint every two, a log line every step.
BOOKS = dict(batch_size=8, num_steps=6, checkpoint_every=2, log_every=1)
TIMING = ('steps_per_second', 'wall_seconds')


def _images(n=24, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3),
                                              dtype=np.uint8)


@pytest.fixture(scope='module')
def trainers(tmp_path_factory, tiny_variables):
  """{name: run(workdir, stop_after) -> final state} of the four trainers."""
  model_dir = checkpoints.save_model(
      str(tmp_path_factory.mktemp('gen') / 'tiny16'), TINY_CONFIG,
      *tiny_variables)
  generator = encoder.generator_record(model_dir)
  images, labels = _images(), np.random.default_rng(1).integers(0, 10, 24)
  quiet = dict(show_progress=False)
  return {
      'dcgan': lambda w, n: train_dcgan.train(
          TINY_CONFIG, TrainConfig(sample_every=2, **BOOKS), images, w,
          stop_after=n, **quiet)[0],
      'encoder': lambda w, n: train_encoder.train(
          TINY_CONFIG, encoder.EncoderConfig(width=4, learning_rate=1e-2,
                                             **BOOKS),
          tiny_variables[0], w, generator=generator, stop_after=n,
          **quiet)[0],
      'classifier': lambda w, n: train_classifier.train(
          semantic.ClassifierConfig(resolution=16, widths=(4, 8), **BOOKS),
          images, labels, w, stop_after=n, **quiet)[0],
      'context_encoder': lambda w, n: train_context_encoder.train(
          ce.ContextEncoderConfig(resolution=16, width=4, d_width=4,
                                  sample_every=2, **BOOKS),
          images, w, stop_after=n, **quiet)[0],
  }


def _unfinish(step_dir):
  """Turns a saved step folder into what a save killed half-way leaves: the
  temporary folder, the state's files cut short, no metadata, no commit."""
  partial = step_dir.with_name(step_dir.name + TMP)
  step_dir.rename(partial)
  (partial / 'state').rename(partial / f'state{TMP}')
  shutil.rmtree(partial / 'meta')
  for path in sorted(partial.rglob('*')):
    if path.name == 'commit_success.txt':
      path.unlink()
    elif path.is_file() and path.parent.name == 'd':
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _logged(workdir):
  """metrics.jsonl without its timings: [{'step', losses...}]."""
  lines = (workdir / 'metrics.jsonl').read_text().splitlines()
  return [{k: v for k, v in json.loads(line).items() if k not in TIMING}
          for line in lines]


def _assert_same_run(resumed, whole, workdir, whole_dir):
  """Bit for bit the uninterrupted run: state, log, checkpoints, nothing
  left of an unfinished save."""
  assert int(resumed.step) == int(whole.step)
  for a, b in zip(leaves(resumed), leaves(whole), strict=True):
    np.testing.assert_array_equal(a, b)
  assert _logged(workdir) == _logged(whole_dir)
  assert (run_state.checkpoint_steps(str(workdir))
          == run_state.checkpoint_steps(str(whole_dir)))
  assert not [p for p in os.listdir(workdir / 'checkpoints') if TMP in p]


@pytest.mark.slow
@pytest.mark.parametrize('name', ['dcgan', 'encoder', 'classifier',
                                  'context_encoder'])
def test_a_run_stopped_at_any_moment_resumes_exactly(trainers, name,
                                                     tmp_path):
  run, whole_dir, work = trainers[name], tmp_path / 'whole', tmp_path / 'run'
  whole = run(str(whole_dir), None)
  # Stopped right after the checkpoint of step 2.
  assert int(run(str(work), 2).step) == 2
  # Killed between checkpoints, after logging step 3: no checkpoint of it.
  run(str(work), 1)
  shutil.rmtree(work / 'checkpoints' / '3')
  # Killed while writing the checkpoint of step 4 (steps 3 and 4 logged).
  run(str(work), 2)
  _unfinish(work / 'checkpoints' / '4')
  assert run_state.checkpoint_steps(str(work)) == [2]
  assert [line['step'] for line in _logged(work)] == [1, 2, 3, 4]
  _assert_same_run(run(str(work), None), whole, work, whole_dir)


# A real SIGKILL while orbax writes step 4 in the background (the toy trainer
# of test_loop: the machinery every trainer shares).
_KILLED_MID_SAVE = '''
import os, signal, sys
import jax
jax.config.update('jax_num_cpu_devices', 2)
import orbax.checkpoint as ocp
from tests import test_loop
handler = ocp.handlers.JsonCheckpointHandler
write = handler._save_fn
async def killed(self, item, directory):
  if '/4.orbax-checkpoint-tmp' in str(directory):
    os.kill(os.getpid(), signal.SIGKILL)
  return await write(self, item, directory)
handler._save_fn = killed
test_loop._train(sys.argv[1])
'''


@pytest.mark.slow
def test_a_run_killed_while_writing_a_checkpoint_resumes_exactly(tmp_path):
  whole, _ = test_loop._train(tmp_path / 'whole')
  work = tmp_path / 'run'
  killed = subprocess.run(
      [sys.executable, '-c', _KILLED_MID_SAVE, str(work)], cwd=ROOT,
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  assert f'4{TMP}' in os.listdir(work / 'checkpoints')
  assert run_state.checkpoint_steps(str(work)) == [2]
  resumed, _ = test_loop._train(work)
  _assert_same_run(resumed, whole, work, tmp_path / 'whole')


# Checkpoints that cannot be written ---------------------------------------


def _fail_writes(monkeypatch, step, where='background'):
  """Makes the checkpoint of `step` fail as on a full disk: its metadata file
  in orbax's background thread, or (where='save') the save call itself."""
  if where == 'save':
    save = ocp.CheckpointManager.save

    def full(self, at, *args, **kwargs):
      if at == step:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
      return save(self, at, *args, **kwargs)

    monkeypatch.setattr(ocp.CheckpointManager, 'save', full)
    return
  write = ocp.handlers.JsonCheckpointHandler._save_fn

  async def full(self, item, directory):
    if f'{os.sep}{step}{TMP}' in str(directory):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
    return await write(self, item, directory)

  monkeypatch.setattr(ocp.handlers.JsonCheckpointHandler, '_save_fn', full)


@pytest.mark.slow
@pytest.mark.parametrize('step,where', [(4, 'background'), (5, 'background'),
                                        (4, 'save')])
def test_a_checkpoint_that_cannot_be_written_stops_in_one_line(
    tmp_path, monkeypatch, step, where):
  # step 4 fails while step 5 trains (it surfaces at the next save); step 5,
  # the last, at the end of the loop.
  whole, _ = test_loop._train(tmp_path / 'whole')
  work = tmp_path / 'run'
  with monkeypatch.context() as patch:
    _fail_writes(patch, step, where)
    with pytest.raises(InputError) as failed:
      test_loop._train(work)
  good = 4 if step == 5 else 2
  assert str(failed.value) == (
      f'could not write the checkpoint of step {step} to'
      f' {work / "checkpoints"}: No space left on device; free space and run'
      f' the same command again: it resumes from step {good}.')
  # Nothing of step `step` a resume would read (the unfinished folder is
  # removed; a write still running then is removed by the next start).
  assert run_state.checkpoint_steps(str(work)) == [s for s in (2, 4)
                                                   if s <= good]
  # Space freed, the same command resumes from the last good checkpoint.
  resumed, _ = test_loop._train(work)
  _assert_same_run(resumed, whole, work, tmp_path / 'whole')


@pytest.mark.slow
def test_a_full_disk_for_the_log_or_samples_stops_in_one_line(tmp_path,
                                                              monkeypatch):
  whole, _ = test_loop._train(tmp_path / 'whole')
  work = tmp_path / 'run'
  save_png = loop.image_io.save_png

  def full(path, grid):
    if path.endswith('step_0000003.png'):
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    save_png(path, grid)

  with monkeypatch.context() as patch:
    patch.setattr(loop.image_io, 'save_png', full)
    with pytest.raises(InputError) as failed:
      test_loop._train(work, samples=[])
  assert str(failed.value) == (
      f'could not write {work / "samples" / "step_0000003.png"}: No space left'
      ' on device; free space and run the same command again: it resumes from'
      ' step 2.')
  resumed, _ = test_loop._train(work, samples=[])
  _assert_same_run(resumed, whole, work, tmp_path / 'whole')


def test_a_run_record_that_cannot_be_written_is_one_line(tmp_path,
                                                         monkeypatch):
  def full(source, target):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  with monkeypatch.context() as patch, pytest.raises(
      InputError, match=r'could not write .*run\.json: No space left on'
      ' device; free space and run the same command again'):
    patch.setattr(run_state.os, 'replace', full)
    run_state.write_run(str(tmp_path), 'toy', {'toy': {}})
  assert os.listdir(tmp_path) == []


def test_a_failure_that_is_not_a_write_keeps_its_traceback(tmp_path,
                                                           monkeypatch):
  def broken(self, *args, **kwargs):
    raise TypeError('a bug')

  monkeypatch.setattr(ocp.CheckpointManager, 'save', broken)
  with pytest.raises(TypeError, match='a bug'):
    test_loop._train(tmp_path / 'run')


_FULL_DISK_MAIN = '''
import errno, os, runpy, sys
import orbax.checkpoint as ocp
handler = ocp.handlers.JsonCheckpointHandler
write = handler._save_fn
async def full(self, item, directory):
  if '/4.orbax-checkpoint-tmp' in str(directory):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory))
  return await write(self, item, directory)
if os.environ.get('DISK_FULL'):
  handler._save_fn = full
sys.argv[0] = 'train_dcgan'
runpy.run_module('experiments.train_dcgan', run_name='__main__')
'''


@pytest.mark.slow
def test_train_dcgan_on_a_full_disk_says_so_and_resumes(tmp_path):
  train = tmp_path / 'data' / 'celeba' / 'train'
  train.mkdir(parents=True)
  for i, image in enumerate(_images(n=256 + 8, seed=2)):
    Image.fromarray(image).save(train / f'{i:04d}.png')
  work = tmp_path / 'run'

  def run(*extra, full=False):
    env = dict(os.environ, INPAINT_JAX_CACHE=str(tmp_path / 'xla'),
               JAX_PLATFORMS='cpu',
               **({'DISK_FULL': '1'} if full else {}))
    return subprocess.run(
        [sys.executable, '-c', _FULL_DISK_MAIN, '--dataset=celeba',
         f'--data_dir={tmp_path / "data"}', '--resolution=16', '--width=4',
         '--batch_size=8', '--num_steps=5', '--checkpoint_every=2',
         '--log_every=1', f'--workdir={work}', *extra], cwd=ROOT,
        capture_output=True, text=True, env=env, timeout=600)

  failed = run(full=True)
  assert failed.returncode == 2, failed.stderr[-3000:]
  assert 'Traceback' not in failed.stderr and 'ERROR' not in failed.stderr
  errors = [l for l in failed.stderr.splitlines() if 'error' in l.lower()]
  assert errors == [
      f'error: could not write the checkpoint of step 4 to {work}/checkpoints:'
      ' No space left on device; free space and run the same command again:'
      ' it resumes from step 2.'], failed.stderr[-3000:]
  assert sorted(os.listdir(work / 'checkpoints')) == ['2']
  resumed = run()
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert run_state.checkpoint_steps(str(work)) == [2, 4, 5]
  assert [line['step'] for line in _logged(work)] == [1, 2, 3, 4, 5]

"""Tests for inpaint_jax.output_dirs: unusable folders and one run at a time."""

import os
import socket
import subprocess
import sys

import pytest

from inpaint_jax.evaluation import output_dirs
from inpaint_jax.errors import InputError


def test_prepare_output_dir_makes_missing_folders(tmp_path):
  target = tmp_path / 'a' / 'b'
  assert output_dirs.prepare_output_dir(str(target)) == str(target)
  assert target.is_dir() and not os.listdir(target)
  output_dirs.prepare_output_dir(str(target))  # existing: fine


def _unusable(tmp_path):
  (tmp_path / 'file').write_text('x')
  os.symlink(tmp_path / 'nowhere', tmp_path / 'broken')
  return [
      ('', 'is empty; name one, e.g. --output_dir='),
      (str(tmp_path / 'file'), r"'.*file' is a file, not a folder; choose"),
      (str(tmp_path / 'file' / 'sub' / 'deeper'),
       r"cannot be made: '.*file' is a file"),
      (str(tmp_path / 'broken'), 'is a broken link'),
      (str(tmp_path / 'nul\0name'), 'Cannot write to the output directory'),
  ]


def test_prepare_output_dir_refuses_unusable_folders(tmp_path):
  for output_dir, match in _unusable(tmp_path):
    with pytest.raises(InputError, match=match) as error:
      output_dirs.prepare_output_dir(output_dir, '--output_dir')
    assert '\n' not in str(error.value), output_dir
  assert sorted(os.listdir(tmp_path)) == ['broken', 'file']


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write anywhere')
def test_prepare_output_dir_refuses_a_read_only_folder(tmp_path):
  (tmp_path / 'ro').mkdir(mode=0o500)
  with pytest.raises(InputError, match='Cannot write.*permissions'):
    output_dirs.prepare_output_dir(str(tmp_path / 'ro'))


# The lock ---------------------------------------------------------------------


def _dead_pid():
  child = subprocess.Popen([sys.executable, '-c', 'pass'])
  child.wait()
  return child.pid


def test_the_lock_is_held_for_the_block_and_removed_after(tmp_path):
  lock = tmp_path / 'out' / output_dirs.LOCK_FILE
  with output_dirs.locked_output_dir(str(tmp_path / 'out')) as folder:
    assert folder == str(tmp_path / 'out')
    assert lock.read_text().split() == [str(os.getpid()),
                                        socket.gethostname()]
    # The same folder again (another run) is refused while it is held.
    with pytest.raises(InputError, match=rf'process {os.getpid()} on'):
      with output_dirs.locked_output_dir(str(tmp_path / 'out')):
        pass
    assert lock.exists()
  assert not lock.exists()
  with pytest.raises(KeyboardInterrupt):
    with output_dirs.locked_output_dir(str(tmp_path / 'out')):
      raise KeyboardInterrupt
  assert not lock.exists()


@pytest.mark.parametrize('owner,match', [
    (lambda: f'{os.getpid()} {socket.gethostname()}',
     'Another run \\(process {pid} on {host}\\) is writing to'),
    (lambda: '1 some-other-host',
     'Another run \\(process 1 on some-other-host\\)'),
    (lambda: '', 'Another run is starting in'),  # being written just now
])
def test_a_live_lock_is_refused_and_kept(tmp_path, owner, match):
  (tmp_path / output_dirs.LOCK_FILE).write_text(owner())
  match = match.format(pid=os.getpid(), host=socket.gethostname())
  with pytest.raises(InputError, match=match) as error:
    with output_dirs.locked_output_dir(str(tmp_path)):
      pytest.fail('entered a locked folder')
  assert str(tmp_path) in str(error.value) and '\n' not in str(error.value)
  assert (tmp_path / output_dirs.LOCK_FILE).read_text() == owner()


@pytest.mark.parametrize('owner', [
    lambda: f'{_dead_pid()} {socket.gethostname()}',
    lambda: 'garbage',  # unreadable, and old
])
def test_a_stale_lock_is_taken_over(tmp_path, owner):
  lock = tmp_path / output_dirs.LOCK_FILE
  lock.write_text(owner())
  os.utime(lock, (0, 0))
  with output_dirs.locked_output_dir(str(tmp_path)):
    assert lock.read_text().split()[0] == str(os.getpid())
  assert os.listdir(tmp_path) == []


def test_a_lock_replaced_meanwhile_is_not_removed(tmp_path):
  lock = tmp_path / output_dirs.LOCK_FILE
  with output_dirs.locked_output_dir(str(tmp_path)):
    lock.write_text('12345 elsewhere')  # e.g. deleted by hand, taken again
  assert lock.read_text() == '12345 elsewhere'

"""Output folders: checked before any work, and one run at a time.

`check_output_dir` checks a folder without making it (run it on every folder
a command will write, before the work; `new=True` for an export, which must
not overwrite); `prepare_output_dir` makes a folder and checks it can be
written; both with a one-line InputError naming the flag otherwise (an empty
name, a file, a path under a file, a broken link, no write permission). `locked_output_dir` also
holds `<output_dir>/.lock` while a run writes there: a second run into the same
folder is refused, not mixed in; the lock of a process that has ended is taken
over.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from typing import Iterator

import jax
import numpy as np

from inpaint_jax import distributed
from inpaint_jax.errors import InputError

LOCK_FILE = '.lock'
_LOCK_GRACE_SECONDS = 60.0


def _file_above(path: str) -> str | None:
  """The nearest existing ancestor of `path` if it is not a directory."""
  parent = os.path.dirname(os.path.abspath(path))
  while not os.path.lexists(parent):
    parent = os.path.dirname(parent)
  return None if os.path.isdir(parent) else parent


def check_output_dir(output_dir: str, flag: str = '--output_dir', *,
                     new: bool = False) -> str:
  """Checks, without making anything, that `output_dir` can be a folder.

  For the checks a command runs before any work on every folder it will
  write: the work may still fail, and then no empty folder is left behind.

  Args:
    output_dir: the folder (it need not exist).
    flag: the command-line flag that names it, for the messages.
    new: the folder must not exist yet, or be empty (an export, which does
      not overwrite).

  Returns:
    output_dir.

  Raises:
    InputError: the name is empty, is a file (or a broken link), lies under a
      file, is an existing folder that cannot be written or (with `new`) is
      not empty; one line with the fix.
  """
  if not output_dir:
    raise InputError(f'The output directory is empty; name one, e.g.'
                     f' {flag}=results/run.')
  output_dir = os.fspath(output_dir)
  if '\0' in output_dir:
    raise InputError(f'Cannot write to the output directory {output_dir!r}'
                     f' (a NUL character in the name); choose another {flag}.')
  if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
    kind = 'a file' if os.path.exists(output_dir) else 'a broken link'
    raise InputError(f'The output directory {output_dir!r} is {kind}, not a'
                     f' folder; choose another {flag} or move it away.')
  blocker = _file_above(output_dir)
  if blocker is not None:
    raise InputError(f'The output directory {output_dir!r} cannot be made:'
                     f' {blocker!r} is a file, not a folder; choose another'
                     f' {flag}.')
  if os.path.isdir(output_dir):
    if new and os.listdir(output_dir):
      raise InputError(f'{flag}={output_dir} already exists and is not empty;'
                       f' choose a new {flag} or delete that folder first.')
    if not os.access(output_dir, os.W_OK | os.X_OK):
      raise InputError(f'Cannot write to the output directory {output_dir!r}'
                       f' (permission denied); choose another {flag} or fix'
                       ' its permissions.')
  return output_dir


def prepare_output_dir(output_dir: str, flag: str = '--output_dir') -> str:
  """Makes `output_dir` (and its parents) and checks that it can be written.

  Call it before any long computation whose results go there, so that a bad
  folder is reported at once, not after the work.

  Args:
    output_dir: the folder.
    flag: the command-line flag that names it, for the messages.

  Returns:
    output_dir.

  Raises:
    InputError: as `check_output_dir`, or the folder cannot be made or
      written; one line with the fix.
  """
  output_dir = check_output_dir(output_dir, flag)
  try:
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=output_dir):
      pass
  except (OSError, ValueError) as e:
    reason = getattr(e, 'strerror', None) or str(e)
    raise InputError(f'Cannot write to the output directory {output_dir!r}'
                     f' ({reason}); choose another {flag} or fix its'
                     ' permissions.') from None
  return output_dir


def _lock_owner(path: str) -> tuple[int, str] | None:
  """(pid, host) written in a lock file, or None if unreadable or gone."""
  try:
    with open(path) as f:
      pid, host = f.read().split()
    return int(pid), host
  except (OSError, ValueError):
    return None


def _owner_alive(pid: int, host: str) -> bool:
  """Whether the lock owner may still run (another host's: assumed so)."""
  if host != socket.gethostname():
    return True
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Another user's process.
  return True


def _take_lock(output_dir: str, flag: str) -> str:
  """Creates `<output_dir>/.lock` holding '<pid> <host>'; returns its text.

  A lock whose process has ended (same host) is taken over; a live one (or
  one being written just now) raises InputError.
  """
  path = os.path.join(output_dir, LOCK_FILE)
  mine = f'{os.getpid()} {socket.gethostname()}\n'
  for _ in range(10):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      pass
    else:
      with os.fdopen(fd, 'w') as f:
        f.write(mine)
      return mine
    owner = _lock_owner(path)
    if owner is None:
      try:
        age = time.time() - os.path.getmtime(path)
      except OSError:
        continue  # Removed meanwhile: try again.
      if age < _LOCK_GRACE_SECONDS:
        raise InputError(
            f'Another run is starting in {output_dir!r} (its lock file'
            f' {path!r} is being written); wait for it to finish or choose'
            f' another {flag}.')
    elif _owner_alive(*owner):
      pid, host = owner
      raise InputError(
          f'Another run (process {pid} on {host}) is writing to'
          f' {output_dir!r}; wait for it to finish or choose another'
          f' {flag} (if no such run is going on, delete {path!r}).')
    _remove_stale_lock(path, owner)
  raise InputError(f'Cannot lock {output_dir!r}: its lock file {path!r} keeps'
                   f' changing; choose another {flag}.')


def _remove_stale_lock(path: str, owner: tuple[int, str] | None) -> None:
  """Removes the lock file if it still holds `owner` (a run that ended).

  It is first renamed to a name of this process's own, so that of two runs
  taking over the same stale lock only one removes it; if a live run had
  put its own lock there in between, that lock is put back.
  """
  aside = f'{path}.stale.{os.getpid()}.{socket.gethostname()}'
  try:
    os.rename(path, aside)
  except FileNotFoundError:
    return  # Another run took it over first.
  if _lock_owner(aside) == owner:
    os.remove(aside)
    return
  try:
    os.link(aside, path)  # Fails if yet another run holds the lock now.
  except OSError:
    pass
  os.remove(aside)


def _release_lock(output_dir: str, mine: str) -> None:
  path = os.path.join(output_dir, LOCK_FILE)
  try:
    with open(path) as f:
      still_mine = f.read() == mine
    if still_mine:
      os.remove(path)
  except OSError:
    pass  # Already gone (e.g. deleted by hand).


@contextlib.contextmanager
def locked_output_dir(output_dir: str,
                      flag: str = '--output_dir') -> Iterator[str]:
  """Prepares `output_dir` and holds its lock for one run at a time.

  Every process checks the folder (`prepare_output_dir`); process 0 creates
  `<output_dir>/.lock` with its pid and host name (os.O_EXCL) and removes it
  when the block ends, however it ends. A lock left by a run that was killed
  (its pid no longer exists on this host) is taken over. With several
  processes all of them raise if any check or the lock failed (so that none
  waits on the others forever); call it in every process.

  Args:
    output_dir: the folder.
    flag: the command-line flag that names it, for the messages.

  Yields:
    output_dir.

  Raises:
    InputError: the folder cannot be used (see `prepare_output_dir`), or
      another live run holds its lock; the message names that process.
  """
  error, mine = None, None
  try:
    prepare_output_dir(output_dir, flag)
    if jax.process_index() == 0:
      mine = _take_lock(output_dir, flag)
  except InputError as e:
    error = e
  if jax.process_count() > 1:
    failed = distributed.gather_rows(np.asarray([error is not None],
                                                   np.int32))
    if error is None and failed.any():
      if mine is not None:
        _release_lock(output_dir, mine)
      raise InputError(
          f'Process {int(np.argmax(failed))} cannot use the output directory'
          f' {output_dir!r} (its own error says why); fix that and run again.')
  if error is not None:
    raise error
  try:
    yield output_dir
  finally:
    if mine is not None:
      _release_lock(output_dir, mine)

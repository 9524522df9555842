"""The project's error types for bad input.

A user-facing problem (an unreadable file, a wrong shape, a meaningless flag
value, a missing checkpoint) raises `InputError` with a one-line message that
names the problem and the fix; the experiment mains print that line and exit
with status 2. Anything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
  """Bad input given by the user; the message says what is wrong and the fix."""


class MissingInputError(InputError, FileNotFoundError):
  """A file or directory the user named does not exist (or is not the kind)."""

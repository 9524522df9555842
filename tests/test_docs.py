"""The README and the docs stay true to the code.

Every `python -m <module> ...` command quoted in README.md, docs/*.md,
models/*/README.md and benchmarks/README.md (in fenced blocks, with `\\` line
continuations, and in inline `code`) names a module that exists, and every
`--flag` / `--noflag` it passes is a flag that module defines. The flags of the
project's absl mains (experiments/, benchmarks/) are read by importing each in
one subprocess; other modules (pytest) are only looked up. Also: the README
keeps its size and its two commands (.ci/run runs them), `python <script>.py`
commands name files that exist, relative links and their #anchors resolve, and
the Python examples import names that exist.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import glob
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')
README_MAX_BYTES = 12 * 1024
# .ci/run runs exactly these; the README must show them as they are.
README_COMMANDS = (
    "pip install -e '.[test]' && python -m experiments.inpaint"
    ' --num_images=32 --output_dir=results/celeba_center',
    'python -m pytest -q',
)
# Packages whose modules are absl mains: their flags are checked.
ABSL_PACKAGES = ('experiments', 'benchmarks')
# Flags absl.app adds to every main when it runs.
APP_FLAGS = {'help', 'helpshort', 'helpfull', 'helpxml', 'flagfile',
             'undefok', '?'}

_FENCE = re.compile(r'^```([^\n]*)\n(.*?)^```[ \t]*$', re.M | re.S)
_INLINE = re.compile(r'`([^`]+)`')
_MODULE_COMMAND = re.compile(r'\bpython3? -m ([A-Za-z_][\w.]*)([^\n]*)')
_SCRIPT_COMMAND = re.compile(r'\bpython3? ([\w./-]+\.py)\b')
_LINK = re.compile(r'\]\(([^)\s]+)\)')


def doc_paths() -> list[str]:
  """The checked markdown files, relative to the repository root."""
  paths = ['README.md', 'benchmarks/README.md']
  paths += sorted(glob.glob('docs/*.md', root_dir=ROOT))
  paths += sorted(glob.glob('models/*/README.md', root_dir=ROOT))
  return [p for p in paths if os.path.isfile(os.path.join(ROOT, p))]


def _read(path: str) -> str:
  with open(os.path.join(ROOT, path), encoding='utf-8') as f:
    return f.read()


@dataclasses.dataclass(frozen=True)
class Command:
  """One quoted command: `python -m module` and the flags it passes."""
  path: str
  line: int
  module: str
  flags: tuple[str, ...]
  text: str

  def where(self) -> str:
    return f'{self.path}:{self.line}: {self.text}'


def _blank_comment(line: str) -> str:
  """A shell line with its `# ...` comment blanked (the length kept)."""
  m = re.search(r'(^|\s)#.*$', line)
  return line if m is None else line[:m.start()] + ' ' * (len(line) - m.start())


def _commands_in(text: str, path: str, offset: int,
                 source: str) -> list[Command]:
  """The `python -m` commands of one stretch of shell text."""
  found = []
  for m in _MODULE_COMMAND.finditer(text):
    # A command ends at the next shell separator or closing quote.
    args = re.split(r'&&|\|\||[;|"]', m.group(2))[0]
    flags = tuple(a[2:].split('=', 1)[0] for a in args.split()
                  if a.startswith('--') and len(a) > 2)
    line = source.count('\n', 0, offset + m.start()) + 1
    found.append(Command(path, line, m.group(1), flags,
                         ' '.join(f'python -m {m.group(1)}{args}'.split())))
  return found


def _shell_spans(source: str):
  """(text, offset) of every shell-like span: fenced blocks, inline code."""
  prose_parts, last = [], 0
  for m in _FENCE.finditer(source):
    prose_parts.append((source[last:m.start()], last))
    last = m.end()
    if m.group(1).strip() in ('python', 'py'):
      continue
    body = m.group(2)
    # Joins `\` continuations; both edits keep every offset in place.
    body = body.replace('\\\n', '  ')
    body = '\n'.join(_blank_comment(l) for l in body.split('\n'))
    yield body, m.start(2)
  prose_parts.append((source[last:], last))
  for prose, start in prose_parts:
    for m in _INLINE.finditer(prose):
      yield m.group(1).replace('\n', ' '), start + m.start(1)


def collect_commands() -> list[Command]:
  """Every `python -m` command quoted in the checked files."""
  commands = []
  for path in doc_paths():
    source = _read(path)
    for text, offset in _shell_spans(source):
      commands += _commands_in(text, path, offset, source)
  return commands


def collect_scripts() -> list[tuple[str, str]]:
  """(doc path, script) of every `python path/to/script.py` command."""
  found = []
  for path in doc_paths():
    for text, _ in _shell_spans(_read(path)):
      found += [(path, s) for s in _SCRIPT_COMMAND.findall(text)]
  return found


_COMMANDS = collect_commands()
_MODULES = sorted({c.module for c in _COMMANDS})

# Imports each main in turn in one process (a process per main would cost
# ~3 s each), dropping the project's flags between two so that mains that
# define the same flag names do not collide; prints what each accepts.
_FLAG_DUMP = r'''
import importlib, json, sys
from absl import app, flags, logging
FLAGS = flags.FLAGS
project = tuple(sys.argv[1].split(','))
out = {}
for module in sys.argv[2:]:
  for name in list(FLAGS):
    owner = FLAGS.find_module_defining_flag(name) or ''
    if name in FLAGS and owner.split('.')[0] in project:
      delattr(FLAGS, name)
  try:
    importlib.import_module(module)
  except BaseException as e:  # a main may exit without an optional dependency
    out[module] = {'error': f'{type(e).__name__}: {e}',
                   'error_type': type(e).__name__,
                   'missing': getattr(e, 'name', None) or ''}
    continue
  out[module] = {'flags': sorted(FLAGS),
                 'booleans': sorted(n for n in FLAGS if FLAGS[n].boolean)}
print('FLAG_DUMP ' + json.dumps(out))
'''


def _static_flags(module: str) -> dict[str, list[str]]:
  """The flags a module's own source defines (for a main that cannot import)."""
  with open(importlib.util.find_spec(module).origin, encoding='utf-8') as f:
    source = f.read()
  defined = re.findall(r"DEFINE_(\w+)\(\s*['\"](\w+)['\"]", source)
  return {'flags': [name for _, name in defined],
          'booleans': [name for kind, name in defined
                       if kind in ('bool', 'boolean')]}


@functools.cache
def absl_flags() -> dict[str, dict[str, list[str]]]:
  """module -> {'flags', 'booleans'} (+ 'error') for every quoted absl main."""
  mains = [m for m in _MODULES if m.split('.')[0] in ABSL_PACKAGES
           and importlib.util.find_spec(m) is not None]
  if not mains:
    return {}
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  done = subprocess.run(
      [sys.executable, '-c', _FLAG_DUMP, ','.join(ABSL_PACKAGES), *mains],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  lines = [l for l in done.stdout.splitlines() if l.startswith('FLAG_DUMP ')]
  assert lines, f'flag dump failed:\n{done.stdout}\n{done.stderr}'
  result = json.loads(lines[-1][len('FLAG_DUMP '):])
  for module, found in result.items():
    if 'error' in found:
      result[module] = {**_static_flags(module), **found}
  return result


def _optional_dependency_missing(found: dict[str, str]) -> bool:
  """Whether a main failed to import for a dependency outside the project."""
  if found['error_type'] == 'SystemExit':
    return True  # e.g. benchmarks.torch_reference without torch
  ours = ABSL_PACKAGES + ('inpaint_jax',)
  return (found['error_type'] == 'ModuleNotFoundError' and
          found['missing'].split('.')[0] not in ours)


def test_readme_is_short_and_keeps_its_two_commands():
  size = os.path.getsize(README)
  assert size <= README_MAX_BYTES, (
      f'README.md is {size} bytes, over {README_MAX_BYTES}: move reference'
      ' material to docs/')
  blocks = [m.group(2) for m in _FENCE.finditer(_read('README.md'))]
  for command in README_COMMANDS:
    assert any(command in b.split('\n') for b in blocks), (
        f'README.md no longer shows `{command}` on a line of its own, which'
        ' .ci/run runs')


def test_commands_are_collected():
  # Guards the parser: the README's main command and a continued command.
  texts = [c.text for c in _COMMANDS if c.path == 'README.md']
  assert any(t.startswith('python -m experiments.inpaint --num_images=32')
             for t in texts), texts
  continued = [c for c in _COMMANDS if c.module == 'experiments.train_dcgan'
               and 'num_steps' in c.flags and 'dataset' in c.flags]
  assert continued, 'no multi-line train_dcgan command found'
  assert len(_COMMANDS) > 50, len(_COMMANDS)


@pytest.mark.parametrize('module', _MODULES)
def test_quoted_commands_name_real_modules_and_flags(module):
  commands = [c for c in _COMMANDS if c.module == module]
  assert importlib.util.find_spec(module) is not None, (
      f'no module {module}, quoted at:\n' +
      '\n'.join(c.where() for c in commands))
  if module.split('.')[0] not in ABSL_PACKAGES:
    return  # Not an absl main (pytest): its flags are not ours to check.
  known = absl_flags()[module]
  if 'error' in known and not _optional_dependency_missing(known):
    pytest.fail(f'{module} does not import ({known["error"]}); quoted at:\n' +
                '\n'.join(c.where() for c in commands))
  flags = set(known['flags']) | APP_FLAGS
  booleans = set(known['booleans'])
  wrong = []
  for c in commands:
    for flag in c.flags:
      negated = flag.startswith('no') and flag[2:] in booleans
      if flag not in flags and not negated:
        wrong.append(f'--{flag} in {c.where()}')
  note = (f' (read from its source: without an optional dependency it'
          f' does not import: {known["error"]})' if 'error' in known else '')
  assert not wrong, (f'{module} defines no such flag{note}:\n' +
                     '\n'.join(wrong))


def test_quoted_scripts_exist():
  scripts = collect_scripts()
  assert scripts
  missing = [f'{doc}: python {s}' for doc, s in scripts
             if not os.path.isfile(os.path.join(ROOT, s))]
  assert not missing, missing


def _anchors(path: str) -> set[str]:
  """GitHub's anchors of a markdown file's headings (not in code blocks)."""
  source = _FENCE.sub('', _read(path))
  seen: dict[str, int] = {}
  anchors = set()
  for heading in re.findall(r'^#{1,6} +(.+?) *#* *$', source, re.M):
    slug = re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    anchors.add(slug if count == 0 else f'{slug}-{count}')
  return anchors


def test_relative_links_resolve():
  broken = []
  for path in doc_paths():
    source = _FENCE.sub('', _read(path))
    for target in _LINK.findall(source):
      if re.match(r'[a-z]+:', target):
        continue  # http(s), mailto: not checked here
      file_part, _, anchor = target.partition('#')
      linked = (os.path.normpath(os.path.join(os.path.dirname(path),
                                              file_part))
                if file_part else path)
      if not os.path.exists(os.path.join(ROOT, linked)):
        broken.append(f'{path}: {target} (no {linked})')
      elif anchor and linked.endswith('.md') and anchor not in _anchors(
          linked):
        broken.append(f'{path}: {target} (no heading #{anchor} in {linked})')
  assert not broken, '\n'.join(broken)


def test_python_examples_import_what_exists():
  missing = []
  for path in doc_paths():
    for m in _FENCE.finditer(_read(path)):
      if m.group(1).strip() not in ('python', 'py'):
        continue
      for node in ast.walk(ast.parse(m.group(2))):
        if isinstance(node, ast.Import):
          names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
          names = [(node.module, a.name) for a in node.names]
        else:
          continue
        for module, name in names:
          if not module.startswith('inpaint_jax'):
            continue
          try:
            imported = importlib.import_module(module)
          except ImportError:
            missing.append(f'{path}: {module}')
            continue
          if name and not hasattr(imported, name):
            try:
              importlib.import_module(f'{module}.{name}')
            except ImportError:
              missing.append(f'{path}: {module}.{name}')
  assert not missing, missing

"""The package's layers: imports run only down, without cycles (read with ast).

Layers, lowest first (docs/architecture.md): errors and config; data/;
report/ (pure rendering: it may import data.images and errors, nothing that
imports JAX); the paper's method at the top of inpaint_jax/; baselines/;
evaluation/; training/; serve/. A module may import modules of its own layer
or lower ones; imports inside functions count too.
"""

from __future__ import annotations

import ast
import functools
import os

import pytest

PACKAGE = 'inpaint_jax'
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = ('errors', 'config')
SUBPACKAGE_LAYERS = {'data': 1, 'report': 2, 'baselines': 4, 'evaluation': 5,
                     'training': 6, 'serve': 7}
TOP_LEVEL_LAYER = 3
# What report/ may import of the package besides report/ itself.
REPORT_MAY_IMPORT = ('inpaint_jax.data.images', 'inpaint_jax.errors')
# Libraries a module that renders reports must not load, even indirectly.
HEAVY = ('jax', 'jaxlib', 'flax', 'optax', 'orbax', 'tensorflow',
         'tensorflow_datasets')


def _modules() -> dict[str, str]:
  """Dotted module name -> file, for every module of the package."""
  found = {}
  for folder, dirs, files in os.walk(os.path.join(_ROOT, PACKAGE)):
    dirs[:] = sorted(d for d in dirs if d != '__pycache__')
    for name in sorted(files):
      if not name.endswith('.py'):
        continue
      path = os.path.join(folder, name)
      dotted = os.path.relpath(path, _ROOT)[:-3].replace(os.sep, '.')
      found[dotted.removesuffix('.__init__')] = path
  return found


MODULES = _modules()


@functools.cache
def _imports(module: str) -> frozenset[str]:
  """Every module `module` imports (anywhere in it), as dotted names."""
  with open(MODULES[module]) as f:
    tree = ast.parse(f.read(), MODULES[module])
  names = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      assert node.level == 0, f'{module}: use absolute imports'
      for alias in node.names:
        full = f'{node.module}.{alias.name}'
        names.add(full if full in MODULES else node.module)
  return frozenset(names)


def _internal(module: str) -> list[str]:
  return sorted(n for n in _imports(module) if n in MODULES)


def _layer(module: str) -> int:
  parts = module.split('.')[1:]
  if not parts:
    return 0
  if len(parts) == 1 and parts[0] in BASE:
    return 0
  if parts[0] in SUBPACKAGE_LAYERS:
    return SUBPACKAGE_LAYERS[parts[0]]
  assert not os.path.isdir(os.path.join(_ROOT, PACKAGE, parts[0])), (
      f'subpackage {parts[0]!r} has no layer: add it to SUBPACKAGE_LAYERS'
      ' (and to docs/architecture.md)')
  return TOP_LEVEL_LAYER


def test_every_layer_has_modules():
  layers = {_layer(m) for m in MODULES}
  assert layers >= {0, TOP_LEVEL_LAYER, *SUBPACKAGE_LAYERS.values()}


@pytest.mark.parametrize('module', sorted(MODULES))
def test_imports_run_down_the_layers(module):
  upward = [f'{name} (layer {_layer(name)})' for name in _internal(module)
            if _layer(name) > _layer(module)]
  assert not upward, (
      f'{module} (layer {_layer(module)}) imports from a higher layer:'
      f' {upward}')


def test_no_import_cycles():
  state = {}  # module -> 'open' while on the stack, 'done' after.
  cycles = []

  def visit(module, stack):
    state[module] = 'open'
    for name in _internal(module):
      if state.get(name) == 'open':
        cycles.append(stack[stack.index(name):] + [name])
      elif name not in state:
        visit(name, stack + [name])
    state[module] = 'done'

  for module in sorted(MODULES):
    if module not in state:
      visit(module, [module])
  assert not cycles, [' -> '.join(c) for c in cycles]


def _closure(module: str) -> set[str]:
  seen, todo = set(), [module]
  while todo:
    name = todo.pop()
    if name not in seen:
      seen.add(name)
      todo.extend(_internal(name))
  return seen


@pytest.mark.parametrize(
    'module', sorted(m for m in MODULES if _layer(m) == 2))
def test_report_imports_no_jax(module):
  others = [n for n in _internal(module)
            if _layer(n) != 2 and n not in REPORT_MAY_IMPORT]
  assert not others, (f'{module} imports {others}; report/ may import only'
                     f' {REPORT_MAY_IMPORT} of the package')
  heavy = {name: sorted(n for n in _imports(name)
                        if n.split('.')[0] in HEAVY)
           for name in _closure(module)}
  assert not any(heavy.values()), {k: v for k, v in heavy.items() if v}

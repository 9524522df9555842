"""Shared benchmark helpers: timing, machine info and peak, XLA FLOPs, output.

Every benchmark script uses these so that its numbers mean the same thing:

* `time_compiled`: ahead-of-time compilation (`jit(f).lower(...).compile()`)
  timed on its own, then the median of N calls of the compiled function, each
  ended with `jax.block_until_ready`.
* `time_call`: for callables that cannot be lowered (Python wrappers): first
  call (including compilation) and the median of N later calls.
* `matmul_peak`: FLOP/s of a large square matmul timed in the same run, the
  practical peak that the roofline ratios divide by.
* `xla_flops`: FLOPs of one call from XLA's cost analysis.
* `report`: a plain-text table on stdout and everything as JSON.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def block(tree: Any) -> Any:
  """Waits until every array of `tree` is computed."""
  return jax.block_until_ready(tree)


def median_time(fn: Callable[[], Any], repeats: int) -> float:
  """Median wall time of `repeats` calls of fn(), seconds (blocking)."""
  times = []
  for _ in range(max(repeats, 1)):
    start = time.perf_counter()
    block(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def time_call(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
  """(first call incl. compilation, median of `repeats` later calls), seconds."""
  start = time.perf_counter()
  block(fn())
  first = time.perf_counter() - start
  return first, median_time(fn, repeats)


def compile_fn(fn: Callable, *args, **kwargs) -> tuple[Any, float]:
  """(compiled executable, seconds to trace + lower + compile) of jit(fn).

  `fn` may already be jitted (static arguments go in `kwargs` then).
  """
  jitted = fn if hasattr(fn, 'lower') else jax.jit(fn)
  start = time.perf_counter()
  compiled = jitted.lower(*args, **kwargs).compile()
  return compiled, time.perf_counter() - start


def time_compiled(fn: Callable, args: Sequence[Any], repeats: int,
                  kwargs: dict[str, Any] | None = None,
                  ) -> tuple[float, float, Any]:
  """(compile seconds, median run seconds, compiled) of jit(fn)(*args).

  One untimed warm-up call runs between compilation and the timed calls.
  Static keyword arguments of an already jitted `fn` go in `kwargs`; the
  compiled executable is called with the positional `args` only.
  """
  compiled, compile_s = compile_fn(fn, *args, **(kwargs or {}))
  block(compiled(*args))
  return compile_s, median_time(lambda: compiled(*args), repeats), compiled


def cost_flops(compiled: Any) -> float | None:
  """FLOPs from a compiled executable's XLA cost analysis (None if absent).

  jax 0.4.x returned a list with one dict per computation, newer versions a
  dict; both are handled. XLA counts a while loop's body once, not once per
  iteration, so benchmarks analyse one loop step, not the loop.
  """
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get('flops')
  return float(flops) if flops and flops > 0 else None


def xla_flops(fn: Callable, *args, **kwargs) -> float | None:
  """FLOPs of one call of jit(fn)(*args) from XLA's cost analysis."""
  try:
    compiled, _ = compile_fn(fn, *args, **kwargs)
  except Exception:  # pylint: disable=broad-except
    return None
  return cost_flops(compiled)


def matmul_peak(size: int, dtype: Any = jnp.float32, repeats: int = 5) -> float:
  """Measured FLOP/s of a size x size @ size x size matmul in `dtype`.

  This is the machine's practical dense peak for that dtype (on CPU it uses
  all cores through XLA's Eigen / oneDNN GEMM), the denominator of the
  roofline ratios.
  """
  key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(key_a, (size, size), jnp.float32).astype(dtype)
  b = jax.random.normal(key_b, (size, size), jnp.float32).astype(dtype)
  _, seconds, _ = time_compiled(lambda x, y: x @ y, (a, b), repeats)
  return 2 * size**3 / seconds


def peaks(quick: bool) -> dict[str, float]:
  """float32 and bfloat16 matmul GFLOP/s (4096^2, or 2048^2 with quick)."""
  size = 2048 if quick else 4096
  result = {'matmul_size': size}
  for name, dtype in (('float32', jnp.float32), ('bfloat16', jnp.bfloat16)):
    result[f'matmul_{name}_gflops'] = matmul_peak(size, dtype) / 1e9
  print(f'matmul {size}^2: float32 {result["matmul_float32_gflops"]:.1f}'
        f' GFLOP/s, bfloat16 {result["matmul_bfloat16_gflops"]:.1f} GFLOP/s',
        flush=True)
  return result


def _cpu_model() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
  """What the numbers were measured on."""
  device = jax.devices()[0]
  return {
      'date': datetime.datetime.now().astimezone().isoformat(
          timespec='seconds'),
      'jax': jax.__version__,
      'jaxlib': _jaxlib_version(),
      'numpy': np.__version__,
      'backend': jax.default_backend(),
      'device_kind': device.device_kind,
      'devices': jax.device_count(),
      'cpu_count': os.cpu_count(),
      'cpu_model': _cpu_model(),
      'platform': platform.platform(),
      'python': platform.python_version(),
  }


def _jaxlib_version() -> str | None:
  try:
    import jaxlib  # pylint: disable=g-import-not-at-top
    return jaxlib.__version__
  except Exception:  # pylint: disable=broad-except
    return None


def default_output(name: str) -> str:
  return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                      f'{name}.json')


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
  """Prints `columns` of `rows` as an aligned plain-text table."""
  widths = [max([len(c)] + [len(_fmt(r.get(c))) for r in rows])
            for c in columns]
  print(' | '.join(c.ljust(w) for c, w in zip(columns, widths)))
  print('-+-'.join('-' * w for w in widths))
  for r in rows:
    print(' | '.join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def report(name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
           output: str | None, extra: dict[str, Any] | None = None) -> None:
  """Prints a table of `columns` and writes machine, extra and rows as JSON."""
  print()
  print_table(rows, columns)
  path = output or default_output(name)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump({'benchmark': name, 'machine': machine(), **(extra or {}),
               'rows': list(rows)}, f, indent=2, default=_json_default)
  print(f'\nwritten to {path}')


def _json_default(value: Any) -> Any:
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return str(value)


def _fmt(value: Any) -> str:
  if value is None:
    return '-'
  if isinstance(value, bool):
    return 'yes' if value else ''
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)

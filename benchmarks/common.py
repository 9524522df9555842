"""Shared benchmark helpers: timing, machine peak, XLA FLOPs, table + JSON."""

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


def block(tree: Any) -> Any:
  return jax.block_until_ready(tree)


def time_call(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
  """(first call incl. compilation, median of `repeats` later calls), seconds."""
  start = time.perf_counter()
  block(fn())
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    block(fn())
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def xla_flops(jitted: Callable, *args, **kwargs) -> float | None:
  """FLOPs of one call from XLA's cost analysis (None if unavailable).

  Note: XLA counts a while loop's body once, not per iteration.
  """
  try:
    analysis = jitted.lower(*args, **kwargs).compile().cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get('flops')
  return float(flops) if flops else None


def matmul_peak(size: int, dtype=jnp.float32, repeats: int = 5) -> float:
  """Measured FLOP/s of a size x size matmul (the machine's practical peak)."""
  a = jnp.ones((size, size), dtype)
  f = jax.jit(lambda x, y: x @ y)
  _, seconds = time_call(lambda: f(a, a), repeats)
  return 2 * size**3 / seconds


def machine() -> dict[str, Any]:
  return {
      'date': datetime.datetime.now().isoformat(timespec='seconds'),
      'jax': jax.__version__,
      'backend': jax.default_backend(),
      'device': jax.devices()[0].device_kind,
      'devices': jax.device_count(),
      'cpus': os.cpu_count(),
      'platform': platform.platform(),
  }


def report(name: str, rows: Sequence[dict[str, Any]], columns: Sequence[str],
           output: str | None, extra: dict[str, Any] | None = None) -> None:
  """Prints a plain-text table of `columns` and writes everything as JSON."""
  widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
  print(' | '.join(c.ljust(w) for c, w in zip(columns, widths)))
  print('-+-'.join('-' * w for w in widths))
  for r in rows:
    print(' | '.join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))
  path = output or os.path.join(os.path.dirname(__file__), 'results',
                                f'{name}.json')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump({'benchmark': name, 'machine': machine(), **(extra or {}),
               'rows': list(rows)}, f, indent=2)
  print(f'\nwritten to {path}')


def _fmt(value: Any) -> str:
  if value is None:
    return '-'
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)

"""Charts as PNG files, drawn with matplotlib's Agg renderer.

`line_chart` draws curves (validation PSNR against training step or wall
time); `interval_chart` draws scores per category with their confidence
intervals (PSNR of every method per mask type).

No pyplot: each chart is its own `matplotlib.figure.Figure` printed by a
`FigureCanvasAgg`, so the process-wide pyplot state and backend that a
notebook or another caller uses are left alone, and charts can be drawn from
any thread.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Series: {name: [(x, y), ...]}.
Series = Mapping[str, Sequence[tuple[float, float]]]
# One panel of `interval_chart`: (title, categories, {series name:
# {category: (value, 95 % half-width or nan)}}).
IntervalPanel = tuple[str, Sequence[str],
                      Mapping[str, Mapping[str, tuple[float, float]]]]
DPI = 100
_REFERENCE_STYLES = ('--', ':', '-.')


def _finite(*values: float) -> bool:
  return all(math.isfinite(v) for v in values)


def _save(figure: Figure, path: str) -> str:
  """Prints `figure` to the PNG `path` (folders made); returns the path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  FigureCanvasAgg(figure).print_png(path, metadata={'Software': None})
  return path


def line_chart(path: str, series: Series, *, x_label: str = '',
               y_label: str = '', title: str = '',
               references: Mapping[str, float] | None = None,
               integer_x: bool = False,
               size: tuple[int, int] = (640, 400)) -> str:
  """A line chart as PNG: one line with markers per named series.

  Args:
    path: the PNG to write (its folder is made if missing).
    series: {name: [(x, y), ...]}; each line joins its points in x order.
      Non-finite points are left out.
    x_label, y_label, title: axis labels and an optional title.
    references: {name: y} drawn as dashed horizontal lines across the chart
      (e.g. the score of a simple baseline).
    integer_x: ticks on whole numbers only (e.g. training steps).
    size: (width, height) of the PNG in pixels.

  Returns:
    `path`.

  Raises:
    ValueError: no series has a finite point.
  """
  lines = {name: sorted((x, y) for x, y in points if _finite(x, y))
           for name, points in series.items()}
  if not any(lines.values()):
    raise ValueError('line_chart needs at least one finite point.')
  figure = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI,
                  layout='constrained')
  axes = figure.add_subplot()
  for name, points in lines.items():
    if points:
      xs, ys = zip(*points)
      axes.plot(xs, ys, marker='o', markersize=3.5, linewidth=1.5,
                label=name)
  for i, (name, y) in enumerate((references or {}).items()):
    if _finite(y):
      axes.axhline(y, color='0.45', linewidth=1.2, label=name,
                   linestyle=_REFERENCE_STYLES[i % len(_REFERENCE_STYLES)])
  if integer_x:
    axes.xaxis.set_major_locator(MaxNLocator(integer=True,
                                             steps=[1, 2, 2.5, 5, 10]))
  axes.set_xlabel(x_label)
  axes.set_ylabel(y_label)
  if title:
    axes.set_title(title)
  axes.grid(True, color='0.9')
  # Under the axes, so that it never hides a point: rows of up to 3.
  count = len(axes.get_legend_handles_labels()[1])
  figure.legend(loc='outside lower center', fontsize='small', frameon=False,
                ncols=math.ceil(count / math.ceil(count / 3)))
  return _save(figure, path)


def interval_chart(path: str, panels: Sequence[IntervalPanel], *,
                   y_label: str = '', width: int = 720,
                   panel_height: int = 300) -> str:
  """Scores per category with 95 % intervals, one panel above the other.

  In each panel the categories (e.g. mask types) are spread along x, each
  series (e.g. a method) is one coloured point per category with its
  interval as an error bar, beside the other series; one legend of the
  series serves every panel.

  Args:
    path: the PNG to write (its folder is made if missing).
    panels: (title, categories in order, {series: {category: (value,
      half-width)}}); a category a series lacks is left empty, a non-finite
      half-width draws the point without a bar. Series are drawn in the
      order of the first panel that has them.
    y_label: the y axis label of every panel.
    width, panel_height: pixels of the PNG and of each panel.

  Returns:
    `path`.

  Raises:
    ValueError: no panel, or no finite value in any panel.
  """
  values = [v for _, _, data in panels for by_category in data.values()
            for v, _ in by_category.values() if _finite(v)]
  if not values:
    raise ValueError('interval_chart needs at least one finite value.')
  names = list(dict.fromkeys(n for _, _, data in panels for n in data))
  colours = {n: f'C{i % 10}' for i, n in enumerate(names)}
  figure = Figure(figsize=(width / DPI, panel_height * len(panels) / DPI),
                  dpi=DPI, layout='constrained')
  shown = {}
  for axes, (title, categories, data) in zip(
      figure.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
    spread = 0.7 / max(len(data), 1)
    for j, (name, by_category) in enumerate(data.items()):
      points = [(k + (j - (len(data) - 1) / 2) * spread, v, h)
                for k, c in enumerate(categories) if c in by_category
                for v, h in [by_category[c]] if _finite(v)]
      if not points:
        continue
      xs, ys, halves = zip(*points)
      shown[name] = axes.errorbar(
          xs, ys, yerr=[h if _finite(h) else math.nan for h in halves],
          fmt='o', markersize=4.5, capsize=2.5, elinewidth=1.2,
          color=colours[name])
    axes.set_xticks(range(len(categories)), categories)
    axes.set_xlim(-0.5, len(categories) - 0.5)
    axes.set_ylabel(y_label)
    axes.set_title(title, loc='left')
    axes.grid(True, axis='y', color='0.9')
  figure.legend([shown[n] for n in names if n in shown],
                [n for n in names if n in shown], loc='outside right upper')
  return _save(figure, path)

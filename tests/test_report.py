"""Tests for inpaint_jax.report: no JAX, and the matplotlib charts."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from inpaint_jax.report import charts

_ML_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax')


def test_importing_the_report_package_loads_no_jax():
  # A fresh interpreter: this one has imported JAX for other tests.
  script = (
      'import importlib, json, pkgutil, sys\n'
      'import inpaint_jax.report as report\n'
      'names = [m.name for m in pkgutil.iter_modules(report.__path__)]\n'
      'for name in names:\n'
      '  importlib.import_module("inpaint_jax.report." + name)\n'
      'print(json.dumps([names, sorted(sys.modules)]))\n')
  done = subprocess.run([sys.executable, '-c', script], capture_output=True,
                        text=True, check=True)
  names, loaded = json.loads(done.stdout.strip().splitlines()[-1])
  assert {'charts', 'figures', 'results_page', 'tables'} <= set(names)
  assert not [m for m in loaded if m.split('.')[0] in _ML_PACKAGES]


def _pixels(path):
  with Image.open(path) as image:
    return np.asarray(image.convert('RGB'))


def test_line_chart_draws_each_series_and_the_references(tmp_path):
  path = charts.line_chart(
      str(tmp_path / 'sub' / 'chart.png'),
      {'a': [(0, 1.0), (10, 2.0)], 'b': [(5, 1.5), (7, float('nan'))]},
      references={'baseline': 1.2}, x_label='step', y_label='dB',
      integer_x=True)
  pixels = _pixels(path)
  assert pixels.shape == (400, 640, 3)
  # Matplotlib's first two colours, C0 and C1: a line each (and the legend).
  blue = np.all(pixels == (31, 119, 180), axis=-1)
  orange = np.all(pixels == (255, 127, 14), axis=-1)
  assert blue.sum() > 100 and orange.sum() > 20
  small = charts.line_chart(str(tmp_path / 'small.png'), {'a': [(0, 1)]},
                            size=(320, 200))
  assert _pixels(small).shape == (200, 320, 3)


def test_line_chart_refuses_no_finite_point(tmp_path):
  path = str(tmp_path / 'chart.png')
  with pytest.raises(ValueError, match='finite point'):
    charts.line_chart(path, {})
  with pytest.raises(ValueError, match='finite point'):
    charts.line_chart(path, {'a': [], 'b': [(1.0, float('inf'))]})
  assert not os.path.exists(path)


def test_interval_chart_has_a_panel_per_group(tmp_path):
  panel = ('svhn', ['center', 'half'],
           {'ours': {'center': (25.0, 0.5), 'half': (19.0, float('nan'))},
            'TV': {'center': (22.0, 0.4)}})
  one = charts.interval_chart(str(tmp_path / 'one.png'), [panel],
                              y_label='PSNR (dB)')
  two = charts.interval_chart(str(tmp_path / 'two.png'), [panel, panel],
                              width=500, panel_height=200)
  assert _pixels(one).shape == (300, 720, 3)
  assert _pixels(two).shape == (400, 500, 3)
  with pytest.raises(ValueError, match='finite value'):
    charts.interval_chart(str(tmp_path / 'none.png'), [])
  with pytest.raises(ValueError, match='finite value'):
    charts.interval_chart(str(tmp_path / 'none.png'),
                          [('a', ['x'], {'m': {'x': (float('nan'), 1.0)}})])

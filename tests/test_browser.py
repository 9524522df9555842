"""The web page in a real browser: headless Chromium driven by Playwright.

Loads the page served by inpaint_jax.serve (the tiny model, small photos),
paints a hole with the mouse (or picks a mask kind on an uploaded photo), runs
a short z-search and reads the result PNG back: it must equal the photo
outside the hole and differ from it inside. Marked `requires_chromium`:
skipped, saying why, when Playwright or Chromium is missing (Debian:
`apt-get install chromium`; `pip install -e '.[test]'` installs Playwright).
The page is driven with the functions of docs/make_screenshot.py, which makes
docs/web.md's picture.
"""

import importlib.util
import io
import json
import os
import urllib.request

import numpy as np
from PIL import Image
import pytest

from inpaint_jax import checkpoints
from inpaint_jax.serve import app as app_lib
from inpaint_jax.serve import handler
from tests.conftest import CHROMIUM

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.requires_chromium


def _load_driver():
  spec = importlib.util.spec_from_file_location(
      'make_screenshot', os.path.join(_ROOT, 'docs', 'make_screenshot.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


driver = _load_driver()

# A noise photo (40 wide, 48 high): no fill, blended or not, recreates it.
PHOTO = np.random.default_rng(0).integers(0, 256, (48, 40, 3), np.uint8)


@pytest.fixture(scope='module')
def url(tmp_path_factory, tiny_config, tiny_variables):
  root = tmp_path_factory.mktemp('browser')
  checkpoints.save_model(str(root / 'models' / 'celeba16'), tiny_config,
                         *tiny_variables)
  test_dir = root / 'data' / 'celeba' / 'test'
  test_dir.mkdir(parents=True)
  Image.fromarray(PHOTO).save(test_dir / '000.png')
  with handler.running(app_lib.App(str(root / 'models'),
                                   str(root / 'data'))) as base:
    yield base


@pytest.fixture(scope='module')
def page():
  # Imported here: without Playwright the marker skips the module's tests.
  from playwright import sync_api  # pylint: disable=g-import-not-at-top
  with sync_api.sync_playwright() as playwright:
    browser = driver.launch(playwright, CHROMIUM)
    try:
      yield browser.new_page(viewport={'width': 1280, 'height': 900})
    finally:
      browser.close()


def fetch_png(url: str) -> np.ndarray:
  with urllib.request.urlopen(url, timeout=30) as response:
    return np.asarray(Image.open(io.BytesIO(response.read())))


def check_only_the_hole_changed(url, job, photo):
  """The full-size result equals `photo` outside the hole, not inside."""
  assert job['status'] == 'done', job
  result = fetch_png(url + job['results']['result']['url'])
  known = fetch_png(url + job['results']['mask']['url']) > 127
  assert result.shape == photo.shape
  assert 0 < (~known).sum() < known.size
  np.testing.assert_array_equal(result[known], photo[known])
  changed = np.any(result != photo, axis=-1)
  assert changed[~known].mean() > 0.5  # G's fill is not the photo.
  return known


def test_paint_a_hole_on_a_test_image_and_inpaint(url, page):
  job = driver.inpaint_on_page(page, url, index=0, iterations=4,
                               stroke=((0.4, 0.5), (0.6, 0.5)), brush=60)
  known = check_only_the_hole_changed(url, job, PHOTO)
  assert job['settings']['mask'] == 'drawn'
  assert not known[24, 20]  # The stroke's middle is in the hole ...
  assert known[0, 0] and known[47, 39] and known[24, 2]  # ... not the rest.
  # What the page showed: the progress bar full, G(z) and the four results.
  assert page.evaluate("document.getElementById('bar').value") == 4
  for name in ('preview', 'res-masked', 'res-generated', 'res-blended',
               'res-result'):
    assert page.evaluate(
        f"document.getElementById('{name}').naturalWidth") > 0, name


def test_upload_a_photo_and_use_a_mask_kind(url, page, tmp_path):
  photo = np.ascontiguousarray(PHOTO[::-1, :33])  # 33 x 48, another size
  path = tmp_path / 'mine.png'
  Image.fromarray(photo).save(path)
  page.goto(url)
  page.wait_for_function("!document.getElementById('load-test').disabled")
  page.set_input_files('#upload', str(path))
  page.wait_for_function("!document.getElementById('box').hidden")
  page.select_option('#mask-kind', 'center')
  page.wait_for_function(  # The kind's hole is shown on the photo.
      "(() => { const c = document.getElementById('overlay');"
      " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height)"
      ".data; for (let i = 3; i < d.length; i += 4) if (d[i]) return true;"
      " return false; })()")
  page.fill('#iterations', '3')
  page.click('#inpaint')
  page.wait_for_function("!document.getElementById('results').hidden"
                         " || !document.getElementById('error').hidden",
                         timeout=120_000)
  assert page.locator('#error').is_hidden(), page.locator('#error').inner_text()
  assert page.locator('#full-size').inner_text() == '33×48'
  href = page.evaluate("document.getElementById('dl-result').href")
  job_url = href.rsplit('/', 1)[0].replace(url, '')
  with urllib.request.urlopen(url + job_url, timeout=30) as response:
    job = json.load(response)
  assert job['settings']['mask'] == 'center'
  assert page.evaluate("document.getElementById('dl-result').download") == (
      'mine_result.png')
  check_only_the_hole_changed(url, job, photo)


def test_a_bad_request_shows_the_servers_message(url, page):
  page.goto(url)
  page.wait_for_function("!document.getElementById('load-test').disabled")
  page.click('#load-test')
  page.wait_for_function("!document.getElementById('box').hidden")
  box = page.locator('#overlay').bounding_box()
  page.mouse.click(box['x'] + 3, box['y'] + 3)  # Outside the model's square.
  page.fill('#iterations', '6000')
  page.click('#inpaint')
  page.wait_for_function("!document.getElementById('error').hidden")
  assert 'iterations' in page.locator('#error').inner_text()
  page.fill('#iterations', '3')
  page.click('#inpaint')
  page.wait_for_function(
      "document.getElementById('error').innerText.includes('outside')")

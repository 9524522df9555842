r"""Makes docs/serve.png, docs/web.md's picture of the web page, in a browser.

  python docs/make_screenshot.py                 # -> docs/serve.png
  python docs/make_screenshot.py --output=/tmp/page.png --iterations=50

Starts the page's server (inpaint_jax.serve) in a thread with the shipped
models, opens it in headless Chromium with Playwright, loads a CelebA test
image, paints a hole over the eyes with the mouse, runs the z-search and
saves a screenshot once the result is shown. Needs `pip install playwright`
and a Chromium (Debian: `apt-get install chromium`, at /usr/bin/chromium;
else `playwright install chromium` and --chromium=).

`tests/test_browser.py` drives the page with the same functions.
"""

import argparse
import os
import sys
import time

# Chromium's flags for a machine without a network: without the background
# networking flags it keeps trying to reach Google's services.
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu',
                 '--disable-quic', '--no-first-run',
                 '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(playwright, executable: str | None = CHROMIUM):
  """A headless Chromium browser (Playwright), without network chatter."""
  return playwright.chromium.launch(
      executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def inpaint_on_page(page, base_url: str, *, index: int = 0,
                    iterations: int = 20,
                    stroke: tuple[tuple[float, float], ...] = (
                        (0.35, 0.45), (0.65, 0.45)),
                    brush: int = 28, timeout_s: float = 300.0) -> dict:
  """Loads test image `index`, paints `stroke`, runs the search, waits.

  Args:
    page: a Playwright page.
    base_url: the server, e.g. 'http://127.0.0.1:8000'.
    index: the test image of the chosen model's data set.
    iterations: z-search iterations.
    stroke: points the mouse paints through (button down), as fractions
      (x, y) of the photo's width and height.
    brush: the brush slider's value (display pixels).
    timeout_s: how long to wait for the result.

  Returns:
    The job's JSON as the page last polled it (status 'done'), with the
    result image URLs.

  Raises:
    AssertionError: the page shows an error instead of a result.
  """
  page.goto(base_url)
  page.wait_for_function(
      "document.getElementById('model').options.length > 0"
      " && !document.getElementById('load-test').disabled")
  page.fill('#test-index', str(index))
  page.click('#load-test')
  page.wait_for_function("!document.getElementById('box').hidden")
  page.locator('#brush').fill(str(brush))
  box = page.locator('#overlay').bounding_box()
  points = [(box['x'] + fx * box['width'], box['y'] + fy * box['height'])
            for fx, fy in stroke]
  page.mouse.move(*points[0])
  page.mouse.down()
  for point in points[1:]:
    page.mouse.move(*point, steps=12)
  page.mouse.up()
  page.fill('#iterations', str(iterations))
  page.click('#inpaint')
  page.wait_for_function(
      "!document.getElementById('results').hidden"
      " || !document.getElementById('error').hidden",
      timeout=timeout_s * 1000)
  error = page.locator('#error')
  assert error.is_hidden(), f'the page shows an error: {error.text_content()}'
  page.wait_for_function(  # Every result image has loaded.
      "[...document.querySelectorAll('#results img')]"
      ".every((img) => img.complete && img.naturalWidth > 0)")
  job_url = page.evaluate(
      "document.getElementById('dl-result').getAttribute('href')")
  return page.evaluate(
      'async (url) => (await fetch(url)).json()',
      job_url.rsplit('/', 1)[0])


def main() -> int:
  """Writes the screenshot; returns the exit status."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--output', default=os.path.join(_ROOT, 'docs',
                                                       'serve.png'))
  parser.add_argument('--models_dir', default=os.path.join(_ROOT, 'models'))
  parser.add_argument('--data_dir', default=None,
                      help='Data root (default: as the experiments).')
  parser.add_argument('--index', type=int, default=0,
                      help='CelebA test image to inpaint.')
  parser.add_argument('--iterations', type=int, default=300)
  parser.add_argument('--chromium', default=CHROMIUM)
  args = parser.parse_args()
  sys.path.insert(0, _ROOT)
  from playwright.sync_api import sync_playwright
  from inpaint_jax.serve import app as app_lib
  from inpaint_jax.serve import handler
  start = time.time()
  with handler.running(app_lib.App(args.models_dir, args.data_dir)) as url:
    with sync_playwright() as playwright:
      browser = launch(playwright, args.chromium)
      try:
        page = browser.new_page(viewport={'width': 1280, 'height': 860})
        job = inpaint_on_page(
            page, url, index=args.index, iterations=args.iterations,
            stroke=((0.36, 0.51), (0.62, 0.51)), brush=44)
        # The whole page in the viewport: a full_page screenshot taller than
        # the viewport drops the painted canvas in headless Chromium.
        height = page.evaluate('document.documentElement.scrollHeight')
        page.set_viewport_size({'width': 1280, 'height': height})
        page.screenshot(path=args.output)
      finally:
        browser.close()
  print(f"Wrote {args.output} (job: {job['settings']}, loss"
        f" {job['loss']:.4f}, {time.time() - start:.0f} s in all).")
  return 0


if __name__ == '__main__':
  sys.exit(main())

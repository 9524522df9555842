"""A local web page to draw a mask on a photo and inpaint it (issue #14).

`python -m experiments.serve` serves it. Modules, each importing only those
above it in this list:

  fields    a request's fields decoded and checked (data URLs, photo, mask,
            numbers, crop, mask kind) and PNGs / data URLs for the replies
  registry  the models under --models_dir (ModelRegistry) and the test
            photos of their data sets (TestImages)
  jobs      Job and JobQueue: the thread that runs the z-searches one at a
            time (`inpaint.search_progressive`), unguessable ids, ended
            jobs forgotten after a while, NotFound and Busy
  app       App: the JSON API, one method per route; POST /api/inpaint
            parsed (parse_settings), checked (decode_images), then queued
  handler   the HTTP routes (Handler), size and rate Limits (RateLimiter),
            Server, make_server, running and the page's files (web_file:
            package data web/ = HTML, JS, CSS)
"""

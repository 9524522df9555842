r"""Time to quality: how soon does the z-search reach the paper's result?

  python -m benchmarks.time_to_quality                    # 3 data sets x 4 masks
  python -m benchmarks.time_to_quality --quick            # CelebA centre, 8 images
  python -m benchmarks.time_to_quality --datasets=svhn --masks=half

Per (data set, mask), on the validation slice (the last 256 train images,
never trained on; test is never used), with the same images, masks and
initial latents for every method:

* the PSNR curve of the paper's procedure (Adam, 1500 iterations), from
  `inpaint.search_progressive`: G(z) Poisson-blended and scored every
  --every steps. The quality target is its PSNR after 1500 iterations minus
  0.1 dB (--tolerance_db);
* paper: `inpaint.search` for 1500 iterations, then Poisson blending, timed;
* fixed K (oracle): the same for the fewest iterations K (a multiple of
  --every) whose mean PSNR on the curve reaches the target: what a shorter
  fixed search could give, chosen on these very images (an upper bound);
* early stop T: `SearchConfig(stop_tolerance=T, check_every=--every)`: each
  image stops once its loss fell by less than the fraction T over the last
  --every steps, and the batch shrinks (`inpaint.search`), timed the same way;
* with --encoder_dirs (beyond the paper, issue #12): 'encoder + fixed K' for
  each K of --encoder_iterations (0: the encoder's z alone) and 'encoder +
  early stop T' for each T of --encoder_stop_tolerances: the search starts
  from the encoder's predicted z (`encoder.initial_latents`; other restarts
  random); the prediction is timed with the search.

--nocurve skips the curve and the oracle row (the target is then the paper
row's PSNR - --tolerance_db: the same number, as the curve's last point is
the same search).

Per row: mean PSNR, whether it reaches the target, seconds (search + one
blend, compilation excluded: see `timed_search`), images/s, speed-up over the
paper's procedure, mean and largest iterations per image; the paper row's
JSON also holds the curve and the per-image loss and PSNR curves. Models:
--model_dirs (default the shipped models/<data set>64) with the card's window
(reproduce.CARD_WINDOWS).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from absl import app
from absl import flags

from benchmarks import common
from inpaint_jax import blending
from inpaint_jax import checkpoints
from inpaint_jax import encoder
from inpaint_jax.evaluation import evaluate
from inpaint_jax import inpaint
from inpaint_jax import latent_search
from inpaint_jax import masks
from inpaint_jax.data import input_pipeline
from inpaint_jax import metrics
from inpaint_jax.evaluation import reproduce
from inpaint_jax.config import SearchConfig
from inpaint_jax.models import Discriminator, Generator

_QUICK = flags.DEFINE_bool('quick', False,
                           'CelebA centre only, 8 images, 300 iterations.')
_DATASETS = flags.DEFINE_list('datasets', list(input_pipeline.DATASETS),
                              'Data sets.')
_MASKS = flags.DEFINE_list('masks', list(masks.KINDS), 'Mask types.')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 32, 'Validation images.',
                                   lower_bound=1)
_ITERATIONS = flags.DEFINE_integer('iterations', 1500,
                                   "The paper's iteration count.",
                                   lower_bound=1)
_EVERY = flags.DEFINE_integer('every', 25, 'Iterations between PSNR checks.',
                              lower_bound=1)
_TOLERANCE = flags.DEFINE_float('tolerance_db', 0.1,
                                'How far below the paper PSNR counts as'
                                ' reached.')
_MODEL_DIRS = flags.DEFINE_string(
    'model_dirs', 'models/{dataset}64',
    'Model directory pattern; {dataset} is replaced.')
_STOP_TOLERANCES = flags.DEFINE_list(
    'stop_tolerances', ['0.03', '0.01', '0.003'],
    'Early stopping (SearchConfig.stop_tolerance) values to time, checked'
    ' every --every steps.')
_ENCODER_DIRS = flags.DEFINE_string(
    'encoder_dirs', '', 'Encoder directory pattern ({dataset} is replaced),'
    ' e.g. models/{dataset}64_encoder; empty: no encoder rows.')
_ENCODER_ITERATIONS = flags.DEFINE_list(
    'encoder_iterations', ['0', '25', '50', '100', '200'],
    'Fixed iteration counts K of the "encoder + fixed K" rows.')
_ENCODER_STOP_TOLERANCES = flags.DEFINE_list(
    'encoder_stop_tolerances', ['0.03', '0.01', '0.003'],
    'Early stopping values of the "encoder + early stop T" rows.')
_CURVE = flags.DEFINE_bool('curve', True, 'Compute the paper\'s PSNR curve'
                           ' and the oracle row.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'Data root (default:'
                                ' $INPAINT_DATA_DIR, else ../shared/data).')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/time_to_quality.json).')


def psnr_curve(model_dir: str, images: np.ndarray, image_masks: np.ndarray,
               config: SearchConfig, every: int) -> dict[str, np.ndarray]:
  """PSNR (blended result vs original) of the z-search every `every` steps.

  Args:
    model_dir: the DCGAN (checkpoints.restore_model).
    images: (N, R, R, 3) originals in [-1, 1].
    image_masks: (N, R, R, 1), 1 = known pixel.
    config: the search settings (config.iterations is the end).
    every: steps per chunk.

  Returns:
    {'steps': (T,), 'psnr': (T, N) in dB, 'loss': (T, N) the search loss,
    'search_seconds': (T,) cumulative
    compiled search time, 'blend_seconds': one blend of the batch}.
  """
  model_config, g_vars, d_vars = checkpoints.restore_model(model_dir)
  generator, discriminator = Generator(model_config), Discriminator(
      model_config)
  masked = images * image_masks
  key = jax.random.split(jax.random.PRNGKey(0))[1]
  run = lambda cfg: inpaint.search_progressive(
      generator, discriminator, g_vars, d_vars, masked, image_masks, key, cfg,
      every=every)
  warm_config = dataclasses.replace(
      config, iterations=min(every, config.iterations))
  for warm in run(warm_config):  # compiles the chunk: untimed
    common.block(warm.generated)
  blend = lambda g: blending.poisson_blend(g, masked, image_masks)
  common.block(blend(warm.generated))
  steps, psnr, loss, seconds = [], [], [], []
  elapsed, blend_seconds = 0.0, []
  start = time.perf_counter()
  for report in run(config):
    common.block(report.generated)
    elapsed += time.perf_counter() - start
    blend_start = time.perf_counter()
    blended = common.block(blend(report.generated))
    blend_seconds.append(time.perf_counter() - blend_start)
    steps.append(report.step)
    seconds.append(elapsed)
    psnr.append(np.asarray(metrics.psnr(np.clip(blended, -1, 1), images)))
    loss.append(np.asarray(report.loss))
    start = time.perf_counter()
  return {'steps': np.asarray(steps), 'psnr': np.stack(psnr),
          'loss': np.stack(loss),
          'search_seconds': np.asarray(seconds),
          'blend_seconds': float(np.median(blend_seconds))}


def timed_search(model_dir: str, images: np.ndarray,
                 image_masks: np.ndarray, config: SearchConfig,
                 encoder_dir: str | None = None
                 ) -> tuple[float, np.ndarray, np.ndarray]:
  """(seconds, PSNR (N,), iterations run (N,)) of the z-search + one blend.

  Compilation is left out: a fixed-length search is
  `latent_search.search_latents` compiled ahead of time, then timed; an early-stopped one (which compiles
  one chunk per batch size the batch shrinks through) runs once untimed,
  then `inpaint.search` is timed. With `encoder_dir` the search starts from
  the encoder's latents (`encoder.initial_latents`, compiled by an untimed
  call), whose prediction is inside the timed span.
  """
  model_config, g_vars, d_vars = checkpoints.restore_model(model_dir)
  generator, discriminator = Generator(model_config), Discriminator(
      model_config)
  masked = images * image_masks
  key = jax.random.split(jax.random.PRNGKey(0))[1]
  if encoder_dir:
    loaded = encoder.load_for(encoder_dir, model_config, model_dir)
    start_latents = lambda: encoder.initial_latents(
        loaded, masked, image_masks, key, config.restarts)
  else:
    start_latents = lambda: inpaint.initial_latents(
        key, len(images), config.restarts, model_config.z_dim)
  z0 = common.block(start_latents())
  if config.stop_tolerance > 0:
    search = lambda: inpaint.search(generator, discriminator, g_vars, d_vars,
                                    masked, image_masks, key, config,
                                    initial_z=start_latents())
    common.block(search().generated)
  else:
    compiled, _ = common.compile_fn(
        latent_search.search_latents, g_vars, d_vars, masked, image_masks, z0,
        generator=generator, discriminator=discriminator, config=config)
    search = lambda: inpaint.SearchResult(
        **compiled(g_vars, d_vars, masked, image_masks, start_latents()))
  blend = lambda g: blending.poisson_blend(g, masked, image_masks)
  common.block(blend(masked))  # compiles the blend
  start = time.perf_counter()
  result = search()
  blended = common.block(blend(result.generated))
  seconds = time.perf_counter() - start
  psnr = np.asarray(metrics.psnr(np.clip(blended, -1, 1), images))
  steps = (np.full(len(images), config.iterations) if result.steps is None
           else np.asarray(result.steps))
  return seconds, psnr, steps


def cell(dataset: str, kind: str, num_images: int, iterations: int,
         every: int, tolerance_db: float, stop_tolerances: list[float],
         encoder_stop_tolerances: list[float] = ()) -> list[dict]:
  """The rows of one (data set, mask): the paper's procedure, the fewest
  iterations reaching its PSNR - tolerance_db, early stopping and, with
  --encoder_dirs, the searches from the encoder's z."""
  size = 64
  images, _ = input_pipeline.load_split(dataset, 'validation',
                                        data_dir=_DATA_DIR.value, size=size,
                                        limit=num_images)
  mask_key, _ = jax.random.split(jax.random.PRNGKey(0))
  image_masks = evaluate.make_masks(kind, None, len(images), size, mask_key)
  config = SearchConfig(iterations=iterations,
                        window=reproduce.CARD_WINDOWS[dataset])
  model_dir = _MODEL_DIRS.value.format(dataset=dataset)
  encoder_dir = _ENCODER_DIRS.value.format(dataset=dataset) or None
  runs = [(f'paper (Adam, {iterations})', config, None)]
  target, curve = None, None
  if _CURVE.value:
    curve = psnr_curve(model_dir, images, image_masks, config, every)
    mean = curve['psnr'].mean(axis=1)
    target = float(mean[-1]) - tolerance_db
    fewest = int(curve['steps'][int(np.argmax(mean >= target))])
    runs.append((f'fixed {fewest} (fewest reaching, oracle)',
                 dataclasses.replace(config, iterations=fewest), None))
  runs += [(f'early stop {tol:g}', dataclasses.replace(
      config, stop_tolerance=tol, check_every=every), None)
           for tol in stop_tolerances]
  if encoder_dir:
    runs += [(f'encoder + fixed {k}',
              dataclasses.replace(config, iterations=k), encoder_dir)
             for k in (int(k) for k in _ENCODER_ITERATIONS.value)]
    runs += [(f'encoder + early stop {tol:g}', dataclasses.replace(
        config, stop_tolerance=tol, check_every=every), encoder_dir)
             for tol in encoder_stop_tolerances]
  base = {'dataset': dataset, 'mask': kind, 'images': len(images)}
  rows, paper_seconds = [], None
  for method, run_config, run_encoder in runs:
    seconds, psnr, steps = timed_search(model_dir, images, image_masks,
                                        run_config, run_encoder)
    if paper_seconds is None:
      paper_seconds = seconds
      target = float(psnr.mean()) - tolerance_db if target is None else target
    rows.append({**base, 'target_psnr': target, 'method': method,
                 'psnr': float(psnr.mean()),
                 'reaches_target': bool(psnr.mean() >= target),
                 'seconds': seconds, 'images_per_s': len(images) / seconds,
                 'speedup': paper_seconds / seconds,
                 'mean_iterations': float(steps.mean()),
                 'max_iterations': int(steps.max())})
    print(f"{dataset} {kind} {method}: {rows[-1]['psnr']:.2f} dB,"
          f" {seconds:.1f} s, {rows[-1]['speedup']:.1f}x,"
          f" {rows[-1]['mean_iterations']:.0f} iterations", flush=True)
  if curve is not None:
    rows[0].update(curve_steps=curve['steps'].tolist(),
                   curve_psnr=[round(float(v), 3) for v in mean],
                   per_image_loss=curve['loss'].T.round(4).tolist(),
                   per_image_psnr=curve['psnr'].T.round(3).tolist())
  return rows


def main(argv):
  del argv
  if _QUICK.value:
    datasets, kinds, num, iterations = ['celeba'], ['center'], 8, 300
  else:
    datasets, kinds = _DATASETS.value, _MASKS.value
    num, iterations = _NUM_IMAGES.value, _ITERATIONS.value
  stop_tolerances = [float(t) for t in _STOP_TOLERANCES.value if t]
  encoder_stop_tolerances = [float(t) for t in
                             _ENCODER_STOP_TOLERANCES.value if t]
  rows = []
  for dataset in datasets:
    for kind in kinds:
      rows += cell(dataset, kind, num, iterations, _EVERY.value,
                   _TOLERANCE.value, stop_tolerances, encoder_stop_tolerances)
  common.report('time_to_quality', rows,
                columns=['dataset', 'mask', 'method', 'psnr',
                         'reaches_target', 'images_per_s', 'speedup',
                         'mean_iterations'],
                output=_OUTPUT.value,
                extra={'every': _EVERY.value, 'iterations': iterations,
                       'tolerance_db': _TOLERANCE.value,
                       'images': num, 'encoder_dirs': _ENCODER_DIRS.value})


if __name__ == '__main__':
  app.run(main)

r"""The paper's comparison, figures and docs/RESULTS.md: every method,
data set and mask.

  python -m experiments.reproduce --output_dir=results/reproduce

Runs ours (z-search + Poisson blending), the ablations without blending and
without the prior loss, the Context Encoder (--ce_model, trained with
experiments.train_context_encoder; a data set without one is skipped with a
note) and the TV, LR, NN and PM baselines and OpenCV's cv2.inpaint (Telea
and Navier-Stokes; where the optional extra opencv is installed) on the first
--num_images test images of each data set, with the same masks for every
method, and writes results.csv, table1.md (the paper's Table 1 beside ours),
table1_ssim.md, table_all.md and, for SVHN, table_semantic.md (the digit
classifier's accuracy on every method's results, --classifier) into
--output_dir, with one result folder
per (data set, mask, method) holding arrays.npz. From those it draws the
paper's figures into --figures_dir (inpaint_jax/report/figures.py) and writes
--results_page (docs/RESULTS.md: what ran, the tables, the figures and a
discussion computed from the numbers). 'ours' records its search every
--record_every steps (Fig. 3b). Killed, it resumes: run the same command
again; a finished (data set, mask, method) is not run again, so re-running
a finished command only redraws the tables, figures and page.

Beyond the paper, named with --methods only: mean_fill (the hole filled with
the known pixels' mean colour) and ours_average (the pixel mean of ours from
4 seeds, an estimate of the posterior mean that PSNR rewards over any single
plausible fill), and the refinements after the z-search (inpaint_jax/refine.py,
docs/inversion.md): ours_ilo (a search on an intermediate layer of G),
ours_finetune (G fine-tuned per image), ours_ilo_finetune (both) and
ours_ilo_average (ours_ilo from 4 seeds averaged), e.g.

  python -m experiments.reproduce --datasets=svhn --masks=half \
      --methods=ours --methods=ours_average --methods=mean_fill \
      --output_dir=results/average --figures_dir= --results_page=
"""

import dataclasses
import os
import shlex
import sys

from absl import flags

from experiments import _cli
from inpaint_jax.evaluation import semantic as semantic_lib
from inpaint_jax.report import figures
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks as masks_lib
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.evaluation import reproduce
from inpaint_jax.report import results_page
from inpaint_jax.report import tables
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_DATASETS = flags.DEFINE_multi_enum('datasets', list(input_pipeline.DATASETS),
                                    input_pipeline.DATASETS, 'Data sets.')
_MASKS = flags.DEFINE_multi_enum('masks', list(masks_lib.KINDS),
                                 masks_lib.KINDS, 'Mask types.')
_METHODS = flags.DEFINE_multi_enum(
    'methods', list(reproduce.METHODS),
    reproduce.METHODS + reproduce.EXTRA_METHODS,
    'Methods to compare (mean_fill, ours_average and the ours_ilo*/'
    'ours_finetune refinements, beyond the paper, only'
    ' when named).')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 128, 'Test images per cell.',
                                   lower_bound=1)
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per batch.',
                              lower_bound=1)
_MODELS_DIR = flags.DEFINE_string(
    'models_dir', os.path.join(_PROJECT_ROOT, 'models'),
    'Folder holding <dataset>64 model directories.')
_CE_MODEL = flags.DEFINE_string(
    'ce_model', '{models_dir}/{dataset}64_ce',
    'Context Encoder model directory of each data set; {models_dir} and'
    ' {dataset} are filled in. A data set without one skips the ce method.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/reproduce',
                                  'Where tables and per-cell results go.')
_FIGURES_DIR = flags.DEFINE_string(
    'figures_dir', os.path.join(_PROJECT_ROOT, 'docs', 'figures'),
    'Where the figures (PNG, and fig3b_search.gif) go; empty: none.')
_RESULTS_PAGE = flags.DEFINE_string(
    'results_page', os.path.join(_PROJECT_ROOT, 'docs', 'RESULTS.md'),
    'The results page to write (figures linked relative to its folder);'
    ' empty: none.')
_RECORD_EVERY = flags.DEFINE_integer(
    'record_every', None, "Record G(z) every N steps of 'ours' (not the"
    ' ablations) for Fig. 3b and search.gif; default: --iterations //'
    f' {reproduce.DEFAULT_FRAMES} (0 with --stop_tolerance); 0: off.',
    lower_bound=0)
_DATA_DIR = _cli.define_data_dir_flag()
_CLASSIFIER = _cli.define_classifier_flag()
_SEARCH_CONFIG = _cli.define_search_flags()
flags.adopt_module_key_flags(_cli)


def _in_project(path: str) -> str:
  """`path` relative to the project when it lies inside it (for the page)."""
  relative = os.path.relpath(os.path.abspath(path), _PROJECT_ROOT)
  return path if relative.startswith('..') else relative


def _check_outputs() -> None:
  """Refuses unusable output paths and --ce_model patterns before any work."""
  output_dirs.check_output_dir(_OUTPUT_DIR.value, '--output_dir')
  if _FIGURES_DIR.value:
    output_dirs.check_output_dir(_FIGURES_DIR.value, '--figures_dir')
  if _RESULTS_PAGE.value:
    _cli.check_output_file(_RESULTS_PAGE.value, '--results_page')
  try:
    _CE_MODEL.value.format(models_dir='', dataset='')
  except (KeyError, IndexError, ValueError):
    raise InputError(f'--ce_model={_CE_MODEL.value}: only {{models_dir}} and'
                     ' {dataset} may be filled in (write other braces as {{'
                     ' and }}).') from None


def main(argv):
  del argv
  search_config = _SEARCH_CONFIG()
  record_every = (reproduce.default_record_every(search_config)
                  if _RECORD_EVERY.value is None else _RECORD_EVERY.value)
  # Refuses recording with early stopping now, not after hours of baselines.
  dataclasses.replace(search_config, record_every=record_every)
  _check_outputs()
  rows, described = [], {}
  for dataset in _DATASETS.value:
    model_dir = os.path.join(_MODELS_DIR.value, f'{dataset}64')
    if not flags.FLAGS['window'].present:  # each model's card window
      search_config = dataclasses.replace(
          search_config, window=reproduce.CARD_WINDOWS[dataset])
    images, names = input_pipeline.load_split(
        dataset, 'test', data_dir=_DATA_DIR.value, limit=_NUM_IMAGES.value)
    train_images = (input_pipeline.training_images(
        dataset, data_dir=_DATA_DIR.value)[0]
                    if 'nn' in _METHODS.value else None)
    semantic = semantic_lib.semantic_for_split(
        dataset, 'test', names, _CLASSIFIER.value, _DATA_DIR.value,
        required=flags.FLAGS['classifier'].present)
    ce_model = _CE_MODEL.value.format(models_dir=_MODELS_DIR.value,
                                      dataset=dataset)
    factories = reproduce.method_factories(model_dir, search_config,
                                           train_images, ce_model,
                                           record_every=record_every)
    names_here = list(_METHODS.value)
    if 'ce' in names_here and 'ce' not in factories:
      print(f'note: no Context Encoder at {ce_model}; skipping ce for'
            f' {dataset} (train one with experiments.train_context_encoder).',
            file=sys.stderr)
      names_here.remove('ce')
    no_opencv = [m for m in names_here
                 if m.startswith('opencv_') and m not in factories]
    if no_opencv:
      print(f'note: OpenCV is not installed; skipping {", ".join(no_opencv)}'
            " (pip install -e '.[opencv]').", file=sys.stderr)
      names_here = [m for m in names_here if m not in no_opencv]
    for kind in _MASKS.value:
      rows += reproduce.run_cell(dataset, kind, images, names, factories,
                                 names_here, _OUTPUT_DIR.value,
                                 batch_size=_BATCH.value,
                                 semantic=semantic_lib.for_mask(semantic,
                                                                kind))
      tables.write_tables(rows, _OUTPUT_DIR.value)  # as the run goes
    models = ([model_dir] if any(m.startswith('ours') for m in names_here)
              else []) + ([ce_model] if 'ce' in names_here else [])
    described[dataset] = results_page.DatasetInfo(
        search_config.iterations, search_config.lam, search_config.window,
        record_every if 'ours' in names_here else 0,
        {_in_project(m): reproduce.model_checksum(m) for m in models})
  print(open(os.path.join(_OUTPUT_DIR.value, 'table1.md')).read())
  this_run = [(r['dataset'], r['mask'], r['method']) for r in rows]
  written = (figures.write_figures(_OUTPUT_DIR.value, _FIGURES_DIR.value,
                                   this_run) if _FIGURES_DIR.value else [])
  if _RESULTS_PAGE.value:
    info = results_page.RunInfo(
        'python -m experiments.reproduce ' + shlex.join(sys.argv[1:]),
        reproduce.machine_description(), reproduce.utc_now(), described)
    print('wrote', results_page.write_results_page(
        _RESULTS_PAGE.value, rows, info, written, _OUTPUT_DIR.value))


if __name__ == '__main__':
  _cli.run(main)

r"""Writes one checkpoint of a training run as a model directory.

  python -m experiments.export_model --workdir=runs/celeba64 \
      --export_dir=models/celeba64 --dataset=celeba --weights_dtype=bfloat16

Without --step it exports the checkpoint with the best validation PSNR
(experiments.validation_curve; the latest checkpoint if the run has none), or
where the curve measured the samples' MS-SWD, the one with the most realistic
samples among those within --realism_within_db of the best PSNR, and
draws the curve (validation_curve.png) and a picture of G's samples over the
training steps (samples_over_time.png) into the model directory. With
bfloat16 or float16 weights it inpaints --check_images validation images with
the float32 weights and with the stored ones and refuses the export if the
stored G moves a mean PSNR by 0.05 dB or more at the float32 search's latents
(or the search moves it that much, its paired 95 % interval without 0). Then
write the card with experiments.model_card.

With --model_dir instead of --workdir it stores an exported float32 model in
bfloat16 or float16 (half the size) with the same check, for a model whose
training run is gone:

  python -m experiments.export_model --model_dir=runs/svhn64_float32 \
      --export_dir=models/svhn64 --dataset=svhn --weights_dtype=float16
"""

from absl import flags

from experiments import _cli
from inpaint_jax import checkpoints
from inpaint_jax.data import input_pipeline
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.training import export
from inpaint_jax.training import train_dcgan
from inpaint_jax.training import validation

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.')
_MODEL_DIR = flags.DEFINE_string(
    'model_dir', None, 'Instead of --workdir: a float32 model directory to'
    ' store in --weights_dtype (bfloat16 or float16).')
_EXPORT_DIR = flags.DEFINE_string('export_dir', None,
                                  'Model directory to write.', required=True)
_STEP = flags.DEFINE_integer(
    'step', None, 'Checkpoint step to export (default: the best on the'
    ' validation curve, else the latest).', lower_bound=0)
_WEIGHTS_DTYPE = flags.DEFINE_enum(
    'weights_dtype', 'float32', list(checkpoints.WEIGHT_DTYPES),
    'Weight dtype of the exported model (the 16-bit ones halve its size).')
_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set of the run (its validation slice is'
                             ' used for the 16-bit weights check).')
_SOURCE = _cli.define_source_flag()
_DATA_DIR = _cli.define_data_dir_flag()
_REALISM_WITHIN_DB = flags.DEFINE_float(
    'realism_within_db', export.REALISM_WITHIN_DB,
    'Without --step: ship the checkpoint with the lowest samples MS-SWD among'
    ' those within this many dB of the best mean validation PSNR (where the'
    ' curve measured it); 0: the best PSNR alone.', lower_bound=0)
_CHECK_IMAGES = flags.DEFINE_integer(
    'check_images', 16, 'Validation images of the 16-bit weights check.',
    lower_bound=1)
_SEARCH_CONFIG = _cli.define_search_flags()
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  search_config = _SEARCH_CONFIG()
  if (_WORKDIR.value is None) == (_MODEL_DIR.value is None):
    raise InputError('Give one of --workdir (a training run) and --model_dir'
                     ' (a float32 model to store in 16 bits).')
  if _MODEL_DIR.value is not None:
    _convert(_MODEL_DIR.value, _EXPORT_DIR.value, _WEIGHTS_DTYPE.value,
             _DATASET.value, _SOURCE.value, _DATA_DIR.value,
             _CHECK_IMAGES.value, search_config)
    return
  train_dcgan.run_configs(_WORKDIR.value)  # A training run, else one line.
  _cli.check_run_outputs(_WORKDIR.value, _EXPORT_DIR.value)
  images = None
  if _WEIGHTS_DTYPE.value != 'float32':
    images, _ = validation.run_validation_images(
        _WORKDIR.value, _DATASET.value, _CHECK_IMAGES.value, _SOURCE.value,
        _DATA_DIR.value)
  added = export.export_checkpoint(
      _WORKDIR.value, _EXPORT_DIR.value, step=_STEP.value,
      weights_dtype=_WEIGHTS_DTYPE.value, check_images=images,
      search_config=search_config,
      realism_within_db=_REALISM_WITHIN_DB.value)
  print(f"Step {added['selected_step']} ({added['selected_by']}) written to"
        f' {_EXPORT_DIR.value}')
  _print_check(added, _WEIGHTS_DTYPE.value)


def _convert(model_dir, export_dir, dtype, dataset, source, data_dir,
             check_images, search_config):
  """--model_dir: the float32 model stored in 16 bits, checked."""
  if dtype == 'float32':
    raise InputError('--model_dir stores a float32 model in 16 bits: give'
                     ' --weights_dtype=float16 or bfloat16.')
  config, _ = checkpoints.load_model_config(model_dir)
  output_dirs.check_output_dir(export_dir, '--export_dir', new=True)
  images, _ = input_pipeline.load_split(
      dataset, 'validation', source=source, data_dir=data_dir,
      size=config.resolution, limit=check_images)
  added = export.convert_model(model_dir, export_dir, dtype, images,
                               search_config=search_config)
  print(f'{model_dir} written to {export_dir} in {dtype}')
  _print_check(added, dtype)


def _print_check(added, dtype):
  """The 16-bit check's PSNRs, one line per mask."""
  check = added.get(checkpoints.stored_weights_check_key(dtype), {})
  for kind, psnr in check.get('psnr', {}).items():
    print(f"  {kind}: validation PSNR {psnr['float32']:.3f} dB (float32"
          f" weights), {psnr[dtype]:.3f} dB ({dtype} weights)")


if __name__ == '__main__':
  _cli.run(main)

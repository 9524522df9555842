r"""Validation curve of a training run: inpainting PSNR of its checkpoints.

  python -m experiments.validation_curve --workdir=runs/celeba64 \
      --dataset=celeba

Evaluates every kept checkpoint of the run (train with --keep_checkpoints
large enough, e.g. --checkpoint_every=500 --keep_checkpoints=1000) on the
validation slice (the last 256 train images, never trained on) with the
z-search, for --masks, and appends to <workdir>/validation.jsonl, then draws
<workdir>/validation.png; with --realism_images (256) also the realism of
G's samples (MS-SWD against the validation slice, beside the real-vs-real
floor of a train slice) into validation_realism.png. Run it again as training goes on: checkpoints
already evaluated are skipped.
"""

from absl import flags

from experiments import _cli
from inpaint_jax.data import input_pipeline
from inpaint_jax.evaluation import sample_realism
from inpaint_jax import masks
from inpaint_jax.training import validation
_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.',
                               required=True)
_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set the run was trained on.')
_SOURCE = _cli.define_source_flag()
_DATA_DIR = _cli.define_data_dir_flag()
_MASKS = flags.DEFINE_multi_enum('masks', ['center', 'half'], masks.KINDS,
                                 'Mask types to evaluate.')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 64, 'Validation images.',
                                   lower_bound=1)
_EVERY = flags.DEFINE_integer('every', 1, 'Evaluate only checkpoints at'
                              ' multiples of this many steps.', lower_bound=1)
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per z-search batch.',
                              lower_bound=1)
_REALISM_IMAGES = flags.DEFINE_integer(
    'realism_images', 256, 'Samples of G compared (MS-SWD) with as many'
    ' validation images at every checkpoint, and as many train images with'
    ' them for the real-vs-real floor; 0: no sample realism.', lower_bound=0)
_SEARCH_CONFIG = _cli.define_search_flags()
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  search_config = _SEARCH_CONFIG()
  images, names = validation.run_validation_images(
      _WORKDIR.value, _DATASET.value, _NUM_IMAGES.value, _SOURCE.value,
      _DATA_DIR.value)
  _cli.note_if_fewer(len(images), _NUM_IMAGES.value,
                     f'{_DATASET.value} validation slice')
  reference = floor = None
  if _REALISM_IMAGES.value:
    reference, floor = sample_realism.reference_sets(
        _DATASET.value, _REALISM_IMAGES.value, _SOURCE.value, _DATA_DIR.value,
        size=images.shape[1])
  rows = validation.validation_curve(
      _WORKDIR.value, images, names, kinds=_MASKS.value,
      search_config=search_config, every=_EVERY.value,
      batch_size=_BATCH.value, sample_reference=reference,
      floor_images=floor)
  for row in rows:
    print(f"step {row['step']:>7} {row['mask']:>8}: PSNR"
          f" {row['mean_psnr']:.2f} dB (mean fill"
          f" {row['mean_psnr_mean_fill']:.2f})"
          + (f", samples MS-SWD {row['samples_ms_swd']:.1f} (floor"
             f" {row['samples_ms_swd_floor']:.1f})"
             if 'samples_ms_swd_floor' in row else ''))


if __name__ == '__main__':
  _cli.run(main)

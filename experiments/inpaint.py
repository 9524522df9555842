r"""Inpaints images with a trained DCGAN (Yeh et al. 2017) and scores them.

  python -m experiments.inpaint --output_dir=results/celeba_center

By default: the shipped CelebA model, 64 faces from ../shared/data/celeba/test,
the central-block mask, 300 z-search iterations (the paper: --iterations=1500).
Writes grid.png (masked input | G(z) | blended result | original),
metrics.json, metrics.csv (PSNR/SSIM per image) and images/*.png.

Your own images: --images=DIR (any JPEG/PNG; the model sees a square cut out
by --crop, resized to 64x64) and --mask_file=mask.png (white = known, black =
missing), at the model size or at a photo's own size. Besides the 64x64
results, images/<stem>_fullsize.png is each photo inpainted at its own size:
G(z) resized into the square and Poisson-blended at full resolution; every
pixel outside the hole is the photo's own.

Semantic accuracy: for --dataset=svhn with --split=test or validation, the
shipped digit classifier (--classifier, default models/svhn_classifier;
--classifier= turns it off) also scores whether each inpainted image shows its
labelled digit (a 'correct' column in metrics.csv, semantic_accuracy* in
metrics.json).

Beyond the paper: --encoder=DIR (e.g. models/celeba64_encoder, trained by
experiments.train_encoder for the --checkpoint model) starts each image's
search from the latent the encoder predicts instead of a random one, so far
fewer --iterations reach the same quality (docs/ablations.md: "Starting
from an encoder's z").

Multi-host: run the same command in every process with --distributed (on a
TPU pod, Slurm or Open MPI that is all; elsewhere add
--coordinator_address/--num_processes/--process_id); each process searches
its share of the images and process 0 writes the results.
"""

import os

from absl import flags
import jax

from experiments import _cli
from inpaint_jax import checkpoints
from inpaint_jax.evaluation import semantic
from inpaint_jax import encoder
from inpaint_jax.evaluation import evaluate
from inpaint_jax.evaluation import own_photos
from inpaint_jax.data import input_pipeline
from inpaint_jax import masks

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', os.path.join(_PROJECT_ROOT, 'models', 'celeba64'),
    'Model directory (models/celeba64, models/svhn64, models/cars64, or one'
    ' exported by experiments.train_dcgan).')
_DATASET = flags.DEFINE_enum(
    'dataset', 'celeba', input_pipeline.DATASETS,
    'Data set whose --split images to inpaint (ignored with --images).')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split of --dataset.')
_SOURCE = _cli.define_source_flag()
_DATA_DIR = _cli.define_data_dir_flag()
_IMAGES = flags.DEFINE_string(
    'images', None, 'A folder of your own images to inpaint instead; each is'
    ' also written inpainted at its own size (images/<stem>_fullsize.png).')
_CROP = flags.DEFINE_enum(
    'crop', 'center', ['center', 'celeba'],
    'With --images: the square of each photo the model sees. center: the'
    ' central square of side min(width, height). celeba: the central square'
    ' of side min * 108/178, the crop the CelebA model was trained on: frame'
    ' the face as in CelebA\'s aligned faces (centred, eyes about 45 % from'
    ' the top, the face filling about 60 % of the shorter side).')
_MASK = flags.DEFINE_enum('mask', 'center', masks.KINDS,
                          "The paper's mask types (Sec. 4.1).")
_MASK_FILE = flags.DEFINE_string(
    'mask_file', None, 'Mask image (white = known, black = missing) used for'
    ' every image instead of --mask. With --images: either at the model size'
    ' (e.g. 64x64: every photo, upsampled into each photo\'s square for the'
    ' full-size result) or at the photos\' own size (their hole must lie in'
    ' the square --crop cuts).')
_NUM_IMAGES = flags.DEFINE_integer('num_images', 64, 'How many images.',
                                   lower_bound=1)
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per z-search batch.',
                              lower_bound=1)
_SEARCH_CONFIG = _cli.define_search_flags(record=True)
_BLEND = flags.DEFINE_bool('blend', True, 'Poisson blending (Eq. 6).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed for masks and initial z.')
_OUTPUT_DIR = flags.DEFINE_string('output_dir', 'results/inpaint',
                                  'Where results are written.')
_COMPUTE_DTYPE = flags.DEFINE_enum(
    'compute_dtype', 'float32', ['float32', 'bfloat16'],
    'Dtype of the convolutions in the z-search (weights stay float32).')
_SAVE_IMAGES = flags.DEFINE_bool('save_images', True,
                                 'Write per-image PNGs besides the grid.')
_CLASSIFIER = _cli.define_classifier_flag()
_ENCODER = flags.DEFINE_string(
    'encoder', '', 'Encoder directory (experiments.train_encoder, e.g.'
    ' models/celeba64_encoder) trained for --checkpoint: the search starts'
    ' from its predicted z (the first restart; others random). Empty: random'
    ' z, the paper.')
_INITIALIZE_DISTRIBUTED = _cli.define_distributed_flags()
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  _INITIALIZE_DISTRIBUTED()
  search_config = _SEARCH_CONFIG()
  model_config, _ = checkpoints.load_model_config(_CHECKPOINT.value)
  loaded_encoder = (encoder.load_for(_ENCODER.value, model_config,
                                     _CHECKPOINT.value)
                    if _ENCODER.value else None)
  size = model_config.resolution
  photos, photo_masks = None, None
  if _IMAGES.value:
    images, names = input_pipeline.load_folder(
        _IMAGES.value, crop=_CROP.value, size=size, limit=_NUM_IMAGES.value)
    photos = own_photos.Photos(_IMAGES.value, _CROP.value, _MASK_FILE.value)
    photo_masks = own_photos.photo_view_masks(photos, names, size)
  else:
    images, names = input_pipeline.load_split(
        _DATASET.value, _SPLIT.value, source=_SOURCE.value,
        data_dir=_DATA_DIR.value, size=size, limit=_NUM_IMAGES.value)
  _cli.note_if_fewer(len(images), _NUM_IMAGES.value,
                     _IMAGES.value or f'{_DATASET.value}/{_SPLIT.value}')
  semantic = _semantic(names)
  summary = evaluate.inpaint_and_evaluate(
      _CHECKPOINT.value, images, names, _OUTPUT_DIR.value,
      mask_kind=None if _MASK_FILE.value else _MASK.value,
      mask_file=_MASK_FILE.value, search_config=search_config,
      batch_size=_BATCH.value, blend=_BLEND.value, seed=_SEED.value,
      save_images=_SAVE_IMAGES.value, compute_dtype=_COMPUTE_DTYPE.value,
      semantic=semantic, masks=photo_masks, photos=photos,
      encoder=loaded_encoder)
  if jax.process_index() != 0:
    return
  print(f"{summary['num_images']} images, mask {summary['mask']}: "
        f"PSNR {summary['mean_psnr']:.2f} dB, SSIM {summary['mean_ssim']:.3f} "
        f"(mean-colour fill: {summary['mean_psnr_mean_fill']:.2f} dB), "
        f"{summary['seconds']:.1f} s. Results in {_OUTPUT_DIR.value}/")
  if 'ms_swd' in summary:
    print(f"Realism, MS-SWD x10^3 against the originals (lower is better): "
          f"{summary['ms_swd']:.1f} (mean-colour fill: "
          f"{summary['ms_swd_mean_fill']:.1f}).")
  if semantic is not None:
    print(f"Semantic accuracy (digit classifier): inpainted "
          f"{summary['semantic_accuracy']:.3f}, originals "
          f"{summary['semantic_accuracy_originals']:.3f}, masked input "
          f"{summary['semantic_accuracy_masked']:.3f}.")
    if summary.get('semantic_accuracy_ceiling') is not None:
      print(f"A classifier of the masked input itself (the ceiling of any"
            f" fill): {summary['semantic_accuracy_ceiling']:.3f}; the fills"
            f" reach {summary['semantic_accuracy_of_ceiling'] or 0:.2f} of"
            f" it.")


def _semantic(names):
  """`semantic.semantic_for_split` for evaluate, or None where it does not
  apply.

  Applies to SVHN test/validation images from the folder source when
  --classifier is set and exists (a --classifier given explicitly must).
  """
  if _IMAGES.value or _SOURCE.value != 'folder':
    return None
  return semantic.semantic_for_split(
      _DATASET.value, _SPLIT.value, names, _CLASSIFIER.value,
      _DATA_DIR.value, required=flags.FLAGS['classifier'].present)


if __name__ == '__main__':
  _cli.run(main)

r"""Trains the paper's DCGAN on one data set; resumes if the workdir has a run.

  python -m experiments.train_dcgan --dataset=celeba --workdir=runs/celeba64 \
      --width=32 --num_steps=6000

Kill it at any time and run the same command again: it resumes exactly from
the last checkpoint (every --checkpoint_every steps). With --export_dir the
final model is written as a model directory for `experiments.inpaint`.
Multi-host: run the same command in every process with --distributed (on a
TPU pod, Slurm or Open MPI that is all; elsewhere add
--coordinator_address/--num_processes/--process_id); each process reads its
own share of every batch, all save the checkpoints to the shared --workdir and
process 0 writes the logs and samples.
"""

from absl import flags
import jax

from experiments import _cli
from inpaint_jax import checkpoints
from inpaint_jax.data import input_pipeline
from inpaint_jax.training import export
from inpaint_jax.training import train_dcgan

_DATASET = flags.DEFINE_enum('dataset', 'celeba', input_pipeline.DATASETS,
                             'Data set to train on (its train split).')
_SOURCE = _cli.define_source_flag()
_DATA_DIR = _cli.define_data_dir_flag()
_WORKDIR, _STOP_AFTER = _cli.define_run_flags()
_EXPORT_DIR = flags.DEFINE_string(
    'export_dir', None, 'If set, write the final model directory here.')
_WEIGHTS_DTYPE = flags.DEFINE_enum(
    'weights_dtype', 'float32', list(checkpoints.WEIGHT_DTYPES),
    'Weight dtype of the exported model (the 16-bit ones halve its size).')
_INIT_FROM = flags.DEFINE_string(
    'init_from', None, 'Exported model directory whose weights start a new'
    ' run (continued training with a fresh optimiser; the model flags not'
    ' given default to its config); ignored on resume.')
_MODEL_CONFIG = _cli.define_model_flags()
_TRAIN_CONFIG = _cli.define_train_flags()
_INITIALIZE_DISTRIBUTED = _cli.define_distributed_flags()
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  _INITIALIZE_DISTRIBUTED()
  init_config = (checkpoints.check_model_config(_INIT_FROM.value)
                 if _INIT_FROM.value else None)
  model_config = _MODEL_CONFIG(base=init_config)
  if init_config:
    checkpoints.require_same_config(_INIT_FROM.value, model_config,
                                    init_config)
  train_config = _TRAIN_CONFIG()
  _cli.check_run_outputs(_WORKDIR.value, _EXPORT_DIR.value)
  images, description = input_pipeline.training_images(
      _DATASET.value, source=_SOURCE.value, data_dir=_DATA_DIR.value,
      size=model_config.resolution)
  train_dcgan.train(model_config, train_config, images, _WORKDIR.value,
                    stop_after=_STOP_AFTER.value, data_description=description,
                    init_model_dir=_INIT_FROM.value)
  if _EXPORT_DIR.value:
    path = export.export_model(_WORKDIR.value, _EXPORT_DIR.value,
                               _WEIGHTS_DTYPE.value)
    if jax.process_index() == 0:
      print(f'Model written to {path}')


if __name__ == '__main__':
  _cli.run(main)

"""One of the processes of tests/test_multihost.py (not a test itself).

  python tests/multihost_worker.py PORT NUM_PROCESSES PROCESS_ID DIR

Uses one CPU device, joins the other processes at localhost:PORT, then with
the inputs in DIR/inputs.npz and the model in DIR/model:
  1. trains (shared workdir DIR/train) and saves the final parameters to
     DIR/params_<PROCESS_ID>.npz;
  2. inpaints and evaluates with output_dir DIR/eval_<PROCESS_ID> (only
     process 0 should write there) and saves the returned summary to
     DIR/summary_<PROCESS_ID>.json.
"""

import json
import os
import sys

import jax

jax.config.update('jax_num_cpu_devices', 1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from inpaint_jax import distributed  # pylint: disable=g-import-not-at-top


def main(port: str, num_processes: str, process_id: str, directory: str):
  distributed.initialize(f'localhost:{port}', int(num_processes),
                         int(process_id))
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tests import test_multihost as spec  # pylint: disable=g-import-not-at-top
  from inpaint_jax.evaluation import evaluate  # pylint: disable=g-import-not-at-top
  from inpaint_jax.training import train_dcgan  # pylint: disable=g-import-not-at-top

  assert jax.process_count() == int(num_processes)
  assert jax.local_device_count() == 1
  inputs = np.load(os.path.join(directory, 'inputs.npz'))
  state, _ = train_dcgan.train(spec.MODEL, spec.TRAIN, inputs['train_images'],
                               os.path.join(directory, 'train'),
                               show_progress=False)
  leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
  np.savez(os.path.join(directory, f'params_{process_id}.npz'), *leaves)
  summary = evaluate.inpaint_and_evaluate(
      os.path.join(directory, 'model'), inputs['eval_images'],
      list(inputs['names']),
      os.path.join(directory, f'eval_{process_id}'),
      **spec.EVAL_KWARGS)
  with open(os.path.join(directory, f'summary_{process_id}.json'), 'w') as f:
    json.dump(summary, f)


if __name__ == '__main__':
  main(*sys.argv[1:])

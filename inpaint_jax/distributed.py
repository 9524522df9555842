"""Multi-process (multi-host) helpers: start-up, splitting work, gathering rows.

One JAX process per host (or several on one machine, for testing). Training
pmaps over every device of every process (`training.train_dcgan.train`);
evaluation gives each process a contiguous `process_slice` of the images and
`gather_rows` puts the per-image results back together on every process.
With a single process all three are no-ops.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """`jax.distributed.initialize`, with cross-process collectives on CPU.

  Call it first, before any JAX computation. Arguments left as None are
  detected on Cloud TPU pods, Slurm, Open MPI and Kubernetes; the address is
  also read from $JAX_COORDINATOR_ADDRESS. Elsewhere (e.g. several processes
  on one machine) pass all three.

  Args:
    coordinator_address: 'host:port' of process 0, e.g. 'localhost:1234'.
    num_processes: number of processes.
    process_id: this process's index in [0, num_processes).
  """
  # CPU processes reduce over each other with gloo (TCP); GPUs use NCCL and
  # TPUs their interconnect whatever this says.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id)


def process_slice(n: int, process_index: int | None = None,
                  process_count: int | None = None) -> slice:
  """This process's contiguous share of n items (rows 0..n-1).

  Shares differ in size by at most one, the first n % P processes getting the
  larger ones; together they cover every row once, in process order.

  Args:
    n: number of items.
    process_index, process_count: default jax.process_index() / count().

  Returns:
    slice(start, stop) into the n items (empty when n < P for late processes).
  """
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  base, extra = divmod(n, count)
  start = index * base + min(index, extra)
  return slice(start, start + base + (index < extra))


def gather_rows(array: np.ndarray) -> np.ndarray:
  """Concatenates every process's rows, in process order, on every process.

  Args:
    array: (n_p, ...) this process's rows; n_p may differ between processes
      (and may be 0), the trailing shape and dtype may not.

  Returns:
    (sum_p n_p, ...) numpy array, the same on every process; with a single
    process, `array` itself.
  """
  array = np.asarray(array)
  if jax.process_count() == 1:
    return array
  lengths = multihost_utils.process_allgather(np.int32(len(array)))  # (P,)
  padded = np.zeros((int(lengths.max()),) + array.shape[1:], array.dtype)
  padded[:len(array)] = array
  gathered = multihost_utils.process_allgather(padded)  # (P, max n_p, ...)
  return np.concatenate([gathered[p, :n] for p, n in enumerate(lengths)])


def unreplicate(tree):
  """The first local device's copy of every leaf of a pmap-ed pytree.

  `addressable_data(0)` is that device's (1, ...) shard as it is: indexing
  the replicated array itself with `x[0]` runs a small program on every
  device, which on CPU can deadlock in its cross-device rendezvous (seen in
  the tests, one run in a few).
  """
  return jax.tree_util.tree_map(lambda x: x.addressable_data(0)[0], tree)

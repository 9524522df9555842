"""Experiment entry points: thin absl mains over inpaint_jax."""

import os

# LAPACK (the SVDs of the LR baseline, through jaxlib and NumPy) runs on
# OpenBLAS, whose threads spin against XLA's own: with two busy processes on
# a 2-core CPU a batch of 64x64 SVDs took 35x longer on 2 OpenBLAS threads
# than on one (4.2 s vs 0.12 s). Set before NumPy loads; a user's choice wins.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

"""Test session setup: two CPU devices, so pmap/sharding paths are exercised."""

import jax

# Must run before any computation creates the CPU backend.
jax.config.update('jax_num_cpu_devices', 2)

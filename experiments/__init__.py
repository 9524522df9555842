"""Experiment entry points: thin absl mains over inpaint_jax."""

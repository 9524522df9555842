r"""The same DCGAN in PyTorch (CPU), for a side-by-side time ratio.

  pip install torch==2.13.0     # or: pip install -e '.[bench]'
  python -m benchmarks.torch_reference            # torch and JAX, width 64
  python -m benchmarks.torch_reference --quick    # fewer steps
  python -m benchmarks.torch_reference --nojax    # torch only

The networks are those of `inpaint_jax.models` at 64x64, 5x5 kernels, width 64
(G: linear -> 4x4x512, transposed convolutions stride 2, padding 2,
output_padding 1, 512-256-128-64 -> 3, batch norm + ReLU, tanh; D: convolutions
stride 2, padding 2, 3-64-128-256-512, batch norm on all but the first, leaky
ReLU 0.2, linear -> 1 logit), randomly initialised, in torch's default NCHW
layout (`--channels_last` for NHWC).

* zsearch_step_s: one Adam step of the z-search (Sec. 3.3) for a batch of 64
  latents with G and D in eval mode: G(z), D(G(z)), the importance-weighted L1
  context loss + lam * log(1 - D(G(z))), gradient with respect to z only
  (parameters have requires_grad=False), Adam on z, clip to [-1, 1]. Median
  of the timed steps after warm-up steps.
* train_step_s: one training step at batch 64 as `train.train_step` does it:
  G(z) once; D update on real and G(z) (separate batch-norm passes, BCE);
  G update with the non-saturating loss through the updated D; Adam(2e-4,
  0.5) for both.

* torch_matmul_float32_gflops (and jax_matmul_float32_gflops with --jax): a
  4096^2 (2048^2 with --quick) float32 matmul in each framework, the
  practical peak each one's convolutions are measured against.

With --jax (default) the JAX counterparts (`benchmarks.zsearch` per-step time
by the N / 2N difference, and `benchmarks.train_step`) are measured in the
same process, with the same settings, and the ratios printed.
"""

from __future__ import annotations

import os
import statistics
import time

from absl import app
from absl import flags

from benchmarks import common

try:
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from torch.nn import functional as F  # pylint: disable=g-import-not-at-top
except ImportError as e:  # pragma: no cover
  raise SystemExit(
      'benchmarks.torch_reference needs PyTorch: pip install torch==2.13.0'
      " (or pip install -e '.[bench]').") from e

_QUICK = flags.DEFINE_bool('quick', False, 'Fewer timed steps.')
_OUTPUT = flags.DEFINE_string('output', None, 'JSON path (default'
                              ' benchmarks/results/torch_reference.json).')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Batch size.')
_WIDTH = flags.DEFINE_integer('width', 64, 'Base width.')
_JAX = flags.DEFINE_bool('jax', True, 'Also time the JAX counterparts.')
_CHANNELS_LAST = flags.DEFINE_bool('channels_last', False,
                                   'NHWC memory format in torch.')
_THREADS = flags.DEFINE_integer('threads', None, 'torch threads (default:'
                                ' all CPUs).')

Z_DIM, SIZE, KERNEL, LAM = 100, 64, 5, 0.003


def init_weights(module: nn.Module) -> None:
  """DCGAN initialisation N(0, 0.02), as in inpaint_jax.models."""
  if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
    nn.init.normal_(module.weight, 0.0, 0.02)
    if module.bias is not None:
      nn.init.zeros_(module.bias)


class Generator(nn.Module):
  """z (N, 100) -> (N, 3, 64, 64) in [-1, 1]."""

  def __init__(self, width: int):
    super().__init__()
    channels = [width * 8, width * 4, width * 2, width]
    self.top = channels[0]
    self.dense = nn.Linear(Z_DIM, 4 * 4 * channels[0], bias=False)
    self.bn0 = nn.BatchNorm2d(channels[0], eps=1e-5, momentum=0.1)
    layers = []
    for cin, cout in zip(channels[:-1], channels[1:]):
      layers += [nn.ConvTranspose2d(cin, cout, KERNEL, 2, padding=2,
                                    output_padding=1, bias=False),
                 nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1), nn.ReLU()]
    layers += [nn.ConvTranspose2d(channels[-1], 3, KERNEL, 2, padding=2,
                                  output_padding=1, bias=True), nn.Tanh()]
    self.body = nn.Sequential(*layers)
    self.apply(init_weights)

  def forward(self, z):
    x = self.dense(z).view(z.shape[0], self.top, 4, 4)
    return self.body(F.relu(self.bn0(x)))


class Discriminator(nn.Module):
  """(N, 3, 64, 64) -> logits (N,)."""

  def __init__(self, width: int):
    super().__init__()
    channels = [3, width, width * 2, width * 4, width * 8]
    layers = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
      layers.append(nn.Conv2d(cin, cout, KERNEL, 2, padding=2, bias=(i == 0)))
      if i > 0:
        layers.append(nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))
      layers.append(nn.LeakyReLU(0.2))
    self.body = nn.Sequential(*layers)
    self.dense = nn.Linear(channels[-1] * 4 * 4, 1)
    self.apply(init_weights)

  def forward(self, x):
    return self.dense(self.body(x).flatten(1))[:, 0]


def _timed_steps(step, warmup: int, steps: int) -> tuple[float, float]:
  """(first call seconds, median of `steps` calls after `warmup` more)."""
  start = time.perf_counter()
  step()
  first = time.perf_counter() - start
  for _ in range(warmup):
    step()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return first, statistics.median(times)


def _layout(x):
  return x.contiguous(memory_format=torch.channels_last) if (
      _CHANNELS_LAST.value and x.dim() == 4) else x


def torch_zsearch_step(width, batch, warmup, steps):
  """Seconds per z-search Adam step (grad wrt z only)."""
  g, d = Generator(width).eval(), Discriminator(width).eval()
  if _CHANNELS_LAST.value:
    g, d = g.to(memory_format=torch.channels_last), d.to(
        memory_format=torch.channels_last)
  for p in list(g.parameters()) + list(d.parameters()):
    p.requires_grad_(False)
  gen = torch.Generator().manual_seed(0)
  images = _layout(torch.rand(batch, 3, SIZE, SIZE, generator=gen) * 2 - 1)
  mask = torch.ones(batch, 1, SIZE, SIZE)
  mask[:, :, 16:48, 16:48] = 0
  # Importance weights of Eq. 3 (7x7 window, zero padded box filter).
  weights = _layout(mask * F.avg_pool2d(1 - mask, 7, 1, 3,
                                        count_include_pad=True))
  z = (torch.rand(batch, Z_DIM, generator=gen) * 2 - 1).requires_grad_(True)
  opt = torch.optim.Adam([z], lr=0.03, betas=(0.9, 0.999))

  def step():
    opt.zero_grad(set_to_none=True)
    generated = g(z)
    context = (weights * (generated - images)).abs().sum(dim=(1, 2, 3))
    prior = -LAM * F.softplus(d(generated))
    (context + prior).sum().backward()
    opt.step()
    with torch.no_grad():
      z.clamp_(-1.0, 1.0)

  return _timed_steps(step, warmup, steps)


def torch_train_step(width, batch, warmup, steps):
  """Seconds per DCGAN training step (D update, then G update)."""
  g, d = Generator(width).train(), Discriminator(width).train()
  if _CHANNELS_LAST.value:
    g, d = g.to(memory_format=torch.channels_last), d.to(
        memory_format=torch.channels_last)
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  gen = torch.Generator().manual_seed(0)
  real = _layout(torch.rand(batch, 3, SIZE, SIZE, generator=gen) * 2 - 1)

  def step():
    z = torch.rand(batch, Z_DIM) * 2 - 1
    fake = g(z)
    d_opt.zero_grad(set_to_none=True)
    d_loss = (F.softplus(-d(real)).mean()
              + F.softplus(d(fake.detach())).mean())
    d_loss.backward()
    d_opt.step()
    g_opt.zero_grad(set_to_none=True)
    for p in d.parameters():
      p.requires_grad_(False)
    g_loss = F.softplus(-d(fake)).mean()
    g_loss.backward()
    for p in d.parameters():
      p.requires_grad_(True)
    g_opt.step()

  return _timed_steps(step, warmup, steps)


def torch_matmul_gflops(size: int, repeats: int = 5) -> float:
  """float32 GFLOP/s of a size^2 matmul in torch (oneDNN / MKL on CPU)."""
  a, b = torch.randn(size, size), torch.randn(size, size)
  _, seconds = _timed_steps(lambda: torch.mm(a, b), 0, repeats)
  return 2 * size**3 / seconds / 1e9


def main(argv):
  del argv
  quick = _QUICK.value
  torch.set_num_threads(_THREADS.value or os.cpu_count())
  width, batch = _WIDTH.value, _BATCH.value
  warmup, steps = (1, 3) if quick else (2, 10)
  size = 2048 if quick else 4096
  peaks = {'matmul_size': size,
           'torch_matmul_float32_gflops': torch_matmul_gflops(size)}
  print(f'torch matmul {size}^2: {peaks["torch_matmul_float32_gflops"]:.1f}'
        ' GFLOP/s', flush=True)
  rows = []
  first, zs = torch_zsearch_step(width, batch, warmup, steps)
  rows.append({'framework': f'torch {torch.__version__}', 'what': 'zsearch',
               'width': width, 'batch': batch, 'step_s': zs,
               'first_s': first})
  print(f'torch z-search step: {zs:.4g} s', flush=True)
  first, ts = torch_train_step(width, batch, warmup, max(steps // 2, 2))
  rows.append({'framework': f'torch {torch.__version__}', 'what': 'train',
               'width': width, 'batch': batch, 'step_s': ts,
               'first_s': first})
  print(f'torch train step: {ts:.4g} s', flush=True)

  if _JAX.value:
    import jax  # pylint: disable=g-import-not-at-top
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from benchmarks import workloads  # pylint: disable=g-import-not-at-top
    peaks['jax_matmul_float32_gflops'] = common.matmul_peak(
        size, jnp.float32) / 1e9
    print(f'jax matmul {size}^2: {peaks["jax_matmul_float32_gflops"]:.1f}'
          ' GFLOP/s', flush=True)
    z_row = workloads.zsearch(width, batch, iterations=2 if quick else 5,
                              repeats=1 if quick else 2, flops=False)
    rows.append({'framework': f'jax {jax.__version__}', 'what': 'zsearch',
                 'width': width, 'batch': batch, 'step_s': z_row['step_s'],
                 'first_s': z_row['compile_s'],
                 'torch_over_jax': zs / z_row['step_s']})
    t_row = workloads.train(width, 'auto', batch, 1 if quick else 3)
    rows.append({'framework': f'jax {jax.__version__}', 'what': 'train',
                 'width': width, 'batch': batch, 'step_s': t_row['step_s'],
                 'first_s': t_row['compile_s'],
                 'torch_over_jax': ts / t_row['step_s']})
  common.report('torch_reference', rows,
                ['framework', 'what', 'width', 'batch', 'step_s', 'first_s',
                 'torch_over_jax'], _OUTPUT.value,
                {**peaks, 'torch': torch.__version__,
                 'torch_threads': torch.get_num_threads(),
                 'channels_last': _CHANNELS_LAST.value,
                 'note': 'first_s: torch first step; for JAX the AOT compile'
                         ' time. torch_over_jax > 1: JAX is faster.'})


if __name__ == '__main__':
  app.run(main)

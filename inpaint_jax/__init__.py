"""inpaint_jax: Semantic Image Inpainting with Deep Generative Models (Yeh et
al., CVPR 2017) in JAX/Flax.

The paper's method lives at the top of the package, one equation per named
function: `models` (the DCGAN G and D, with `layers`), `masks` (Sec. 4.1),
`losses` (Eq. 2-5), `latent_search` and `inpaint` (the z-search: a jitted,
vmapped fori_loop of Adam steps with z clipped to [-1, 1]), `blending`
(Eq. 6 by conjugate gradients) and `metrics` / `realism` (PSNR, SSIM,
MS-SWD); beside it what users call directly: `config`, `errors`,
`checkpoints` (model directories), `encoder` (a starting z), `refine`
(searches after the z-search, beyond the paper), `methods` (the
`Method` interface), `fullsize` (photos at their own size), `distributed`.

Subpackages, by role, each importing only from layers below it
(tests/test_architecture.py checks it; docs/architecture.md draws it):

  data/        image files, Sec. 4.1 preprocessing, the input pipeline
  report/      pictures, charts, tables, pages and card Markdown; no JAX
  baselines/   TV, LR, NN, PatchMatch, OpenCV and the Context Encoder
  evaluation/  running a Method over images and scoring it; the paper's
               comparison; semantic scoring; model cards
  training/    one training loop and pmap wrapper; the four trainers;
               validation curves; export as a model directory
  serve/       the local web page

Layers, bottom to top: errors and config < data < report < the method
modules above < baselines < evaluation < training < serve.
"""

"""Training: one shared machinery, then what is specific to each model.

* `loop`: the one pmap wrapper (`parallel_step`), the batch check, starting
  or resuming a run (`start_run`) and the loop (`train_loop`): metrics.jsonl,
  sample grids, orbax checkpoints, exact resume. Every trainer's config has
  the same bookkeeping fields (`config.BOOKKEEPING`).
* `run_state`: a run on disk: orbax checkpoints of the train state, the run
  record (run.json), the metrics log.
* `train_dcgan`, `train_encoder`, `train_classifier`,
  `train_context_encoder`: each model's state, pure `train_step(state, batch,
  rng)` and `train(...)`; `augment`: DiffAugment for D (an option of
  train_dcgan beyond the paper).
* `validation`: validation curves of a DCGAN run (inpainting PSNR of its
  checkpoints); `export`: a DCGAN checkpoint as a model directory.
"""

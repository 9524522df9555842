"""Running methods over images and scoring them; what a run leaves on disk.

Modules, each importing only those above it in this list (and the method,
data/, report/ and baselines/ below the package):

  output_dirs    output folders checked before any work, locked while a run
                 writes
  semantic       the SVHN digit classifier behind the semantic accuracy
  sample_realism the realism of a generator's samples (MS-SWD against real
                 images, beside the real-vs-real floor)
  results        EvalResult, the resume store, metrics.csv / metrics.json,
                 grids and per-image files
  own_photos     your photos: the folder, mask files at either size, and the
                 full-size results
  evaluate       a Method over images batch by batch (resumable), scored;
                 a model directory's z-search end to end
  reproduce      the paper's comparison: every method per (data set, mask)
  network_cards  the cards of encoder, classifier and Context Encoder
                 directories
  model_card     a DCGAN evaluated on the four masks; `write_card` writes
                 the card of any model directory
"""

"""Pictures, charts and pages drawn from results already on disk.

Pure rendering: NumPy, Pillow (image grids) and matplotlib (charts, Agg, no
pyplot). Nothing here imports JAX, Flax, Optax or Orbax, directly or through
another module (tests/test_report.py checks it in a fresh interpreter), so
the figures and pages of a finished run can be redrawn on any machine, and
evaluation/ and training/ may import it. Modules, each importing only those
above it in this list (and data.images):

  charts        line charts (the validation curves) and scores with
                their 95 % intervals per category, as PNGs
  panels        labelled picture grids stacked under titles, error images
  cells         a reproduce run's cells read back from their arrays.npz
                (Cell, Run) and the paper's order of data sets, masks and
                methods
  tables        results.csv and the Markdown tables of the summary rows
                (Table 1 beside the paper's numbers, SSIM, every method,
                semantic accuracy)
  figures       the paper's figures (Figs. 1, 3b and 4-13) and the PSNR
                chart of a reproduce run (write_figures)
  results_page  docs/RESULTS.md: what ran, the tables, the figures and a
                discussion computed from the rows
  cards         Markdown blocks of the model cards (what each card says is
                gathered in evaluation.model_card)
"""

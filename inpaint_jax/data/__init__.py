"""Images in: files, preprocessing and batches (below everything but errors).

  images          image files <-> float arrays in [-1, 1] (any mode Pillow
                  opens, size limits), PNG writing, picture grids
  preprocessing   Sec. 4.1: the square crop of each data set, resizing
  input_pipeline  image folders and TFDS sources (celeb_a, svhn_cropped,
                  cars196), the splits and the validation slice, batches
"""

r"""Makes docs/fullsize_example.png, docs/inpainting.md's own-photos-at-full-size picture.

  python docs/make_fullsize_example.py        # -> docs/fullsize_example.png

Copies the first three Cars test photos (128x96, their own size) to a
temporary folder with a mask drawn at that size (white = known, a black
rectangle = the hole, inside the central square the model sees), runs the
command of docs/inpainting.md on them,

  python -m experiments.inpaint --checkpoint=models/cars64 --images=DIR \
      --mask_file=DIR/mask.png --window=15 --output_dir=OUT

and puts, per photo, the photo with its hole and images/<stem>_fullsize.png
side by side, enlarged 3x (nearest neighbour) for the page. It also checks
that every pixel outside the hole is the photo's own.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _ROOT)

from inpaint_jax.data import images as image_io  # pylint: disable=wrong-import-position
from inpaint_jax.data import input_pipeline  # pylint: disable=wrong-import-position


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output', default=os.path.join(
      _ROOT, 'docs', 'fullsize_example.png'))
  parser.add_argument('--iterations', type=int, default=300)
  args = parser.parse_args()
  test_dir = os.path.join(input_pipeline.default_data_dir(), 'cars', 'test')
  names = input_pipeline.list_images(test_dir)[:3]
  with tempfile.TemporaryDirectory() as tmp:
    photos_dir = os.path.join(tmp, 'photos')
    os.makedirs(photos_dir)
    for name in names:
      shutil.copy(os.path.join(test_dir, name), photos_dir)
    width, height = image_io.image_size(os.path.join(photos_dir, names[0]))
    known = np.full((height, width), 255, np.uint8)
    # A hole in the middle of the car, inside the central square.
    known[height * 3 // 10:height * 7 // 10, width * 3 // 8:width * 5 // 8] = 0
    mask_path = os.path.join(tmp, 'mask.png')
    Image.fromarray(known).save(mask_path)
    out = os.path.join(tmp, 'out')
    subprocess.run(
        [sys.executable, '-m', 'experiments.inpaint',
         '--checkpoint=' + os.path.join(_ROOT, 'models', 'cars64'),
         '--images=' + photos_dir, '--mask_file=' + mask_path, '--window=15',
         f'--iterations={args.iterations}', '--output_dir=' + out],
        check=True, cwd=_ROOT)
    rows = []
    for name in names:
      photo = np.asarray(image_io.open_rgb(os.path.join(photos_dir, name)))
      stem = os.path.splitext(name)[0]
      result = np.asarray(Image.open(
          os.path.join(out, 'images', f'{stem}_fullsize.png')).convert('RGB'))
      outside = known > 0
      assert np.array_equal(result[outside], photo[outside]), name
      holed = np.where(outside[..., None], photo, 0).astype(np.uint8)
      rows.append(np.concatenate([holed, result], axis=1))
  grid = np.concatenate(rows, axis=0)
  grid = np.repeat(np.repeat(grid, 3, axis=0), 3, axis=1)
  Image.fromarray(grid).save(args.output)
  print(f'{len(names)} photos {width}x{height}: pixels outside the hole'
        f' unchanged; written to {args.output}')


if __name__ == '__main__':
  main()

"""Bad input to every experiment main: one `error:` line, before any work.

The library checks are tested directly (fast); the table runs each main once
in a subprocess (about 3 s each, so it is marked slow) on inputs that fail
before any data is read or any model trained: unusable output folders, an
export over an existing folder, damaged runs and curves, meaningless flags.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from inpaint_jax.config import ModelConfig, TrainConfig
from inpaint_jax.errors import InputError
from inpaint_jax.evaluation import output_dirs
from inpaint_jax.training import export
from inpaint_jax.training import run_state
from inpaint_jax.training import train_dcgan
from inpaint_jax.training import validation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dcgan_run(workdir) -> str:
  """A folder with the run record of a tiny DCGAN run (no checkpoints)."""
  run_state.write_run(str(workdir), 'dcgan', {
      'model': ModelConfig(resolution=16, width=4).to_dict(),
      'train': dataclasses.asdict(TrainConfig(batch_size=8, num_steps=2))})
  return str(workdir)


# The library ---------------------------------------------------------------


def test_check_output_dir_refuses_without_making_anything(tmp_path):
  (tmp_path / 'file').write_text('x')
  (tmp_path / 'full').mkdir()
  (tmp_path / 'full' / 'model_config.json').write_text('{}')
  (tmp_path / 'empty').mkdir()
  for path, new, match in [
      ('', False, 'is empty'),
      (tmp_path / 'file', False, 'is a file, not a folder'),
      (tmp_path / 'file' / 'run', False, "'.*file' is a file, not a folder"),
      (tmp_path / 'full', True, '--export_dir=.*full already exists and is'
       ' not empty; choose a new --export_dir or delete'),
  ]:
    with pytest.raises(InputError, match=match):
      output_dirs.check_output_dir(str(path), '--export_dir', new=new)
  output_dirs.check_output_dir(str(tmp_path / 'empty'), new=True)
  output_dirs.check_output_dir(str(tmp_path / 'full'))  # a workdir: resumes
  output_dirs.check_output_dir(str(tmp_path / 'a' / 'b'), new=True)
  assert sorted(os.listdir(tmp_path)) == ['empty', 'file', 'full']


@pytest.mark.parametrize('text', ['{"trainer": "dcgan", "sett', '[1, 2]',
                                  '{"trainer": "dcgan"}'])
def test_a_damaged_run_record_is_one_clear_error(tmp_path, text):
  (tmp_path / run_state.RUN_FILE).write_text(text)
  for read in (lambda: run_state.read_run(str(tmp_path), 'dcgan'),
               lambda: run_state.check_run(str(tmp_path), 'dcgan', {}),
               lambda: train_dcgan.run_configs(str(tmp_path))):
    with pytest.raises(InputError, match='run.json is damaged'):
      read()


def test_a_run_record_without_the_model_settings_is_refused(tmp_path):
  (tmp_path / run_state.RUN_FILE).write_text(json.dumps(
      {'trainer': 'dcgan', 'settings': {'train': {'nope': 1}}}))
  with pytest.raises(InputError, match='run.json is damaged .KeyError'):
    train_dcgan.run_configs(str(tmp_path))


def test_a_damaged_validation_curve_names_its_line(tmp_path):
  row = {'step': 1, 'wall_seconds': 2.0, 'mask': 'center', 'num_images': 4,
         'iterations': 2, 'window': 7, 'mean_psnr': 20.0,
         'mean_psnr_mean_fill': 15.0}
  path = tmp_path / validation.CURVE_FILE
  path.write_text(json.dumps(row) + '\n' + json.dumps(row)[:30])
  with pytest.raises(InputError, match='validation.jsonl line 2 is damaged'):
    validation.read_curve(str(tmp_path))
  path.write_text(json.dumps({**row, 'mean_psnr': 'x'}) + '\n')
  with pytest.raises(InputError, match='line 1 is damaged'):
    validation.read_curve(str(tmp_path))
  path.write_text(json.dumps(row) + '\n\n')
  assert validation.read_curve(str(tmp_path)) == [row]


def test_export_refuses_an_existing_folder_before_reading_the_run(tmp_path):
  (tmp_path / 'model').mkdir()
  (tmp_path / 'model' / 'keep.txt').write_text('x')
  with pytest.raises(InputError, match='already exists'):
    export.export_model(str(tmp_path / 'no_run'), str(tmp_path / 'model'))
  assert os.listdir(tmp_path / 'model') == ['keep.txt']


def test_an_export_that_fails_part_way_leaves_no_folder(tmp_path,
                                                         monkeypatch):
  workdir = _dcgan_run(tmp_path / 'run')
  monkeypatch.setattr(run_state, 'checkpoint_steps', lambda w: [1, 2])

  def half_written(workdir, output_dir, *args, **kwargs):
    os.makedirs(os.path.join(output_dir, 'variables'))
    return output_dir

  def damaged(*args):
    raise InputError('step 1 cannot be read')

  monkeypatch.setattr(export, 'export_model', half_written)
  monkeypatch.setattr(export, 'samples_over_time', damaged)
  with pytest.raises(InputError, match='step 1 cannot be read'):
    export.export_checkpoint(workdir, str(tmp_path / 'model'))
  assert not (tmp_path / 'model').exists()


# The mains, one subprocess each --------------------------------------------


def _run(module, *flags):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', f'experiments.{module}',
                         *flags], cwd=ROOT, capture_output=True, text=True,
                        env=env, timeout=300)


@pytest.fixture(scope='module')
def things(tmp_path_factory):
  """Paths the table's cases name: a file, a non-empty folder, runs."""
  root = tmp_path_factory.mktemp('things')
  (root / 'file').write_text('x')
  (root / 'full').mkdir()
  (root / 'full' / 'model_config.json').write_text('{}')
  (root / 'empty').mkdir()
  _dcgan_run(root / 'run')
  (root / 'bad_record').mkdir()
  (root / 'bad_record' / run_state.RUN_FILE).write_text('{"trainer": "dc')
  (root / 'bad_curve').mkdir()
  (root / 'bad_curve' / validation.CURVE_FILE).write_text('{"step": 1, "ma')
  return {'file': root / 'file', 'full': root / 'full',
          'empty': root / 'empty', 'run': root / 'run',
          'bad_record': root / 'bad_record', 'bad_curve': root / 'bad_curve',
          'new': root / 'new', 'nodata': root / 'nodata'}


_TINY = ('--resolution=16', '--width=4', '--num_steps=1', '--batch_size=4',
         '--data_dir={nodata}')
_REPRODUCE = ('--datasets=svhn', '--masks=center', '--methods=tv',
              '--data_dir={nodata}', '--figures_dir=', '--results_page=')
# (module, flags, words of the error line). Paths in braces: `things`. One
# subprocess each (~3 s): one case per kind of check and main; the shared
# checks' other inputs are tested in-process above.
CASES = [
    ('train_dcgan', _TINY + ('--workdir={file}/run',),
     ('--workdir', 'is a file, not a folder')),
    ('train_dcgan', _TINY + ('--workdir={new}', '--export_dir={full}'),
     ('--export_dir=', 'already exists and is not empty')),
    ('train_dcgan', _TINY + ('--workdir={new}', '--export_dir={new}'),
     ('--export_dir=', 'is the --workdir')),
    ('train_dcgan', _TINY + ('--workdir={new}', '--export_dir='),
     ('output directory is empty', '--export_dir=')),
    ('train_encoder', ('--generator={nodata}', '--workdir={new}',
                       '--validation_iterations=a,50'),
     ('--validation_iterations=a,50', 'whole numbers')),
    ('train_encoder', ('--generator={nodata}', '--workdir={file}/run'),
     ('--workdir', 'is a file')),
    ('train_classifier', ('--data_dir={nodata}', '--workdir={new}',
                          '--export_dir={full}'),
     ('--export_dir=', 'already exists')),
    ('train_context_encoder', ('--data_dir={nodata}', '--workdir={file}/x'),
     ('--workdir', 'is a file')),
    ('export_model', ('--workdir={bad_record}', '--export_dir={new}'),
     ('run.json is damaged',)),
    ('export_model', ('--workdir={run}', '--export_dir={full}'),
     ('--export_dir=', 'already exists')),
    ('export_model', ('--workdir={file}', '--export_dir={new}'),
     ('No training run at', 'not a folder')),
    ('export_model', ('--workdir={run}', '--model_dir={run}',
                      '--export_dir={new}'),
     ('Give one of --workdir', '--model_dir')),
    ('export_model', ('--model_dir={empty}', '--export_dir={new}',
                      '--weights_dtype=float16'),
     ('holds no model_config.json', 'not a model directory')),
    ('validation_curve', ('--workdir=', '--data_dir={nodata}'),
     ('No training run at', '--workdir=DIR')),
    ('compare_runs', ('--run=a={bad_curve}', '--output={new}/c.png'),
     ('validation.jsonl line 1 is damaged', 'delete that line')),
    ('compare_runs', ('--run=a={run}', '--output={empty}'),
     ('--output=', 'is a folder')),
    ('reproduce', _REPRODUCE + ('--output_dir={file}/out',),
     ('--output_dir', 'is a file, not a folder')),
    ('reproduce', _REPRODUCE[:-2] + ('--figures_dir={file}', '--results_page=',
                                     '--output_dir={new}'),
     ('--figures_dir', 'is a file')),
    ('reproduce', _REPRODUCE + ('--ce_model={{model}}', '--output_dir={new}'),
     ('--ce_model=', '{models_dir}')),
]


@pytest.mark.slow
@pytest.mark.parametrize('module,flags,words', CASES,
                         ids=[f'{c[0]}-{i}' for i, c in enumerate(CASES)])
def test_bad_input_is_one_error_line_before_any_work(things, module, flags,
                                                     words):
  result = _run(module, *(f.format(**things) for f in flags))
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('error: ') and 'Traceback' not in result.stderr
  for word in words:
    assert word in last, last
  assert not things['new'].exists()  # nothing made
  assert os.listdir(things['full']) == ['model_config.json']
  assert os.listdir(things['empty']) == []

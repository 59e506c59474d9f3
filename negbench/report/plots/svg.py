"""Matplotlib figures as self-contained, style-free SVG (for a page whose CSP forbids inline styles)."""

from __future__ import annotations

import base64
import functools
import html
import io
import re

import matplotlib
import matplotlib.colors
import matplotlib.font_manager
import matplotlib.lines
from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend or figure state
from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = [
    "DPI",
    "FRONT",
    "OTHER",
    "RC",
    "figure_svg",
    "new_figure",
    "plain_text",
    "style_free",
    "styled",
    "svg_img",
    "svg_of_img",
]


RC = {
    "svg.hashsalt": "negbench",
    "svg.fonttype": "none",  # text stays text (small, sharp); the viewer's sans-serif draws it
    "font.family": "sans-serif",
    "font.size": 8.5,
    "axes.titlesize": 9.5,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#eaeef2",
    "axes.edgecolor": "#8c959f",
    "axes.labelcolor": "#59636e",
    "xtick.color": "#59636e",
    "ytick.color": "#59636e",
    "legend.frameon": False,
    "legend.fontsize": 8,
}


DPI = 72  # 1 figure point = 1 CSS pixel in the SVG


FRONT = "#0969da"


OTHER = "#8c959f"


_STYLE_ATTR = re.compile(r'style="([^"]*)"')


_STYLE_BLOCK = re.compile(r"\s*<style[^>]*>.*?</style>\s*", re.DOTALL)


def _attrs(match: re.Match[str]) -> str:
    """``style="fill: #fff; stroke-width: 0.8"`` → ``fill="#fff" stroke-width="0.8"``."""
    out = []
    for decl in match.group(1).split(";"):
        name, sep, value = decl.partition(":")
        if sep and name.strip():
            out.append(f'{name.strip()}="{html.escape(value.strip(), quote=True)}"')
    return " ".join(out)


def style_free(svg: str) -> str:
    """matplotlib's SVG without CSS: style attributes become presentation attributes, the ``<style>``
    block's two stroke defaults become attributes of the root ``<svg>`` (see the module docstring)."""
    if "stroke-linejoin: round; stroke-linecap: butt" not in svg:
        raise ValueError("unexpected matplotlib SVG: its <style> rule changed")
    svg = _STYLE_BLOCK.sub("\n", svg, count=1)
    svg = svg.replace("<defs>\n </defs>", "")
    svg = svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" ', 1)
    return _STYLE_ATTR.sub(_attrs, svg)


def styled(func):
    """Run a figure-building function under :data:`RC` (fonts, colours, grid) without touching the global
    rcParams."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(RC):
            return func(*args, **kwargs)

    return wrapper


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` CSS pixels on an Agg canvas (no pyplot, no global state)."""
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def plain_text(fig: Figure) -> None:
    """Turn off mathtext for every text of ``fig`` except tick labels (formatters may use it)."""
    ticks = {id(t) for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels())}
    for text in fig.findobj(Text):
        if id(text) not in ticks:
            text.set_parse_math(False)


def figure_svg(fig: Figure) -> str:
    """The figure as style-free, byte-stable SVG text (see the module docstring)."""
    plain_text(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(
            buf,
            format="svg",
            bbox_inches="tight",
            pad_inches=0.05,
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return style_free(buf.getvalue())


def svg_img(svg: str, alt: str) -> str:
    """An ``<img>`` with the SVG as a base64 data URI and an escaped ``alt`` text."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    size = re.search(r'<svg[^>]*\bwidth="([\d.]+)pt" height="([\d.]+)pt"', svg)
    px = [round(float(v) * 4 / 3) for v in size.groups()] if size else []  # 1 pt = 4/3 CSS px
    dims = f' width="{px[0]}" height="{px[1]}"' if px else ""
    return f'<img class="plot" src="data:image/svg+xml;base64,{data}"{dims} alt="{html.escape(alt, quote=True)}">'


def svg_of_img(img: str) -> str:
    """The SVG text inside an ``<img>`` made by :func:`svg_img` (for tests and tools)."""
    match = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', img)
    if match is None:
        raise ValueError("not an svg_img")
    return base64.b64decode(match.group(1)).decode("utf-8")

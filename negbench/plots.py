"""Report figures drawn with matplotlib (Agg, SVG) and embedded as ``data:image/svg+xml`` images.

The page's Content-Security-Policy allows no inline style (``style-src`` is one hash) but does allow
``img-src data:``. Each figure is saved by matplotlib as SVG, then made style-free: its ``style="a: b; …"``
declarations become the equivalent SVG presentation attributes (``a="b"``; every property matplotlib writes
is one) and its one ``<style>`` rule (``*{stroke-linejoin: round; stroke-linecap: butt}``) becomes the
same two inherited attributes on the root element. The result is base64-encoded into an ``<img>``: it is
its own document (no id clashes between figures, no scripts ever run), and needs nothing from the CSP but
``img-src data:``. Output is byte-stable: fixed ``svg.hashsalt``, no date or creator metadata.

Text in figures is never parsed as mathtext (a ``$`` in a strategy label stays a ``$``).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.colors
import matplotlib.font_manager
import matplotlib.lines
from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend or figure state
from matplotlib.figure import Figure
from matplotlib.text import Text

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
        fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.05,
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return style_free(buf.getvalue())


def svg_img(svg: str, alt: str) -> str:
    """An ``<img>`` with the SVG as a base64 data URI and an escaped ``alt`` text."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    size = re.search(r'<svg[^>]*\bwidth="([\d.]+)pt" height="([\d.]+)pt"', svg)
    px = [round(float(v) * 4 / 3) for v in size.groups()] if size else []  # 1 pt = 4/3 CSS px
    dims = f' width="{px[0]}" height="{px[1]}"' if px else ""
    return (f'<img class="plot" src="data:image/svg+xml;base64,{data}"{dims} '
            f'alt="{html.escape(alt, quote=True)}">')


def svg_of_img(img: str) -> str:
    """The SVG text inside an ``<img>`` made by :func:`svg_img` (for tests and tools)."""
    match = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', img)
    if match is None:
        raise ValueError("not an svg_img")
    return base64.b64decode(match.group(1)).decode("utf-8")


def pareto_front(
    xs: Sequence[float | None],
    ys: Sequence[float | None],
    *,
    x_higher_better: bool = True,
    y_higher_better: bool = True,
) -> list[int]:
    """Indices (ascending) of the points no other point dominates.

    Point ``j`` dominates ``i`` when it is at least as good on both axes and strictly better on one.
    Points with a NaN or None coordinate are never on the front. Duplicate points are both kept.
    """
    sx = 1.0 if x_higher_better else -1.0
    sy = 1.0 if y_higher_better else -1.0
    valid = [i for i, (x, y) in enumerate(zip(xs, ys, strict=True)) if _finite(x) and _finite(y)]
    front = []
    for i in valid:
        xi, yi = sx * xs[i], sy * ys[i]
        dominated = any(
            sx * xs[j] >= xi and sy * ys[j] >= yi and (sx * xs[j] > xi or sy * ys[j] > yi)
            for j in valid
            if j != i
        )
        if not dominated:
            front.append(i)
    return front


def _finite(v: float | None) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return not (a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3])


def place_labels(
    anchors: Sequence[tuple[float, float, str]],
    box: tuple[float, float, float, float],
    char_w: float = 6.2,
    line_h: float = 12.0,
    widths: Sequence[float] | None = None,
) -> list[tuple[float, float, str]]:
    """Greedy label placement: ``(x, y, text-anchor)`` per point, avoiding earlier labels and all points.

    Coordinates are pixels with y growing downwards; ``y`` of a result is the label's baseline. Tries
    positions right and left of each point at growing vertical offsets and keeps the first whose box
    overlaps no placed label or point and stays near ``box`` (x0, y0, x1, y1); else the first candidate.
    ``widths`` are the labels' measured widths (default: ``char_w`` per character).

    Written by hand (a simple greedy search, about thirty lines) because matplotlib has no label
    de-overlapping of its own and ``adjustText`` would be a new dependency for one plot.
    """
    x0, y0, x1, y1 = box
    placed = [(x - 5, y - 5, x + 5, y + 5) for x, y, _ in anchors]
    result: dict[int, tuple[float, float, str]] = {}
    for i in sorted(range(len(anchors)), key=lambda j: (anchors[j][1], anchors[j][0])):
        x, y, text = anchors[i]
        w = widths[i] if widths is not None else char_w * len(text)
        sides = ("end", "start") if x + 8 + w > x1 else ("start", "end")
        # nearest first, and the same side at two heights before the other side (a label between two
        # points reads as the wrong point's)
        pairs = ((-6, 14), (-18, 26), (-30, 38), (-42, 50), (-54, 62), (-66, 74))
        candidates = [(dy, side) for pair in pairs for side in sides for dy in pair]

        def rect(dy: float, side: str, x: float = x, y: float = y, w: float = w) -> tuple[float, ...]:
            lx = x - 8 if side == "end" else x + 8
            return (
                lx - w if side == "end" else lx,
                y + dy - line_h + 2,
                lx if side == "end" else lx + w,
                y + dy + 2,
            )

        def fits(r: tuple[float, ...]) -> bool:
            inside = r[0] >= x0 + 2 and r[2] <= x1 + 10 and r[1] >= y0 - 4 and r[3] <= y1 + 4
            return inside and not any(_overlaps(r, other) for other in placed)

        dy, side = next(((dy, side) for dy, side in candidates if fits(rect(dy, side))), candidates[0])
        placed.append(rect(dy, side))
        result[i] = (round(x - 8 if side == "end" else x + 8, 2), round(y + dy, 2), side)
    return [result[i] for i in range(len(anchors))]




@dataclass(frozen=True)
class Point:
    """One strategy on a plot: position, optional vertical error (CI half-width) and its label."""

    label: str
    x: float | None  # None / NaN: not plotted
    y: float
    y_err: float | None = None


@styled
def scatter_figure(
    points: Sequence[Point],
    *,
    x_label: str,
    y_label: str,
    title: str,
    x_higher_better: bool = True,
    width: int = 480,
    height: int = 330,
) -> Figure:
    """A scatter of ``points`` with the Pareto front (blue points, dashed line), 95% CI bars and labels
    placed by :func:`place_labels` (with a leader line when a label had to move away from its point)."""
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    pts = [p for p in points if _finite(p.x) and _finite(p.y)]
    if not pts:
        ax.text(0.5, 0.5, "no data to plot", transform=ax.transAxes, ha="center", va="center")
        return fig
    front = set(pareto_front([p.x for p in pts], [p.y for p in pts], x_higher_better=x_higher_better))
    for i, p in enumerate(pts):
        colour = FRONT if i in front else OTHER
        err = p.y_err if _finite(p.y_err) and p.y_err else None
        ax.errorbar([p.x], [p.y], yerr=None if err is None else [err], fmt="o", ms=6, color=colour,
                    ecolor=OTHER, elinewidth=1, mec="white", mew=1, zorder=3)
    if len(front) > 1:
        ordered = sorted(front, key=lambda i: pts[i].x)
        ax.plot([pts[i].x for i in ordered], [pts[i].y for i in ordered], "--", color=FRONT, lw=1.3, zorder=2)
    ax.margins(0.12, 0.15)
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())  # freeze the limits: labels are placed in pixels
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    fig_h = fig.bbox.height
    box = ax.get_window_extent(renderer)
    size = matplotlib.rcParams["font.size"]
    font = matplotlib.font_manager.FontProperties(size=size)
    widths = [renderer.get_text_width_height_descent(p.label, font, ismath=False)[0] for p in pts]
    pixels = [tuple(ax.transData.transform((p.x, p.y))) for p in pts]
    anchors = [(px, fig_h - py, p.label) for (px, py), p in zip(pixels, pts, strict=True)]
    spots = place_labels(anchors, (box.x0, fig_h - box.y1, box.x1, fig_h - box.y0), line_h=size + 3,
                         widths=widths)
    for (lx, ly, anchor), (px, py), p in zip(spots, pixels, pts, strict=True):
        moved = not (-7 <= ly - (fig_h - py) <= 15)
        ax.annotate(
            p.label, xy=(p.x, p.y), xytext=(lx - px, (fig_h - ly) - py), textcoords="offset points",
            ha="right" if anchor == "end" else "left", va="baseline", fontsize=size, color="#1f2328",
            arrowprops={"arrowstyle": "-", "color": "#afb8c1", "lw": 0.8, "shrinkA": 0, "shrinkB": 4}
            if moved else None,
        )
    return fig


def scatter_svg(points: Sequence[Point], **kwargs) -> str:
    """:func:`scatter_figure` as SVG text."""
    return figure_svg(scatter_figure(points, **kwargs))


Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # label -> (xs, ys)


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per label (order of first appearance): tab10, or tab20 beyond ten labels."""
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, label in enumerate(labels)}


@styled
def lines_figure(series: Series, *, x_label: str, y_label: str, title: str, target: float | None = None,
                 width: int = 520, height: int = 300) -> Figure:
    """One line per label (markers at the measured points), a legend outside the axes on the right, and a
    dotted horizontal line at ``target`` when given."""
    fig = new_figure(width, height)
    ax = fig.add_subplot()
    colours = _colours(list(series))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, "-o", ms=3, lw=1.4, color=colours[label], label=label)
    if target is not None and math.isfinite(target):
        ax.axhline(target, ls=":", lw=1, color="#59636e")
    ax.set_title(title, loc="left")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if series:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


@styled
def small_multiples_figure(panels: Mapping[str, Series], *, x_label: str, title: str | None = None, columns: int = 3,
                           panel_w: int = 230, panel_h: int = 170) -> Figure:
    """One panel per metric (shared colours per label), one legend for all below the panels."""
    names = list(panels)
    cols = max(1, min(columns, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig = new_figure(panel_w * cols, panel_h * rows + 40)
    fig.set_layout_engine("constrained")
    labels = list(dict.fromkeys(label for panel in panels.values() for label in panel))
    colours = _colours(labels)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_visible(False)
            continue
        for label, (xs, ys) in panels[names[k]].items():
            ax.plot(xs, ys, "-", lw=1.3, color=colours[label], label=label)
        ax.set_title(names[k], loc="left", fontsize=9)
        if k + cols >= len(names):  # no panel below this one
            ax.set_xlabel(x_label)
    if title:
        fig.suptitle(title, fontweight="bold", fontsize=9.5)
    handles = [matplotlib.lines.Line2D([], [], color=colours[label], lw=2) for label in labels]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
    return fig


@styled
def heatmap_figure(labels: Sequence[str], matrix: Sequence[Sequence[float | None]], *, title: str,
                   cell: int = 40) -> Figure:
    """A labelled square heat map of values in [0, 1] (blank where None), each cell annotated."""
    import numpy as np

    n = len(labels)
    data = np.array([[math.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    fig = new_figure(max(260, cell * n + 170), max(200, cell * n + 110))
    ax = fig.add_subplot()
    ax.grid(False)
    image = ax.imshow(np.ma.masked_invalid(data), cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(n):
        for j in range(n):
            if math.isfinite(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=7.5,
                        color="white" if data[i, j] > 0.6 else "#1f2328")
    ax.set_xticks(range(n), labels, rotation=40, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_title(title, loc="left")
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Jaccard")
    plain_text(fig)
    ax.set_xticklabels(labels, rotation=40, ha="right")  # strategy labels: never mathtext
    ax.set_yticklabels(labels)
    for t in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        t.set_parse_math(False)
    return fig

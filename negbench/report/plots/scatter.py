"""Accuracy-versus-cost scatter plots with the Pareto front and labels placed without overlaps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import matplotlib.colors
import matplotlib.font_manager
import matplotlib.lines
from matplotlib.figure import Figure

from negbench.report.plots.svg import FRONT, OTHER, figure_svg, new_figure, styled

__all__ = ["Point", "pareto_front", "place_labels", "scatter_figure", "scatter_svg"]


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
            sx * xs[j] >= xi and sy * ys[j] >= yi and (sx * xs[j] > xi or sy * ys[j] > yi) for j in valid if j != i
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
        ax.errorbar(
            [p.x],
            [p.y],
            yerr=None if err is None else [err],
            fmt="o",
            ms=6,
            color=colour,
            ecolor=OTHER,
            elinewidth=1,
            mec="white",
            mew=1,
            zorder=3,
        )
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
    spots = place_labels(anchors, (box.x0, fig_h - box.y1, box.x1, fig_h - box.y0), line_h=size + 3, widths=widths)
    for (lx, ly, anchor), (px, py), p in zip(spots, pixels, pts, strict=True):
        moved = not (-7 <= ly - (fig_h - py) <= 15)
        ax.annotate(
            p.label,
            xy=(p.x, p.y),
            xytext=(lx - px, (fig_h - ly) - py),
            textcoords="offset points",
            ha="right" if anchor == "end" else "left",
            va="baseline",
            fontsize=size,
            color="#1f2328",
            arrowprops={"arrowstyle": "-", "color": "#afb8c1", "lw": 0.8, "shrinkA": 0, "shrinkB": 4}
            if moved
            else None,
        )
    return fig


def scatter_svg(points: Sequence[Point], **kwargs) -> str:
    """:func:`scatter_figure` as SVG text."""
    return figure_svg(scatter_figure(points, **kwargs))

"""Line plots (learning curves, hardness), small multiples and heat maps."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.colors
import matplotlib.font_manager
import matplotlib.lines
from matplotlib.figure import Figure

from negbench.report.plots.svg import new_figure, plain_text, styled

__all__ = ["Series", "heatmap_figure", "lines_figure", "small_multiples_figure"]


Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # label -> (xs, ys)


def _colours(labels: Sequence[str]) -> dict[str, str]:
    """A fixed colour per label (order of first appearance): tab10, or tab20 beyond ten labels."""
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, label in enumerate(labels)}


@styled
def lines_figure(
    series: Series,
    *,
    x_label: str,
    y_label: str,
    title: str,
    target: float | None = None,
    width: int = 520,
    height: int = 300,
) -> Figure:
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
def small_multiples_figure(
    panels: Mapping[str, Series],
    *,
    x_label: str,
    title: str | None = None,
    columns: int = 3,
    panel_w: int = 230,
    panel_h: int = 170,
) -> Figure:
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
def heatmap_figure(
    labels: Sequence[str], matrix: Sequence[Sequence[float | None]], *, title: str, cell: int = 40
) -> Figure:
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
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if data[i, j] > 0.6 else "#1f2328",
                )
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

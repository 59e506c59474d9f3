"""Report figures drawn with matplotlib (Agg, SVG) and embedded as ``data:image/svg+xml`` images.

The page's Content-Security-Policy allows no inline style (``style-src`` is one hash) but does allow
``img-src data:``. Each figure is saved by matplotlib as SVG, then made style-free: its ``style="a: b; …"``
declarations become the equivalent SVG presentation attributes (``a="b"``; every property matplotlib writes
is one) and its one ``<style>`` rule (``*{stroke-linejoin: round; stroke-linecap: butt}``) becomes the
same two inherited attributes on the root element. The result is base64-encoded into an ``<img>``: it is
its own document (no id clashes between figures, no scripts ever run), and needs nothing from the CSP but
``img-src data:``. Output is byte-stable: fixed ``svg.hashsalt``, no date or creator metadata.

Text in figures is never parsed as mathtext (a ``$`` in a strategy label stays a ``$``)."""

from __future__ import annotations

from negbench.report.plots.lines import Series, heatmap_figure, lines_figure, small_multiples_figure
from negbench.report.plots.scatter import Point, pareto_front, place_labels, scatter_figure, scatter_svg
from negbench.report.plots.svg import (
    DPI,
    FRONT,
    OTHER,
    RC,
    figure_svg,
    new_figure,
    plain_text,
    style_free,
    styled,
    svg_img,
    svg_of_img,
)

__all__ = [
    "DPI",
    "FRONT",
    "OTHER",
    "RC",
    "Point",
    "Series",
    "figure_svg",
    "heatmap_figure",
    "lines_figure",
    "new_figure",
    "pareto_front",
    "place_labels",
    "plain_text",
    "scatter_figure",
    "scatter_svg",
    "small_multiples_figure",
    "style_free",
    "styled",
    "svg_img",
    "svg_of_img",
]

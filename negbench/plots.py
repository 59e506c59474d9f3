"""Hand-written inline SVG scatter plots with the Pareto front marked (no plotting library, no CDN).

The SVG carries no ``style`` attributes and no scripts (the report's Content-Security-Policy forbids
both); its look comes from classes styled by the page. Every label is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass


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


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[lo, hi]`` (steps of 1, 2, 2.5 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9 or len(ticks) < 2:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def _tick_label(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}" if v == int(v) else f"{v:.1f}"
    return f"{v:.3g}"


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return not (a[2] <= b[0] or a[0] >= b[2] or a[3] <= b[1] or a[1] >= b[3])


def place_labels(
    anchors: Sequence[tuple[float, float, str]],
    box: tuple[float, float, float, float],
    char_w: float = 6.2,
    line_h: float = 12.0,
) -> list[tuple[float, float, str]]:
    """Greedy label placement: ``(x, y, text-anchor)`` per point, avoiding earlier labels and all points.

    Tries positions right and left of each point at growing vertical offsets and keeps the first whose box
    overlaps no placed label or point and stays near ``box`` (x0, y0, x1, y1); else the first candidate.
    """
    x0, y0, x1, y1 = box
    placed = [(x - 5, y - 5, x + 5, y + 5) for x, y, _ in anchors]
    result: dict[int, tuple[float, float, str]] = {}
    for i in sorted(range(len(anchors)), key=lambda j: (anchors[j][1], anchors[j][0])):
        x, y, text = anchors[i]
        w = char_w * len(text)
        sides = ("end", "start") if x + 8 + w > x1 else ("start", "end")
        # nearest first, and the same side at two heights before the other side (a label between two
        # points reads as the wrong point's)
        pairs = ((-6, 14), (-18, 26), (-30, 38), (-42, 50))
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


def scatter_svg(
    points: Sequence[Point],
    *,
    x_label: str,
    y_label: str,
    title: str,
    x_higher_better: bool = True,
    width: int = 480,
    height: int = 330,
) -> str:
    """An inline ``<svg>`` scatter of ``points`` with the Pareto front drawn as a dashed line.

    Front points get class ``front``; y error bars show each point's CI half-width when given.
    """
    e = html.escape
    pts = [p for p in points if _finite(p.x) and _finite(p.y)]
    left, right, top, bottom = 64, 18, 30, 50
    pw, ph = width - left - right, height - top - bottom
    head = (
        f'<svg class="plot" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{e(title)}">'
        f"<title>{e(title)}</title>"
    )
    if not pts:
        return (
            head + f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            "no data to plot</text></svg>"
        )
    ylo = min(p.y - (p.y_err if _finite(p.y_err) else 0) for p in pts)
    yhi = max(p.y + (p.y_err if _finite(p.y_err) else 0) for p in pts)
    xt = nice_ticks(min(p.x for p in pts), max(p.x for p in pts))
    yt = nice_ticks(ylo, yhi)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(v: float) -> float:
        return round(left + (v - x0) / (x1 - x0) * pw, 2)

    def sy(v: float) -> float:
        return round(top + ph - (v - y0) / (y1 - y0) * ph, 2)

    parts = [head, f'<text class="ptitle" x="{left}" y="18">{e(title)}</text>']
    for v in xt:
        parts.append(
            f'<line class="grid" x1="{sx(v)}" y1="{top}" x2="{sx(v)}" y2="{top + ph}"/>'
            f'<text class="tick" x="{sx(v)}" y="{top + ph + 16}" text-anchor="middle">'
            f"{e(_tick_label(v))}</text>"
        )
    for v in yt:
        parts.append(
            f'<line class="grid" x1="{left}" y1="{sy(v)}" x2="{left + pw}" y2="{sy(v)}"/>'
            f'<text class="tick" x="{left - 6}" y="{sy(v) + 4}" text-anchor="end">'
            f"{e(_tick_label(v))}</text>"
        )
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{pw}" height="{ph}"/>')
    parts.append(
        f'<text class="axis" x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{e(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis" transform="translate(14 {top + ph / 2}) rotate(-90)" '
        f'text-anchor="middle">{e(y_label)}</text>'
    )
    front = pareto_front([p.x for p in pts], [p.y for p in pts], x_higher_better=x_higher_better)
    if len(front) > 1:
        ordered = sorted(front, key=lambda i: pts[i].x)
        coords = " ".join(f"{sx(pts[i].x)},{sy(pts[i].y)}" for i in ordered)
        parts.append(f'<polyline class="front-line" points="{coords}"/>')
    labels = place_labels([(sx(p.x), sy(p.y), p.label) for p in pts], (left, top, left + pw, top + ph))
    for i, p in enumerate(pts):
        cls = "pt front" if i in front else "pt"
        cx, cy = sx(p.x), sy(p.y)
        if _finite(p.y_err) and p.y_err:
            parts.append(
                f'<line class="err" x1="{cx}" y1="{sy(p.y - p.y_err)}" x2="{cx}" y2="{sy(p.y + p.y_err)}"/>'
            )
        tip = f"{p.label}: x = {p.x:.4g}, y = {p.y:.4f}" + (" (Pareto front)" if i in front else "")
        parts.append(f'<circle class="{cls}" cx="{cx}" cy="{cy}" r="5"><title>{e(tip)}</title></circle>')
    for (lx, ly, anchor), p in zip(labels, pts, strict=True):
        cx, cy = sx(p.x), sy(p.y)
        if not (cy - 7 <= ly <= cy + 15):  # moved away from its point: draw a leader line
            parts.append(f'<line class="leader" x1="{cx}" y1="{cy}" x2="{lx}" y2="{ly - 4}"/>')
        parts.append(f'<text class="plabel" x="{lx}" y="{ly}" text-anchor="{anchor}">{e(p.label)}</text>')
    parts.append("</svg>")
    return "".join(parts)

"""The dashboard's charts as inline SVG, drawn from the same plotly figures the monthly report shows.

Drawing plotly's charts was most of what a browser did before a viewer saw the dashboard: loading plotly.js
(4.8 MB) and laying out each chart took about two thirds of the page's script time after its HTML. The
figures of :mod:`scope3lib.reporting.charts` use a small part of plotly (bars, stacked or not, vertical or
horizontal; lines and markers, on a second y axis too; donuts; a centred note), so the dashboard writes
that part as SVG in the kernel (a few milliseconds a chart) and the browser only parses it. Hovering a bar,
point or slice shows its value (an SVG ``<title>``); zoom and pan are what is given up. Analysts and the
report keep plotly's own figures.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

WIDTH = 1200  # the viewBox's width: the chart scales to its container, at most this wide
FONT = "font-family:Open Sans,verdana,arial,sans-serif"
COLOURWAY = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880")
GRID, AXIS_TEXT, TITLE_TEXT = "#ebf0f8", "#444", "#2a3f5f"
CHAR_PX = 6.6  # average width of a 12 px character: what a label needs, without a browser to measure it


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def figure_svg(fig: go.Figure) -> str:
    """``fig`` as an inline ``<svg class="s3-chart">``: title, axes, marks (each with its value on hover),
    legend and notes, in plotly's look."""
    _decode_arrays(fig)
    layout = fig.layout
    height = int(layout.height or 360)
    title = _title_text(layout.title)
    legend = _legend_entries(fig)
    horizontal_legend = layout.legend.orientation == "h"
    if any(t.type == "pie" for t in fig.data):
        body = _pie_chart(fig, Box(40, 60, WIDTH - 40 - (200 if legend else 0), height - 20))
    else:
        body = _xy_chart(fig, height, bool(legend), horizontal_legend)
    parts = [f"<svg class='s3-chart' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' "
             f"style='width:100%;max-width:{WIDTH}px;height:auto;background:white;{FONT}' role='img' "
             f"aria-label='{esc(title or 'chart')}'>"]
    if title:
        parts.append(f"<text class='chart-title' x='40' y='30' font-size='17' fill='{TITLE_TEXT}'>{esc(title)}</text>")
    parts.append(body)
    if legend:
        parts.append(_legend(legend, height, horizontal_legend))
    parts += [_note(a, height) for a in layout.annotations]
    parts.append("</svg>")
    return "".join(parts)


def _decode_arrays(fig: go.Figure) -> None:
    """Arrays of a figure that was pickled (the dashboard service's kept panels) come back in plotly's typed-array
    form, ``{"dtype": ..., "bdata": base64}``: made numpy arrays again, in place."""
    for trace in fig.data:
        for owner, name in ((trace, "x"), (trace, "y"), (trace, "width"), (trace, "text"), (trace, "labels"),
                            (trace, "values"), (trace.marker, "color"), (trace.marker, "colors")):
            value = getattr(owner, name, None) if name in owner else None
            if isinstance(value, dict) and "bdata" in value:
                array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
                owner[name] = array.reshape(value["shape"]) if "shape" in value else array


def _title_text(title: Any) -> str:
    return str(title.text) if title is not None and title.text else ""


@dataclass
class Box:
    """The plotting area, in viewBox pixels."""

    left: float
    top: float
    right: float
    bottom: float


# --- scales ------------------------------------------------------------------------------------------


class Scale:
    """A linear map from data to pixels, with the ticks and labels of its axis."""

    def __init__(self, lo: float, hi: float, start: float, end: float) -> None:
        self.lo, self.hi, self.start, self.end = lo, hi if hi != lo else lo + 1, start, end

    def __call__(self, v: float) -> float:
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``lo``..``hi``."""
    span = hi - lo if hi > lo else abs(hi) or 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def number_label(v: float, suffix: str = "") -> str:
    """Thousands separated, up to two significant digits below 10."""
    text = f"{v:,.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.2g}"
    return ("0" if text in ("-0", "0.0") else text) + suffix


def _is_dates(values: Sequence[Any]) -> bool:
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return True
    return len(values) > 0 and isinstance(values[0], dt.date | pd.Timestamp | np.datetime64)


def _is_categories(values: Sequence[Any]) -> bool:
    return len(values) > 0 and isinstance(values[0], str)


class Axis:
    """One axis of an xy chart: numbers, dates or categories, with its ticks."""

    def __init__(self, spec: Any, values: list[Sequence[Any]], start: float, end: float, zero: bool) -> None:
        self.spec = spec
        self.kind = ("category" if any(_is_categories(v) for v in values)
                     else "date" if any(_is_dates(v) for v in values) else "number")
        self.categories: list[str] = []
        for v in values if self.kind == "category" else []:
            self.categories += [str(c) for c in v if str(c) not in self.categories]
        nums = [] if self.kind == "category" else [self.number(x) for v in values for x in v if not _missing(x)]
        lo, hi = (min(nums), max(nums)) if nums else (0.0, 1.0)
        if spec is not None and spec.range is not None:
            lo, hi = (self.number(x) for x in spec.range)
        elif zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if self.kind == "category":
            lo, hi = -0.5, len(self.categories) - 0.5
        elif self.kind == "number" and spec is not None and spec.range is None:
            ticks = nice_ticks(lo, hi)
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1] if ticks[-1] >= hi else hi)
        self.scale = Scale(lo, hi, start, end)

    def number(self, x: Any) -> float:
        if self.kind == "category":
            return float(self.categories.index(str(x)))
        if self.kind == "date":
            return pd.Timestamp(x).value / 8.64e13  # days
        return float(x)

    def ticks(self) -> list[tuple[float, str]]:
        """(position in data units, label) of each tick."""
        lo, hi = sorted((self.scale.lo, self.scale.hi))
        if self.kind == "category":
            return [(float(i), c) for i, c in enumerate(self.categories)]
        suffix = str(self.spec.ticksuffix or "") if self.spec is not None else ""
        if self.kind == "number":
            step = self.spec.dtick if self.spec is not None and isinstance(self.spec.dtick, int | float) else None
            values = (list(np.arange(math.ceil(lo), hi + 1e-9, step)) if step
                      else [t for t in nice_ticks(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9])
            return [(float(t), self.label(float(t)) + suffix) for t in values]
        return self._date_ticks(lo, hi)

    def label(self, v: float) -> str:
        """A number as this axis writes it: years (an axis one apart) without a thousands separator."""
        return f"{v:.0f}" if self.spec is not None and self.spec.dtick == 1 else number_label(v)

    def _date_ticks(self, lo: float, hi: float) -> list[tuple[float, str]]:
        first, last = pd.Timestamp(lo * 8.64e13), pd.Timestamp(hi * 8.64e13)
        dtick = str(self.spec.dtick or "") if self.spec is not None else ""
        fmt = str(self.spec.tickformat or "%d %b") if self.spec is not None else "%d %b"
        if dtick.startswith("M") or (last - first).days > 120:
            months = int(dtick[1:]) if dtick.startswith("M") else max(1, round((last - first).days / 30 / 8))
            stamps = pd.date_range(first.to_period("M").to_timestamp(), last, freq=f"{months}MS")
        else:
            stamps = pd.date_range(first.ceil("D"), last, freq=f"{max(1, round((last - first).days / 8))}D")
        return [(s.value / 8.64e13, s.strftime(fmt)) for s in stamps if first <= s <= last]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# --- xy charts: bars and lines -------------------------------------------------------------------------


def _colour(trace: Any, index: int) -> Any:
    """The trace's colour (one, or one per point), or the colourway's ``index``th."""
    marker = trace.marker.color if trace.marker is not None else None
    line = trace.line.color if getattr(trace, "line", None) is not None else None
    chosen = line if trace.type == "scatter" and line is not None else marker
    return chosen if chosen is not None else COLOURWAY[index % len(COLOURWAY)]


def _xy_chart(fig: go.Figure, height: int, legend: bool, horizontal_legend: bool) -> str:
    """Axes, grid and marks of a chart of bars and lines."""
    layout, traces = fig.layout, list(fig.data)
    flipped = bool(traces) and all(t.type == "bar" and t.orientation == "h" for t in traces)
    right_axis = [t for t in traces if t.yaxis == "y2"]
    values_of = (lambda t: t.x) if flipped else (lambda t: t.y)
    places_of = (lambda t: t.y) if flipped else (lambda t: t.x)
    stacked = layout.barmode in ("stack", "relative")
    box = _plot_box(fig, height, legend, horizontal_legend, flipped, bool(right_axis))
    place = Axis(layout.yaxis if flipped else layout.xaxis, [places_of(t) for t in traces if places_of(t) is not None],
                 *((box.bottom, box.top) if flipped else (box.left, box.right)), zero=False)
    main = [t for t in traces if t.yaxis != "y2"]
    _make_room(place, [t for t in main if t.type == "bar"], places_of)
    extents = [_stack_extent(main, values_of, places_of, place) if stacked else [values_of(t) for t in main]]
    value = Axis(layout.xaxis if flipped else layout.yaxis, [v for group in extents for v in group if v is not None],
                 *((box.left, box.right) if flipped else (box.bottom, box.top)),
                 zero=any(t.type == "bar" for t in main) or layout.yaxis.rangemode == "tozero")
    second = (Axis(layout.yaxis2, [t.y for t in right_axis], box.bottom, box.top,
                   zero=layout.yaxis2.rangemode == "tozero") if right_axis else None)
    parts = [_grid(value, box, flipped), _axis_labels(place, box, flipped, False),
             _axis_labels(value, box, not flipped, False)]
    if second is not None:
        parts.append(_axis_labels(second, box, True, True))
    parts.append("<g class='marks'>")
    parts.append(_bars([t for t in main if t.type == "bar"], place, value, flipped, stacked, traces))
    for t in traces:
        if t.type == "scatter":
            parts.append(_line(t, place, second if t.yaxis == "y2" and second else value, traces.index(t)))
    parts.append("</g>")
    return "".join(parts)


def _plot_box(fig: go.Figure, height: int, legend: bool, horizontal_legend: bool, flipped: bool,
              right_axis: bool) -> Box:
    """Room for the title, tick labels, axis titles and legend around the plotting area."""
    layout = fig.layout
    labels = [str(v) for t in fig.data if flipped and t.y is not None for v in t.y]
    left = max(60.0, CHAR_PX * max((len(s) for s in labels), default=0) + 16) + (24 if layout.yaxis.title.text else 0)
    right = 30.0 + (210 if legend and not horizontal_legend else 0) + (80 if right_axis else 0)
    top = 60.0 if _title_text(layout.title) else 20.0
    bottom = 40.0 + (22 if layout.xaxis.title.text else 0) + (34 if legend and horizontal_legend else 0)
    return Box(left, top, WIDTH - right, height - bottom)


def _make_room(place: Axis, bars: list[Any], places_of: Any) -> None:
    """Widen a number or date axis without a set range so that its first and last bars are whole."""
    if not bars or place.kind == "category" or (place.spec is not None and place.spec.range is not None):
        return
    band = _band(place, bars, places_of)
    edges = [(place.number(p), float(w) / 2 if w is not None else band / 2) for t in bars
             for p, w in zip(places_of(t), _widths(t, len(places_of(t))), strict=True)]
    place.scale.lo = min(place.scale.lo, *(p - half for p, half in edges))
    place.scale.hi = max(place.scale.hi, *(p + half for p, half in edges))


def _widths(trace: Any, n: int) -> list[Any]:
    """Each bar's own width (data units), or None for the band's."""
    if trace.width is None:
        return [None] * n
    return [trace.width] * n if isinstance(trace.width, int | float) else list(trace.width)


def _stack_extent(traces: list[Any], values_of: Any, places_of: Any, place: Axis) -> list[list[float]]:
    """The tops and bottoms stacked bars reach, for the value axis's range."""
    up: dict[float, float] = {}
    down: dict[float, float] = {}
    for t in traces:
        for p, v in zip(places_of(t), values_of(t), strict=True):
            if _missing(v):
                continue
            key = place.number(p)
            side = up if v >= 0 else down
            side[key] = side.get(key, 0.0) + float(v)
    return [list(up.values()) or [0.0], list(down.values()) or [0.0]]


def _grid(value: Axis, box: Box, flipped: bool) -> str:
    lines = []
    for v, _ in value.ticks():
        p = value.scale(v)
        x1, y1, x2, y2 = (p, box.top, p, box.bottom) if flipped else (box.left, p, box.right, p)
        colour = "#c8d4e3" if v == 0 else GRID
        lines.append(f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='{colour}'/>")
    return "<g class='grid'>" + "".join(lines) + "</g>"


def _axis_labels(axis: Axis, box: Box, vertical: bool, right: bool) -> str:
    """Tick labels and the axis title, left (or right) of a vertical axis, below a horizontal one."""
    out = ["<g class='axis' font-size='12' fill='" + AXIS_TEXT + "'>"]
    ticks = axis.ticks()
    every = max(1, math.ceil(len(ticks) * 7 * max((len(t[1]) for t in ticks), default=1) / (box.right - box.left)))
    for i, (v, text) in enumerate(ticks):
        p = axis.scale(v)
        if vertical:
            x, anchor = (box.right + 6, "start") if right else (box.left - 6, "end")
            out.append(f"<text x='{x:.1f}' y='{p + 4:.1f}' text-anchor='{anchor}'>{esc(text)}</text>")
        elif i % every == 0:
            out.append(f"<text x='{p:.1f}' y='{box.bottom + 18:.1f}' text-anchor='middle'>{esc(text)}</text>")
    title = str(axis.spec.title.text) if axis.spec is not None and axis.spec.title.text else ""
    if title and vertical:
        x = box.right + 70 if right else 16
        mid = (box.top + box.bottom) / 2
        out.append(f"<text x='{x}' y='{mid:.1f}' font-size='14' text-anchor='middle' "
                   f"transform='rotate(-90 {x} {mid:.1f})'>{esc(title)}</text>")
    elif title:
        out.append(f"<text x='{(box.left + box.right) / 2:.1f}' y='{box.bottom + 40:.1f}' font-size='14' "
                   f"text-anchor='middle'>{esc(title)}</text>")
    out.append("</g>")
    return "".join(out)


def _band(place: Axis, traces: list[Any], places_of: Any) -> float:
    """A bar's width in data units: 80% of the closest spacing of the places (a category is 1 apart)."""
    if place.kind == "category":
        return 0.8
    spots = sorted({place.number(p) for t in traces for p in places_of(t)})
    gaps = [b - a for a, b in itertools.pairwise(spots) if b > a]
    return 0.8 * (min(gaps) if gaps else (place.scale.hi - place.scale.lo) / 10)


def _bars(bars: list[Any], place: Axis, value: Axis, flipped: bool, stacked: bool, traces: list[Any]) -> str:
    """Each bar a ``rect.bar`` with its value on hover; stacked bars pile up from zero, others sit side by side."""
    if not bars:
        return ""
    places_of = (lambda t: t.y) if flipped else (lambda t: t.x)
    values_of = (lambda t: t.x) if flipped else (lambda t: t.y)
    band = _band(place, bars, places_of)
    up: dict[float, float] = {}
    down: dict[float, float] = {}
    out = []
    for k, t in enumerate(bars):
        colours = _colour(t, traces.index(t))
        widths = _widths(t, len(values_of(t)))
        share = band if stacked else band / len(bars)
        for i, (p, v) in enumerate(zip(places_of(t), values_of(t), strict=True)):
            if _missing(v):
                continue
            at, v = place.number(p), float(v)
            size = float(widths[i]) if widths[i] is not None else share
            centre = at if stacked or widths[i] is not None else at - band / 2 + share * (k + 0.5)
            base = (up if v >= 0 else down).get(at, 0.0) if stacked else 0.0
            if stacked:
                (up if v >= 0 else down)[at] = base + v
            colour = colours[i] if isinstance(colours, list | tuple | np.ndarray) else colours
            out.append(_rect(place, value, flipped, centre, size, base, base + v, str(colour),
                             _hover(t, p, v, place, i)))
    return "".join(out)


def _rect(place: Axis, value: Axis, flipped: bool, centre: float, size: float, v0: float, v1: float,
          colour: str, hover: str) -> str:
    a, b = sorted((place.scale(centre - size / 2), place.scale(centre + size / 2)))
    c, d = sorted((value.scale(v0), value.scale(v1)))
    x, y, w, h = (c, a, d - c, b - a) if flipped else (a, c, b - a, d - c)
    return (f"<rect class='bar' x='{x:.1f}' y='{y:.1f}' width='{max(w, 0.5):.1f}' height='{max(h, 0.5):.1f}' "
            f"fill='{esc(colour)}' stroke='white' stroke-width='0.5'><title>{esc(hover)}</title></rect>")


def _hover(trace: Any, place: Any, v: float, axis: Axis, i: int) -> str:
    """What hovering a mark says: its series, where it is and its value."""
    where = place
    if axis.kind == "date":
        where = pd.Timestamp(place).strftime(str(axis.spec.tickformat or "%d %b %Y") if axis.spec is not None
                                             else "%d %b %Y")
    elif axis.kind == "number":
        where = axis.label(float(place))
    text = trace.text[i] if trace.text is not None and not isinstance(trace.text, str) else None
    label = f"{trace.name}, {where}" if trace.name else str(text or where)
    return f"{label}: {v:,.1f}" if abs(v) < 1000 else f"{label}: {v:,.0f}"


def _line(trace: Any, place: Axis, value: Axis, index: int) -> str:
    """A ``path.line`` through the trace's points (broken where one is missing) and its markers."""
    colour = str(_colour(trace, index))
    dash = {"dash": "8,5", "dot": "2,4", "dashdot": "8,4,2,4"}.get(str(trace.line.dash or ""), "")
    points = [(place.scale(place.number(x)), value.scale(float(y)), x, y) for x, y in zip(trace.x, trace.y, strict=True)
              if not _missing(x) and not _missing(y)]
    if not points:
        return ""
    path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
    out = [f"<path class='line' d='{path}' fill='none' stroke='{esc(colour)}' stroke-width='2'"
           + (f" stroke-dasharray='{dash}'" if dash else "") + "/>"]
    if "markers" in str(trace.mode or ""):
        out += [f"<circle class='point' cx='{x:.1f}' cy='{y:.1f}' r='4' fill='{esc(colour)}'>"
                f"<title>{esc(_hover(trace, px, float(py), place, 0))}</title></circle>" for x, y, px, py in points]
    else:  # a line alone still says its values on hover, at each point
        out += [f"<circle class='point' cx='{x:.1f}' cy='{y:.1f}' r='5' fill='transparent'>"
                f"<title>{esc(_hover(trace, px, float(py), place, 0))}</title></circle>" for x, y, px, py in points]
    return "".join(out)


# --- donuts, legends and notes -------------------------------------------------------------------------


def _pie_chart(fig: go.Figure, box: Box) -> str:
    """A pie (a donut with ``hole``): slices clockwise from twelve o'clock, each share written on its slice."""
    pie = next(t for t in fig.data if t.type == "pie")
    values = [max(float(v), 0.0) for v in pie.values]
    total = sum(values) or 1.0
    colours = list(pie.marker.colors) if pie.marker.colors is not None else list(COLOURWAY)
    cx, cy = (box.left + box.right) / 2, (box.top + box.bottom) / 2
    r = min(box.right - box.left, box.bottom - box.top) / 2
    inner = r * float(pie.hole or 0)
    out, angle = ["<g class='marks'>"], 0.0
    for i, (label, v) in enumerate(zip(pie.labels, values, strict=True)):
        sweep = v / total * 2 * math.pi
        colour = esc(colours[i % len(colours)])
        hover = esc(f"{label}: {v:,.0f} ({v / total:.1%})")
        out.append(f"<path class='slice' d='{_arc(cx, cy, r, inner, angle, sweep)}' fill='{colour}' stroke='white' "
                   f"stroke-width='1'><title>{hover}</title></path>")
        if v / total >= 0.04:
            mid, at = angle + sweep / 2, (r + inner) / 2
            out.append(f"<text x='{cx + at * math.sin(mid):.1f}' y='{cy - at * math.cos(mid) + 4:.1f}' "
                       f"font-size='12' fill='white' text-anchor='middle'>{v / total:.1%}</text>")
        angle += sweep
    out.append("</g>")
    return "".join(out)


def _arc(cx: float, cy: float, r: float, inner: float, start: float, sweep: float) -> str:
    """The path of a ring segment from ``start`` (radians clockwise from twelve) through ``sweep``."""
    sweep = min(sweep, 2 * math.pi - 1e-6)
    big = 1 if sweep > math.pi else 0

    def at(radius: float, a: float) -> str:
        return f"{cx + radius * math.sin(a):.2f},{cy - radius * math.cos(a):.2f}"

    end = start + sweep
    outer = f"M{at(r, start)} A{r:.2f},{r:.2f} 0 {big} 1 {at(r, end)}"
    if inner <= 0:
        return f"{outer} L{cx:.2f},{cy:.2f} Z"
    return f"{outer} L{at(inner, end)} A{inner:.2f},{inner:.2f} 0 {big} 0 {at(inner, start)} Z"


def _legend_entries(fig: go.Figure) -> list[tuple[str, str, str]]:
    """(name, colour, mark) of each legend entry; none when the figure hides its legend or has one series."""
    if fig.layout.showlegend is False:
        return []
    entries: list[tuple[str, str, str]] = []
    for i, t in enumerate(fig.data):
        if t.type == "pie":
            colours = list(t.marker.colors) if t.marker.colors is not None else list(COLOURWAY)
            entries += [(str(label), str(colours[k % len(colours)]), "box") for k, label in enumerate(t.labels)]
        elif t.showlegend is not False and t.name:
            entries.append((str(t.name), str(_colour(t, i)), "box" if t.type == "bar" else "line"))
    single = len(fig.data) == 1 and fig.data[0].type != "pie"
    return [] if single and fig.layout.showlegend is not True else entries


def _legend(entries: list[tuple[str, str, str]], height: int, horizontal: bool) -> str:
    out = ["<g class='legend' font-size='12' fill='" + AXIS_TEXT + "'>"]
    x, y = (40.0, height - 14.0) if horizontal else (WIDTH - 220.0, 70.0)
    for name, colour, mark in entries:
        swatch = (f"<rect x='{x:.1f}' y='{y - 9:.1f}' width='12' height='12' fill='{esc(colour)}'/>" if mark == "box"
                  else f"<line x1='{x - 2:.1f}' y1='{y - 3:.1f}' x2='{x + 16:.1f}' y2='{y - 3:.1f}' "
                       f"stroke='{esc(colour)}' stroke-width='2'/>")
        out.append(f"{swatch}<text x='{x + 20:.1f}' y='{y + 1:.1f}'>{esc(name)}</text>")
        if horizontal:
            x += 40 + CHAR_PX * len(name)
        else:
            y += 20
    out.append("</g>")
    return "".join(out)


def _note(annotation: Any, height: int) -> str:
    """An annotation placed on the figure's paper (where the figures of this project put their notes)."""
    x = WIDTH * float(annotation.x if annotation.x is not None else 0.5)
    y = height * (1 - float(annotation.y if annotation.y is not None else 0.5))
    return (f"<text class='note' x='{x:.1f}' y='{y:.1f}' font-size='14' fill='{AXIS_TEXT}' "
            f"text-anchor='middle'>{esc(annotation.text)}</text>")

"""Plotly figures of the inventory, shared by the dashboard, the reports and analysts' notebooks.

Each function takes the DataFrames of :mod:`scope3lib.accounting.inventory` (or of the meter functions) and
returns a ``plotly.graph_objects.Figure``; none queries the database.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..categories import category_label

# One colour per data source, the same everywhere; ML estimates stand out from measured data.
SOURCE_COLOURS = {"manual": "#1f77b4", "import": "#7f7f7f", "iot": "#2ca02c", "ml": "#ff7f0e"}
_LAYOUT = {"template": "plotly_white", "margin": {"l": 40, "r": 20, "t": 50, "b": 40}, "height": 360}


def _empty(title: str, note: str = "no data for this selection") -> go.Figure:
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig


def trend(entries: pd.DataFrame, title: str = "Emissions by month (t CO2e)") -> go.Figure:
    """Monthly t CO2e stacked by data source."""
    if entries.empty:
        return _empty(title)
    df = entries.assign(month=pd.to_datetime(entries["period_start"]).dt.to_period("M").dt.to_timestamp())
    pivot = df.pivot_table(index="month", columns="data_source", values="kg_co2e", aggfunc="sum", fill_value=0)
    fig = go.Figure(layout={**_LAYOUT, "title": title, "barmode": "stack"})
    for source in pivot.columns:
        fig.add_bar(x=pivot.index, y=pivot[source] / 1000, name=str(source),
                    marker_color=SOURCE_COLOURS.get(str(source)))
    return fig


def by_category(entries: pd.DataFrame, title: str = "By GHG Protocol category (t CO2e)") -> go.Figure:
    if entries.empty:
        return _empty(title)
    g = entries.groupby("category")["kg_co2e"].sum().sort_values()
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_bar(y=[category_label(int(c)) for c in g.index], x=g.to_numpy() / 1000, orientation="h",
                marker_color="#2a6f97")
    return fig


def top_suppliers(entries: pd.DataFrame, n: int = 10, title: str | None = None) -> go.Figure:
    title = title or f"Top {n} suppliers (t CO2e)"
    df = entries.dropna(subset=["supplier"])
    if df.empty:
        return _empty(title)
    g = df.groupby("supplier")["kg_co2e"].sum().nlargest(n).sort_values()
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_bar(y=g.index.astype(str), x=g.to_numpy() / 1000, orientation="h", marker_color="#6a4c93")
    return fig


def data_sources(entries: pd.DataFrame, title: str = "Where the numbers come from") -> go.Figure:
    """Share of emissions by data source: manual, import, IoT, ML estimate."""
    if entries.empty:
        return _empty(title)
    g = entries.groupby("data_source")["kg_co2e"].sum()
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_pie(labels=g.index.astype(str), values=g.to_numpy(), hole=0.45, sort=False,
                marker={"colors": [SOURCE_COLOURS.get(str(s), "#cccccc") for s in g.index]})
    return fig


def recent_energy(daily: pd.DataFrame, title: str = "Metered energy, last 30 days") -> go.Figure:
    """Daily kWh (bars) and kg CO2e (line) from ``meters.daily_energy``."""
    if daily.empty:
        return _empty(title, "no meter readings in the last 30 days")
    fig = go.Figure(layout={**_LAYOUT, "title": title, "yaxis": {"title": "kWh"},
                            "yaxis2": {"title": "kg CO2e", "overlaying": "y", "side": "right"}})
    fig.add_bar(x=daily["day"], y=daily["kwh"], name="kWh", marker_color="#8ecae6")
    if "kg_co2e" in daily:
        fig.add_scatter(x=daily["day"], y=daily["kg_co2e"], name="kg CO2e", yaxis="y2",
                        line={"color": "#2ca02c"})
    return fig


# Data sources in the order they are stacked, from most to least direct, with words an executive reads.
SOURCE_LABELS = {"manual": "supplier data", "iot": "metered", "import": "spend-based (EEIO)", "ml": "ML estimate"}


def source_mix(shares: pd.DataFrame, title: str = "Share of emissions by data source (%)") -> go.Figure:
    """Stacked 100% bars, one per row of ``shares`` (``scope3lib.accounting.inventory.source_shares``: a ``label`` and a
    ``<source>_share`` column, 0-1, per data source), the first row on top; sources with no emissions are left
    out of the legend."""
    share_cols = [c for c in shares.columns if c.endswith("_share") and shares[c].fillna(0.0).gt(0).any()]
    if shares.empty or not share_cols:
        return _empty(title, "no emission entries yet")
    rows = shares.iloc[::-1]  # plotly draws the first category at the bottom
    layout = {**_LAYOUT, "title": title, "barmode": "stack", "height": 140 + 26 * len(rows),
              "xaxis": {"range": [0, 100], "ticksuffix": "%"},
              "legend": {"orientation": "h", "y": -0.15, "traceorder": "normal"}}
    fig = go.Figure(layout=layout)
    for col in share_cols:
        source = col.removesuffix("_share")
        fig.add_bar(y=rows["label"].astype(str), x=rows[col].fillna(0.0) * 100, orientation="h",
                    name=SOURCE_LABELS.get(source, source), marker_color=SOURCE_COLOURS.get(source, "#cccccc"),
                    hovertemplate="%{y}: %{x:.1f}%<extra>" + SOURCE_LABELS.get(source, source) + "</extra>")
    return fig

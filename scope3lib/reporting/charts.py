"""Plotly figures of the inventory, shared by the dashboard, the reports and analysts' notebooks.

Each function takes the DataFrames of :mod:`scope3lib.accounting.inventory` (or of the meter functions) and
returns a ``plotly.graph_objects.Figure``; none queries the database.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from ..categories import category_label

# One colour and one name per data source, the same everywhere; ML estimates stand out from measured data.
SOURCE_COLOURS = {"manual": "#1f77b4", "import": "#7f7f7f", "iot": "#2ca02c", "ml": "#ff7f0e"}
# Data sources in the order they are stacked, from most to least direct, with words an executive reads.
SOURCE_LABELS = {"manual": "supplier data", "iot": "metered", "import": "spend-based (EEIO)", "ml": "ML estimate"}


def source_label(source: object) -> str:
    return SOURCE_LABELS.get(str(source), str(source))
# plotly's "plotly_white" for the trace types drawn here: a figure copies its template when it is made, and the
# whole template (defaults for some forty trace types) took 14-40 ms a figure, more than the rest of a chart.
_WHITE = pio.templates["plotly_white"]
_TEMPLATE = go.layout.Template(layout=_WHITE.layout, data={t: _WHITE.data[t] for t in ("bar", "scatter", "pie")})
_LAYOUT = {"template": _TEMPLATE, "margin": {"l": 40, "r": 20, "t": 50, "b": 40}, "height": 360}


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
    order = [c for c in SOURCE_LABELS if c in pivot.columns]
    pivot = pivot[order + [c for c in pivot.columns if c not in SOURCE_LABELS]]
    fig = go.Figure(layout={**_LAYOUT, "title": title, "barmode": "stack", "yaxis": {"title": "t CO2e"},
                            "xaxis": {"tickformat": "%b %Y", "dtick": "M1" if len(pivot) <= 12 else "M3"}})
    for source in pivot.columns:
        fig.add_bar(x=pivot.index, y=pivot[source] / 1000, name=source_label(source),
                    marker_color=SOURCE_COLOURS.get(str(source)), hovertemplate="%{x|%B %Y}: %{y:,.1f} t<extra>"
                    + source_label(source) + "</extra>")
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
    g = g[g / g.sum() >= 0.0005] if g.sum() > 0 else g  # a share that would print as 0.0% is left out
    fig = go.Figure(layout={**_LAYOUT, "title": title})
    fig.add_pie(labels=[source_label(s) for s in g.index], values=g.to_numpy(), hole=0.45, sort=False,
                texttemplate="%{percent:.1%}", hovertemplate="%{label}: %{value:,.0f} kg CO2e<extra></extra>",
                marker={"colors": [SOURCE_COLOURS.get(str(s), "#cccccc") for s in g.index]})
    return fig


def recent_energy(daily: pd.DataFrame, title: str = "Metered energy, last 30 days", days: int = 30,
                  today: dt.date | None = None) -> go.Figure:
    """Daily kWh (bars) and kg CO2e (line) from ``meters.status.daily_energy``, on a calendar of the last ``days``
    days (so one day of data is one bar among 30, not a bar the width of the chart); both axes start at zero."""
    today = today or dt.datetime.now(dt.UTC).date()
    calendar = pd.DataFrame({"day": pd.date_range(end=pd.Timestamp(today), periods=days, freq="D").date})
    df = calendar.merge(daily.assign(day=pd.to_datetime(daily["day"]).dt.date), on="day", how="left")
    if not df["kwh"].notna().any():
        return _empty(title, f"no meter readings in the last {days} days")
    fig = go.Figure(layout={**_LAYOUT, "title": title,
                            "xaxis": {"type": "date", "tickformat": "%d %b", "range": [
                                pd.Timestamp(calendar["day"].iloc[0]) - pd.Timedelta(hours=12),
                                pd.Timestamp(calendar["day"].iloc[-1]) + pd.Timedelta(hours=12)]},
                            "yaxis": {"title": "kWh", "rangemode": "tozero"},
                            "yaxis2": {"title": "kg CO2e", "overlaying": "y", "side": "right", "rangemode": "tozero",
                                       "showgrid": False},
                            "legend": {"orientation": "h", "y": -0.2}})
    fig.add_bar(x=df["day"], y=df["kwh"], name="kWh", marker_color="#8ecae6",
                hovertemplate="%{x|%d %b}: %{y:,.1f} kWh<extra></extra>")
    if "kg_co2e" in df:
        fig.add_scatter(x=df["day"], y=df["kg_co2e"], name="kg CO2e (daily entries)", yaxis="y2", mode="lines+markers",
                        line={"color": "#2ca02c"}, hovertemplate="%{x|%d %b}: %{y:,.2f} kg CO2e<extra></extra>")
    return fig


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

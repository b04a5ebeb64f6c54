"""The executive dashboard: controls and panels, built once here and shown by Voila.

``notebooks/dashboards/executive.ipynb`` is one call, ``ExecutiveDashboard(scope3lib.connect()).show()``.
The data is read once with the tenant's read-only role; the controls (period, category, supplier)
filter it in memory, so a change redraws in milliseconds without a query.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import charts, inventory
from .categories import CATEGORIES, category_label
from .meter_emissions import device_status

PRIMARY_SOURCES = ("manual", "iot")  # supplier-reported or metered, as opposed to imports of spend and ML


def daily_energy(engine: Engine, days: int = 30, today: dt.date | None = None) -> pd.DataFrame:
    """kWh per day from meter readings, with the kg CO2e of the daily IoT entries, for the last ``days``."""
    today = today or dt.datetime.now(dt.UTC).date()
    since = today - dt.timedelta(days=days - 1)
    with engine.connect() as conn:
        kwh = pd.read_sql(sa.text(
            "SELECT (ts AT TIME ZONE 'UTC')::date AS day, sum(kwh) AS kwh FROM readings "
            "WHERE ts >= :since GROUP BY 1 ORDER BY 1"), conn, params={"since": since})
        co2 = pd.read_sql(sa.text(
            "SELECT period_start AS day, sum(kg_co2e) AS kg_co2e FROM emission_entries "
            "WHERE data_source = 'iot' AND period_start >= :since GROUP BY 1"), conn, params={"since": since})
    return kwh.merge(co2, on="day", how="left").fillna({"kg_co2e": 0.0})


def kpis(entries: pd.DataFrame) -> dict[str, float]:
    """Headline figures of a selection of entries (t CO2e, shares in 0-1)."""
    total = float(entries["kg_co2e"].sum())
    primary = float(entries.loc[entries["data_source"].isin(PRIMARY_SOURCES), "kg_co2e"].sum())
    estimated = float(entries.loc[entries["data_source"] == "ml", "kg_co2e"].sum())
    spend = entries["spend"].fillna(0) if "spend" in entries else pd.Series(dtype=float)
    supplier_spend = spend[entries["method"] == "supplier_specific"].sum() if len(spend) else 0.0
    weighted_dq = (entries["data_quality"] * entries["kg_co2e"]).sum() / total if total else float("nan")
    return {
        "t_co2e": total / 1000,
        "primary_share": primary / total if total else 0.0,
        "estimated_share": estimated / total if total else 0.0,
        "supplier_data_spend_coverage": float(supplier_spend / spend.sum()) if len(spend) and spend.sum() else 0.0,
        "data_quality": float(weighted_dq),
        "suppliers": float(entries["supplier"].nunique()),
    }


def _kpi_html(k: dict[str, float], label: str) -> str:
    cells = [
        ("Total emissions", f"{k['t_co2e']:,.0f} t CO2e"),
        ("Primary data (supplier or meter)", f"{k['primary_share']:.0%}"),
        ("Estimated by ML", f"{k['estimated_share']:.0%}"),
        ("Spend covered by supplier data", f"{k['supplier_data_spend_coverage']:.0%}"),
        ("Data quality (1 best - 5)", "n/a" if pd.isna(k["data_quality"]) else f"{k['data_quality']:.1f}"),
        ("Suppliers", f"{k['suppliers']:,.0f}"),
    ]
    tiles = "".join(
        f"<div style='flex:1;min-width:150px;padding:8px 12px;border:1px solid #ddd;border-radius:6px'>"
        f"<div style='font-size:12px;color:#555'>{html.escape(t)}</div>"
        f"<div class='kpi-value' style='font-size:22px;font-weight:600'>{html.escape(v)}</div></div>"
        for t, v in cells
    )
    return (f"<div style='color:#555;margin:4px 0'>{html.escape(label)}</div>"
            f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{tiles}</div>")


def _device_table(devices: pd.DataFrame) -> str:
    if devices.empty:
        return "<p>No meters registered.</p>"
    shown = devices[["device", "supplier", "grid_region", "state", "last_seen", "readings_today"]].copy()
    shown["last_seen"] = pd.to_datetime(shown["last_seen"], utc=True).dt.strftime("%Y-%m-%d %H:%M UTC")
    return str(shown.to_html(index=False, na_rep="-", classes="device-status", border=0, escape=True))


class ExecutiveDashboard:
    """Controls and panels over one tenant's inventory, read with ``engine`` (the read-only role)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries = inventory.entries(engine)
        self.devices = device_status(engine)
        self.energy = daily_energy(engine)
        months = sorted(pd.to_datetime(self.entries["period_start"]).dt.to_period("M").unique())
        self.months = [str(m) for m in months]

    def select(self, first: str | None = None, last: str | None = None, category: int | None = None,
               supplier: str = "") -> pd.DataFrame:
        """Entries of months ``first``..``last`` (YYYY-MM), one category, suppliers whose name contains text."""
        df = self.entries
        month = pd.to_datetime(df["period_start"]).dt.to_period("M").astype(str)
        mask = pd.Series(True, index=df.index)
        if first:
            mask &= month >= first
        if last:
            mask &= month <= last
        if category:
            mask &= df["category"] == category
        if supplier.strip():
            mask &= df["supplier"].fillna("").str.contains(supplier.strip(), case=False, regex=False)
        return df[mask]

    def panels(self, selection: pd.DataFrame) -> list[Any]:
        """The figures of a selection, in display order."""
        return [
            charts.trend(selection),
            charts.by_category(selection),
            charts.top_suppliers(selection),
            charts.data_sources(selection),
            charts.recent_energy(self.energy),
        ]

    def show(self) -> None:
        """Display the controls and panels (in a notebook or Voila)."""
        import ipywidgets as w
        from IPython.display import display

        options = self.months or ["-"]
        period = w.SelectionRangeSlider(options=options, index=(0, len(options) - 1), description="Period",
                                        layout=w.Layout(width="480px"))
        category = w.Dropdown(options=[("All categories", 0)]
                              + [(category_label(n), n) for n in CATEGORIES], value=0, description="Category")
        supplier = w.Text(placeholder="name contains...", description="Supplier")
        kpi = w.HTML()
        figures = w.Output()
        devices = w.HTML(_device_table(self.devices))

        def redraw(*_: object) -> None:
            first, last = period.value if self.months else (None, None)
            sel = self.select(first, last, category.value or None, supplier.value)
            kpi.value = _kpi_html(kpis(sel), f"{first} to {last}" if first else "no entries yet")
            with figures:
                figures.clear_output(wait=True)
                for fig in self.panels(sel):
                    display(fig)

        for control in (period, category, supplier):
            control.observe(redraw, names="value")
        redraw()
        display(w.VBox([
            w.HBox([period, category, supplier]),
            kpi,
            figures,
            w.HTML("<h3>Meters</h3>"),
            devices,
        ]))

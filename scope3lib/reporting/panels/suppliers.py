"""The largest suppliers of the selection."""

from __future__ import annotations

import plotly.graph_objects as go

from .. import charts
from ..tables import MONEY, TONNES, html_table
from . import Panel, PanelContext, register


@register("suppliers", "Largest suppliers", scope="selection", order=40)
def suppliers(ctx: PanelContext) -> Panel:
    df = ctx.entries.dropna(subset=["supplier"])  # entries without a supplier (meters) are not a supplier's
    table = (df.groupby("supplier").agg(t_co2e=("kg_co2e", "sum"), entries=("id", "count"),
                                        spend_usd=("spend_usd", "sum"))
             .assign(t_co2e=lambda g: g["t_co2e"] / 1000).nlargest(ctx.top_n, "t_co2e"))
    items: tuple[str | go.Figure, ...] = (charts.top_suppliers(ctx.entries, ctx.top_n),)
    if len(table):
        items += (html_table(table.reset_index(), {"supplier": "Supplier", "t_co2e": "t CO2e",
                                                   "spend_usd": "Spend (USD)", "entries": "Entries"},
                             {"t_co2e": TONNES, "spend_usd": MONEY, "entries": "{:,}"}, "suppliers"),)
    return Panel("suppliers", "Largest suppliers", items, "ok" if len(df) else "empty", table)

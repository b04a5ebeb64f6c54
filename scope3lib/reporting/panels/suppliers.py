"""The largest suppliers of the selection."""

from __future__ import annotations

from .. import charts
from . import Panel, PanelContext, register


@register("suppliers", "Largest suppliers", scope="selection", order=40)
def suppliers(ctx: PanelContext) -> Panel:
    df = ctx.entries.dropna(subset=["supplier"])
    table = (df.groupby("supplier").agg(t_co2e=("kg_co2e", "sum"), entries=("id", "count"),
                                        spend_usd=("spend_usd", "sum"))
             .assign(t_co2e=lambda g: g["t_co2e"] / 1000).nlargest(ctx.top_n, "t_co2e"))
    return Panel("suppliers", "Largest suppliers", (charts.top_suppliers(ctx.entries, ctx.top_n),),
                 "ok" if len(df) else "empty", table)

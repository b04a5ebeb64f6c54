"""The inventory in the GHG Protocol's shape: each of the 15 categories, included or excluded with the reason,
its methods, data quality and share of primary data."""

from __future__ import annotations

from ...accounting import inventory
from . import Panel, PanelContext, note, register


@register("inventory", "Inventory by GHG Protocol category", scope="selection", order=35, on=("report",))
def inventory_table(ctx: PanelContext) -> Panel:
    summary = inventory.summary_of(ctx.entries)
    shown = summary.style.format({"t_co2e": "{:,.1f}", "kg_co2e": "{:,.0f}", "spend_usd": "{:,.0f}",
                                  "data_quality": "{:.1f}", "primary_share": "{:.0%}",
                                  "primary_spend_share": "{:.0%}"}, na_rep="-")
    intro = note("Each category, included or excluded with the reason, its methods, data quality and share of "
                 "primary data.")
    return Panel("inventory", "Inventory by GHG Protocol category", (intro, shown.to_html()), "ok", summary)

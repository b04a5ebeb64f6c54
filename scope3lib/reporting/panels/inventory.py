"""The inventory in the GHG Protocol's shape: each of the 15 categories, included or excluded with the reason,
its methods, data quality and share of primary data."""

from __future__ import annotations

from ...accounting import inventory
from ..tables import MONEY, QUALITY, SHARE, TONNES, html_table
from . import Panel, PanelContext, note, register

TITLE = "Inventory by GHG Protocol category"
_METHOD_WORDS = {"spend_based": "spend-based", "average_data": "average-data", "distance_based": "distance-based",
                 "supplier_specific": "supplier-specific", "hybrid": "hybrid"}


@register("inventory", TITLE, scope="selection", order=35, on=("report",))
def inventory_table(ctx: PanelContext) -> Panel:
    summary = inventory.summary_of(ctx.entries)
    shown = summary.reset_index().assign(
        name=lambda d: [f"{c} {n}" for c, n in zip(d["category"], d["name"], strict=True)],
        status=lambda d: ["included" if inc else f"excluded: {why}" for inc, why in
                          zip(d["included"], d["exclusion_reason"], strict=True)],
        methods=lambda d: [", ".join(_METHOD_WORDS.get(m.strip(), m.strip()) for m in ms.split(",")) if ms else "-"
                           for ms in d["methods"]],
        spend_usd=lambda d: d["spend_usd"].where(d["included"]),
        t_co2e=lambda d: d["t_co2e"].where(d["included"]))
    total = summary["t_co2e"].sum()
    table = html_table(shown, {"name": "Category", "status": "In the inventory", "methods": "Methods",
                               "data_quality": "Data quality (1-5)", "primary_share": "Primary data",
                               "spend_usd": "Spend (USD)", "t_co2e": "t CO2e"},
                       {"data_quality": QUALITY, "primary_share": SHARE, "spend_usd": MONEY, "t_co2e": TONNES},
                       "inventory")
    intro = note(f"{int(summary['included'].sum())} of 15 categories have activity in this period, "
                 f"{total:,.0f} t CO2e in all. Data quality is the emissions-weighted pedigree score (1 best, 5 "
                 "worst); primary data is the share of emissions from supplier data or meters.")
    return Panel("inventory", TITLE, (intro, table), "ok", summary)

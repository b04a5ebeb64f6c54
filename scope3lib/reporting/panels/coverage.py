"""How much of the spend from the ERP extracts is classified, matched to a supplier and priced with the supplier's
own data, and the largest vendors still unclassified (:mod:`scope3lib.suppliers.coverage`)."""

from __future__ import annotations

import pandas as pd

from ...suppliers.coverage import coverage
from ..tables import MONEY, html_table
from . import Panel, PanelContext, code, empty_panel, note, register

TITLE = "Spend coverage"


@register("coverage", TITLE, scope="tenant", order=85)
def coverage_panel(ctx: PanelContext) -> Panel:
    start = end = None
    if not ctx.entries.empty:  # the report's window (the dashboard's entries are the whole inventory)
        start = pd.Timestamp(min(ctx.entries["period_start"])).date()
        end = (pd.Timestamp(max(ctx.entries["period_start"])) + pd.offsets.MonthEnd(0)).date()
    c = coverage(ctx.engine, start, end, top=ctx.top_n)
    if c.empty:
        slug = ctx.slug or "SLUG"
        return empty_panel("coverage", "No spend extract imported yet: an analyst imports the ERP's accounts-payable "
                                       f"extract with {code(f'scope3 spend import {slug} FILE')}.")
    shares = pd.DataFrame({"share": [c.classified_share, c.matched_share, c.supplier_data_share]},
                          index=["classified", "matched to a supplier", "supplier data"])
    items: tuple[str, ...] = (note(c.sentence(), "color:#222"),)
    if len(c.largest_unclassified):
        items += (note("Largest vendors still unclassified (an analyst confirms their sector in the onboarding "
                       "notebook):"),
                  html_table(c.largest_unclassified, {"vendor_name": "Vendor", "lines": "Lines",
                                                      "spend_usd": "Spend (USD)", "share": "Share of spend"},
                             {"lines": "{:,}", "spend_usd": MONEY, "share": "{:.1%}"}, "unclassified"))
    return Panel("coverage", TITLE, items, "ok", shares)

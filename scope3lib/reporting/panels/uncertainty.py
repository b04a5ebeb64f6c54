"""Uncertainty: 95% intervals per category from a Monte Carlo propagation of each entry's pedigree."""

from __future__ import annotations

from ...accounting import uncertainty
from ...categories import category_label
from ..tables import TONNES, html_table
from . import Panel, PanelContext, note, register

TITLE = "Uncertainty"


@register("uncertainty", TITLE, scope="selection", order=55, on=("report",))
def uncertainty_table(ctx: PanelContext) -> Panel:
    if ctx.entries.empty:
        return Panel("uncertainty", TITLE, (note("No emission entries in this period."),), "empty")
    table = uncertainty.monte_carlo(ctx.entries, draws=5000, seed=0)
    shown = table.reset_index().assign(
        label=lambda d: [("All categories" if c == "total" else category_label(int(c))) for c in d.iloc[:, 0]],
        t=lambda d: d["kg_co2e"] / 1000, low=lambda d: d["p2_5"] / 1000, high=lambda d: d["p97_5"] / 1000,
        spread=lambda d: [f"-{(k - lo) / k:.0%} / +{(hi - k) / k:.0%}" if k else "-"
                          for k, lo, hi in zip(d["kg_co2e"], d["p2_5"], d["p97_5"], strict=True)])
    intro = note("95% intervals from a Monte Carlo propagation (5,000 draws) of each entry's pedigree-based "
                 "uncertainty; entries that share a factor and a supplier share a draw.")
    html = html_table(shown, {"label": "Category", "t": "t CO2e", "low": "95% interval from (t)",
                              "high": "to (t)", "spread": "Spread"},
                      {"t": TONNES, "low": TONNES, "high": TONNES}, "uncertainty")
    return Panel("uncertainty", TITLE, (intro, html), "ok", table)

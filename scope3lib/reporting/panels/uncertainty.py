"""Uncertainty: 95% intervals per category from a Monte Carlo propagation of each entry's pedigree."""

from __future__ import annotations

from ...accounting import uncertainty
from . import Panel, PanelContext, note, register


@register("uncertainty", "Uncertainty", scope="selection", order=55, on=("report",))
def uncertainty_table(ctx: PanelContext) -> Panel:
    if ctx.entries.empty:
        return Panel("uncertainty", "Uncertainty", (note("No emission entries in this period."),), "empty")
    table = uncertainty.monte_carlo(ctx.entries, draws=5000, seed=0)
    intro = note("95% intervals from a Monte Carlo propagation of each entry's pedigree-based uncertainty.")
    return Panel("uncertainty", "Uncertainty", (intro, table.to_html()), "ok", table)

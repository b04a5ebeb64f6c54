"""Emissions by month, stacked by data source."""

from __future__ import annotations

from .. import charts
from . import Panel, PanelContext, register


@register("trend", "Emissions by month", scope="selection", order=20)
def trend(ctx: PanelContext) -> Panel:
    return Panel("trend", "Emissions by month", (charts.trend(ctx.entries),), "ok" if len(ctx.entries) else "empty")

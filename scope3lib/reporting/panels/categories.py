"""Emissions by GHG Protocol category."""

from __future__ import annotations

from .. import charts
from . import Panel, PanelContext, register


@register("categories", "By GHG Protocol category", scope="selection", order=30)
def categories(ctx: PanelContext) -> Panel:
    return Panel("categories", "By GHG Protocol category", (charts.by_category(ctx.entries),),
                 "ok" if len(ctx.entries) else "empty")

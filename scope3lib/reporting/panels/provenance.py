"""Where the numbers come from: the share of emissions by data source, and the factor datasets they rest on."""

from __future__ import annotations

from .. import charts
from . import Panel, PanelContext, register


@register("provenance", "Where the numbers come from", scope="selection", order=50)
def provenance(ctx: PanelContext) -> Panel:
    e = ctx.entries
    datasets = (e.groupby(["factor_source", "factor_version"], dropna=False)["kg_co2e"].agg(["count", "sum"])
                .rename(columns={"count": "entries", "sum": "kg_co2e"}))
    return Panel("provenance", "Where the numbers come from", (charts.data_sources(e),),
                 "ok" if len(e) else "empty", datasets)

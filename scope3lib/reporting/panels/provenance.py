"""Where the numbers come from: the share of emissions by data source, and the factor datasets they rest on."""

from __future__ import annotations

from .. import charts
from ..tables import SHARE, TONNES, html_table
from . import Panel, PanelContext, register

_SOURCES = {"supplier": "the supplier's own figures", "ml-estimator": "ML estimate"}


@register("provenance", "Where the numbers come from", scope="selection", order=50)
def provenance(ctx: PanelContext) -> Panel:
    e = ctx.entries
    datasets = (e.groupby(["factor_source", "factor_version"], dropna=False)["kg_co2e"].agg(["count", "sum"])
                .rename(columns={"count": "entries", "sum": "kg_co2e"}).reset_index())
    total = datasets["kg_co2e"].sum()
    shown = datasets.assign(
        source=lambda d: [_SOURCES.get(str(s), str(s)) for s in d["factor_source"]],
        version=lambda d: d["factor_version"].fillna("-"), t=lambda d: d["kg_co2e"] / 1000,
        share=lambda d: d["kg_co2e"] / total if total else 0.0).sort_values("kg_co2e", ascending=False)
    table = html_table(shown, {"source": "Factors from", "version": "Version", "entries": "Entries",
                               "t": "t CO2e", "share": "Share"},
                       {"entries": "{:,}", "t": TONNES, "share": SHARE}, "datasets")
    return Panel("provenance", "Where the numbers come from", (charts.data_sources(e), table),
                 "ok" if len(e) else "empty", datasets)

"""Headline figures of the selection: total, primary-data share, ML share, supplier-data coverage, quality."""

from __future__ import annotations

import html

import pandas as pd

from ...accounting.quality import is_primary
from . import Panel, PanelContext, register


def kpis(entries: pd.DataFrame) -> dict[str, float]:
    """Headline figures of a selection of entries (t CO2e, shares in 0-1)."""
    total = float(entries["kg_co2e"].sum())
    # Primary data as the inventory table counts it (ESRS E1 AR 46(g)): supplier-specific, hybrid or metered,
    # whichever way the entry came in (an approved footprint prices imported purchases, for one).
    primary = float(entries.loc[is_primary(entries["method"], entries["data_source"]), "kg_co2e"].sum())
    estimated = float(entries.loc[entries["data_source"] == "ml", "kg_co2e"].sum())
    spend = entries["spend"].fillna(0) if "spend" in entries else pd.Series(dtype=float)
    supplier_spend = spend[entries["method"] == "supplier_specific"].sum() if len(spend) else 0.0
    weighted_dq = (entries["data_quality"] * entries["kg_co2e"]).sum() / total if total else float("nan")
    return {
        "t_co2e": total / 1000,
        "primary_share": primary / total if total else 0.0,
        "estimated_share": estimated / total if total else 0.0,
        "supplier_data_spend_coverage": float(supplier_spend / spend.sum()) if len(spend) and spend.sum() else 0.0,
        "data_quality": float(weighted_dq),
        "suppliers": float(entries["supplier"].nunique()),
    }


def tiles(k: dict[str, float], label: str) -> str:
    cells = [
        ("Total emissions", f"{k['t_co2e']:,.0f} t CO2e"),
        ("Primary data (supplier or meter)", f"{k['primary_share']:.0%}"),
        ("Estimated by ML", f"{k['estimated_share']:.0%}"),
        ("Spend covered by supplier data", f"{k['supplier_data_spend_coverage']:.0%}"),
        ("Data quality (1 best - 5)", "n/a" if pd.isna(k["data_quality"]) else f"{k['data_quality']:.1f}"),
        ("Suppliers", f"{k['suppliers']:,.0f}"),
    ]
    boxes = "".join(
        f"<div style='flex:1;min-width:150px;padding:8px 12px;border:1px solid #ddd;border-radius:6px'>"
        f"<div style='font-size:12px;color:#555'>{html.escape(t)}</div>"
        f"<div class='kpi-value' style='font-size:22px;font-weight:600'>{html.escape(v)}</div></div>"
        for t, v in cells
    )
    return (f"<div style='color:#555;margin:4px 0'>{html.escape(label)}</div>"
            f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{boxes}</div>")


@register("headline", "Headline figures", scope="selection", order=10)
def headline(ctx: PanelContext) -> Panel:
    k = kpis(ctx.entries)
    return Panel("headline", "Headline figures", (tiles(k, ctx.scope_label),), "ok" if len(ctx.entries) else "empty",
                 pd.DataFrame([k]))

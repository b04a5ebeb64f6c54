"""Suppliers out of line with their sector peers, largest emissions at stake first (whole inventory)."""

from __future__ import annotations

from ...categories import category_label
from ..tables import TONNES, html_table
from . import Panel, PanelContext, empty_panel, note, register

HOTSPOTS_SHOWN = 10
# Fewer suppliers than this and the comparison is noise: score_suppliers fits no IsolationForest below 8,
# and a pooled MAD over a handful of suppliers flags whoever happens to sit at an edge.
HOTSPOT_MIN_SUPPLIERS = 8
TITLE = "Hotspots"


@register("hotspots", TITLE, scope="tenant", order=70)
def hotspots_panel(ctx: PanelContext, shown: int = HOTSPOTS_SHOWN) -> Panel:
    """:func:`scope3lib.ml.hotspots.hotspots` of the tenant's suppliers. Empty when fewer than
    :data:`HOTSPOT_MIN_SUPPLIERS` suppliers have both spend and emissions to compare."""
    from ...ml.hotspots import comparable, hotspots, tenant_intensities  # scikit-learn: only when drawn

    suppliers = tenant_intensities(ctx.engine)
    compared = int(comparable(suppliers).sum())
    if compared < HOTSPOT_MIN_SUPPLIERS:
        return empty_panel("hotspots", f"Too few suppliers to compare: {compared} with both spend and emissions; "
                                       f"hotspots need at least {HOTSPOT_MIN_SUPPLIERS}, each compared with its "
                                       "sector peers.")
    flagged = hotspots(suppliers)
    if flagged.empty:
        return Panel("hotspots", TITLE, (note(
            f"No supplier is out of line with its sector peers ({compared} suppliers compared)."),), "ok", flagged)
    at_stake_t = float(flagged["kg_at_stake"].sum()) / 1000
    top = flagged.head(shown).assign(label=lambda d: [category_label(int(c)) for c in d["category"]],
                                     t=lambda d: d["kg_co2e"] / 1000, at_stake=lambda d: d["kg_at_stake"] / 1000)
    head = note(
        f"<b>{len(flagged)}</b> of {compared} suppliers are out of line with their sector peers; "
        f"<b>{at_stake_t:,.0f} t CO2e</b> at stake (what they emit above their sector's median intensity)."
        + (f" The {len(top)} largest:" if len(flagged) > len(top) else ""), "color:#222")
    rows = html_table(top, {"name": "Supplier", "label": "Category", "t": "t CO2e", "at_stake": "t CO2e at stake",
                            "explanation": "Why it is flagged"}, {"t": TONNES, "at_stake": TONNES}, "hotspots")
    return Panel("hotspots", TITLE, (head, rows), "ok", flagged)

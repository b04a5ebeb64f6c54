"""How much of the selection rests on ML estimates, and the share of each data source per category."""

from __future__ import annotations

import html

from ...accounting import inventory
from .. import charts
from . import Panel, PanelContext, code, note, register

TITLE = "How much is estimated"


@register("estimated", TITLE, scope="tenant", order=80)
def estimated_panel(ctx: PanelContext) -> Panel:
    entries, scope, slug = ctx.entries, ctx.scope_label, ctx.slug
    if entries.empty:
        return Panel("estimated", TITLE, (note(f"No emission entries yet ({html.escape(scope)})."),), "empty")
    shares = inventory.source_shares(entries)
    whole = shares.iloc[0]
    mix = ", ".join(f"{charts.SOURCE_LABELS.get(c.removesuffix('_share'), c.removesuffix('_share'))} "
                    f"{whole[c]:.0%}" for c in shares.columns if c.endswith("_share") and whole[c] > 0)
    figure = charts.source_mix(shares, f"Share of emissions by data source, {scope} (%)")
    if not whole["ml_kg_co2e"] > 0:
        who = f"{code(f'scope3 ml train {slug}')} then {code(f'scope3 ml predict {slug}')}" if slug else (
            f"{code('scope3 ml train')} then {code('scope3 ml predict')}")
        text = note(f"<b>No ML estimates</b> ({html.escape(scope)}): spend-based entries keep their EEIO "
                    f"sector factors. By data source: {html.escape(mix)}. An analyst estimates the suppliers "
                    f"that do not report with {who}.")
        return Panel("estimated", TITLE, (text, figure), "empty", shares)
    cats = shares.iloc[1:]
    with_ml = int((cats["ml_kg_co2e"] > 0).sum())
    text = note(
        f"<b>{whole['ml_share']:.0%}</b> of the emissions ({html.escape(scope)}: "
        f"{whole['ml_kg_co2e'] / 1000:,.0f} of {whole['kg_co2e'] / 1000:,.0f} t CO2e) are estimated by ML, in "
        f"{with_ml} of {len(cats)} categories. By data source: {html.escape(mix)}.", "color:#222")
    return Panel("estimated", TITLE, (text, figure), "ok", shares)

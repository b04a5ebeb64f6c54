"""The stored reduction scenarios against business as usual and the SBTi 1.5°C pathway, and the cost curve."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from ...errors import ScenarioError
from . import Panel, PanelContext, code, empty_panel, note, register

TITLE = "Scenarios"


@register("scenarios", TITLE, scope="tenant", order=100)
def scenarios_panel(ctx: PanelContext) -> Panel:
    """The figures of :func:`scope3lib.scenarios.dashboard_figures`: each scenario runs on its own, so one the
    inventory no longer supports (a lever naming a supplier that is gone) is named with the reason instead of
    hiding the others; when none runs the panel raises."""
    from ... import scenarios
    from ...tenancy import connected_tenant

    engine = ctx.engine
    stored = scenarios.list_scenarios(engine)
    if stored.empty:
        slug = ctx.slug or connected_tenant(engine) or "SLUG"
        return empty_panel("scenarios", "No scenarios stored yet: an analyst saves one with "
                                        f"{code(f'scope3 scenarios run {slug} FILE.yaml --save')}.", stored)
    results, broken = [], []
    for name in stored["name"].astype(str):
        try:
            results.append(scenarios.run(engine, scenarios.load(engine, name)))
        except ScenarioError as exc:
            broken.append(f"scenario {name!r}: {exc}")
    if not results:
        raise ScenarioError("; ".join(broken))
    names = [r.scenario.name for r in results]
    items: list[str | go.Figure] = [note(
        f"{len(names)} stored scenario{'s' if len(names) > 1 else ''} ({html.escape(', '.join(names))}) against "
        f"business as usual and the target pathway; the cost curve is of {html.escape(names[0])}.", "color:#222")]
    items += [note(f"Not shown: {html.escape(b)}", "color:#7a4f01") for b in broken]
    items += [scenarios.comparison_figure(results), scenarios.cost_curve_figure(results[0])]
    return Panel("scenarios", TITLE, tuple(items), "ok", stored)

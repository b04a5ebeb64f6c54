"""Metered energy of the last 30 days: kWh per day and the kg CO2e of the daily meter entries."""

from __future__ import annotations

from ...meters.status import daily_energy
from .. import charts
from . import Panel, PanelContext, register


@register("energy", "Metered energy, last 30 days", scope="live", order=60, on=("dashboard",), refresh_s=60)
def energy(ctx: PanelContext) -> Panel:
    daily = ctx.once("energy", lambda: daily_energy(ctx.engine))
    return Panel("energy", "Metered energy, last 30 days", (charts.recent_energy(daily, title=""),),
                 "ok" if len(daily) else "empty", daily)

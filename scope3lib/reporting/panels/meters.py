"""Meters now: each device's state, when it was last seen, and its energy and emissions today."""

from __future__ import annotations

import pandas as pd

from ...factors import lookup
from ...meters.status import device_status, kg_today
from ..tables import html_table
from . import Panel, PanelContext, register

_STATES = {"online": "online", "silent": "silent", "never": "never seen", "revoked": "removed"}


def device_table(devices: pd.DataFrame, kg: pd.Series) -> str:
    if devices.empty:
        return "<p>No meters registered.</p>"
    shown = devices.assign(
        status=devices["state"].map(_STATES).fillna(devices["state"]),
        last=pd.to_datetime(devices["last_seen"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
        kg=kg.to_numpy())
    return html_table(shown, {"device": "Meter", "supplier": "Supplier", "grid_region": "Grid region",
                              "status": "Status", "last": "Last reading (UTC)", "readings_today": "Readings today",
                              "kwh_today": "kWh today", "kg": "kg CO2e today"},
                      {"readings_today": "{:,}", "kwh_today": "{:,.2f}", "kg": "{:,.2f}"}, "device-status")


@register("meters", "Meters", scope="live", order=65, on=("dashboard",))
def meters(ctx: PanelContext) -> Panel:
    devices = ctx.once("devices", lambda: device_status(ctx.engine))
    factors = ctx.once("factors", lambda: lookup.factor_table(ctx.engine))
    kg = kg_today(devices, factors)
    data = devices.assign(kg_co2e_today=kg)
    return Panel("meters", "Meters", (device_table(devices, kg),), "ok" if len(devices) else "empty", data)

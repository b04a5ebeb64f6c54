"""Meters now: each device's state, when it was last seen and its readings today."""

from __future__ import annotations

import pandas as pd

from ...meters.status import device_status
from . import Panel, PanelContext, register


def device_table(devices: pd.DataFrame) -> str:
    if devices.empty:
        return "<p>No meters registered.</p>"
    shown = devices[["device", "supplier", "grid_region", "state", "last_seen", "readings_today"]].copy()
    shown["last_seen"] = pd.to_datetime(shown["last_seen"], utc=True).dt.strftime("%Y-%m-%d %H:%M UTC")
    return str(shown.to_html(index=False, na_rep="-", classes="device-status", border=0, escape=True))


@register("meters", "Meters", scope="live", order=65, on=("dashboard",))
def meters(ctx: PanelContext) -> Panel:
    devices = ctx.once("devices", lambda: device_status(ctx.engine))
    return Panel("meters", "Meters", (device_table(devices),), "ok" if len(devices) else "empty", devices)

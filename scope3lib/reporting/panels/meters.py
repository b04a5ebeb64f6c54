"""Meters now: each device's state, when it was last seen, and its energy and emissions today."""

from __future__ import annotations

import pandas as pd

from ...factors import lookup
from ...meters.status import device_status, kg_today
from . import Panel, PanelContext, register

_STATES = {"online": "online", "silent": "silent", "never": "never seen", "revoked": "removed"}


def device_table(devices: pd.DataFrame, kg: pd.Series) -> str:
    if devices.empty:
        return "<p>No meters registered.</p>"
    last = pd.to_datetime(devices["last_seen"], utc=True)
    shown = pd.DataFrame({
        "Meter": devices["device"],
        "Supplier": devices["supplier"].fillna("-"),
        "Grid region": devices["grid_region"],
        "Status": devices["state"].map(_STATES).fillna(devices["state"]),
        "Last reading (UTC)": last.dt.strftime("%Y-%m-%d %H:%M:%S").fillna("-"),
        "Readings today": devices["readings_today"].map("{:,}".format),
        "kWh today": devices["kwh_today"].map("{:,.1f}".format),
        "kg CO2e today": kg.map(lambda v: "-" if pd.isna(v) else f"{v:,.1f}"),
    })
    return str(shown.to_html(index=False, na_rep="-", classes="device-status", border=0, escape=True,
                             justify="left"))


@register("meters", "Meters", scope="live", order=65, on=("dashboard",))
def meters(ctx: PanelContext) -> Panel:
    devices = ctx.once("devices", lambda: device_status(ctx.engine))
    factors = ctx.once("factors", lambda: lookup.factor_table(ctx.engine))
    kg = kg_today(devices, factors)
    data = devices.assign(kg_co2e_today=kg)
    return Panel("meters", "Meters", (device_table(devices, kg),), "ok" if len(devices) else "empty", data)

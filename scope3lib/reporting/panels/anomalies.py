"""Meter anomalies of the last hour: gaps, stuck values, spikes and drift, each against the meter's own pattern."""

from __future__ import annotations

import datetime as dt
import html

import pandas as pd

from ..tables import html_table
from . import Panel, PanelContext, note, register

TITLE = "Meter anomalies, last hour"
WINDOW = dt.timedelta(hours=1)
SHOWN = 10
_KINDS = {"gap": "no readings", "stuck": "stuck value", "spike": "spike", "drift": "drift"}


@register("anomalies", TITLE, scope="live", order=67, on=("dashboard",))
def anomalies(ctx: PanelContext) -> Panel:
    """:func:`scope3lib.ml.anomalies.findings` over the readings of the last hour, newest first."""
    from ...ml.anomalies import device_readings, findings

    since = dt.datetime.now(dt.UTC) - WINDOW
    readings = device_readings(ctx.engine, since)
    if readings.empty:
        return Panel("anomalies", TITLE, (note("No meter readings in the last hour."),), "empty")
    found = findings(readings).sort_values("start", ascending=False)
    checked = f"{len(readings):,} readings from {readings['device_key'].nunique()} meters checked"
    if found.empty:
        return Panel("anomalies", TITLE, (note(f"No anomalies ({checked})."),), "ok", found)
    top = found.head(SHOWN).assign(
        what=lambda d: d["kind"].map(_KINDS).fillna(d["kind"]),
        since=lambda d: pd.to_datetime(d["start"], utc=True).dt.strftime("%H:%M:%S"),
        until=lambda d: pd.to_datetime(d["end"], utc=True).dt.strftime("%H:%M:%S"))
    head = note(f"<b>{len(found)}</b> finding{'s' if len(found) != 1 else ''} ({html.escape(checked)})"
                + (f"; the {SHOWN} most recent:" if len(found) > SHOWN else ":"), "color:#222")
    rows = html_table(top, {"device_key": "Meter", "what": "What", "since": "From (UTC)", "until": "To (UTC)",
                            "detail": "Detail"}, css_class="meter-anomalies")
    return Panel("anomalies", TITLE, (head, rows), "ok", found)

"""The tamper-evident ledger checked now: verified share of the entries, the last checkpoint, every discrepancy."""

from __future__ import annotations

import datetime as dt
import math

import plotly.graph_objects as go

from . import Panel, PanelContext, code, note, register

TITLE = "Verification"
DISCREPANCIES_SHOWN = 50  # rows of the verification table; `scope3 ledger verify` lists them all
_STATUS_STYLE = {  # (text colour, background) of the verification status line
    "green": ("#1b5e20", "#e6f4ea"), "red": ("#b3261e", "#fce8e6"), "amber": ("#7a4f01", "#fff4e5"),
}


def floor_pct(share: float) -> str:
    """A share as a percentage rounded down, so 2,639 verified entries of 2,640 never read as 100.0%."""
    return f"{math.floor(share * 1000) / 10:.1f}%"


def _status(colour: str, text: str) -> str:
    fg, bg = _STATUS_STYLE[colour]
    return (f"<div class='ledger-status ledger-{colour}' style='color:{fg};background:{bg};padding:6px 10px;"
            f"border-radius:4px;font-weight:600'>{text}</div>")


@register("verification", TITLE, scope="tenant", order=90)
def verification_panel(ctx: PanelContext) -> Panel:
    """:func:`scope3lib.ledger.log.verify` under a green, amber or red status line."""
    from ...ledger.log import verify

    report = verify(ctx.engine)
    cp = report.last_checkpoint
    slug = report.tenant
    n = len(report.discrepancies)
    if n:
        status = _status("red", f"&#10006; {n} discrepanc{'y' if n == 1 else 'ies'}: the inventory or its log no "
                                "longer matches what the ledger recorded")
    elif cp is None:
        status = _status("amber", f"no checkpoint signed yet: run {code(f'scope3 ledger checkpoint {slug}')}")
    elif report.verified == report.entries:
        status = _status("green", f"&#10004; Verified: all {report.entries:,} entries match the ledger and its "
                                  "signed checkpoint")
    else:
        status = _status("green", f"&#10004; No discrepancies; {report.entries - report.verified:,} entries changed "
                                  f"since the last checkpoint (run {code(f'scope3 ledger checkpoint {slug}')})")
    if cp is None:
        cp_text = "none yet"
    else:
        signed = cp.signed_at.astimezone(dt.UTC)
        cp_text = (f"{signed:%Y-%m-%d %H:%M} UTC, tree size {cp.tree_size:,} leaves"
                   + ("" if cp.valid else " (<b>its signature or root no longer holds</b>)"))
    facts = (f"<ul class='ledger-facts'>"
             f"<li>Verified entries: <b>{floor_pct(report.verified_share)}</b> ({report.verified:,} of "
             f"{report.entries:,})"
             f"</li><li>Last checkpoint: {cp_text}</li><li>Log: {report.log_size:,} leaves</li>"
             f"<li>Discrepancies: <b>{n}</b></li></ul>")
    items: list[str | go.Figure] = [status, facts]
    frame = report.discrepancies_frame()
    if n:
        shown = frame.head(DISCREPANCIES_SHOWN).astype({"entry_id": "Int64", "leaf_index": "Int64"})
        items.append(str(shown.to_html(index=False, na_rep="-", classes="ledger-discrepancies", border=0)))
        if n > DISCREPANCIES_SHOWN:
            items.append(note(f"The first {DISCREPANCIES_SHOWN} of {n}; "
                              f"{code(f'scope3 ledger verify {slug}')} lists them all."))
    return Panel("verification", TITLE, tuple(items), "empty" if cp is None and not n else "ok", frame)

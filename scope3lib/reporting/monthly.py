"""The monthly report: every panel of the registry shown "on" the report, over a window of months.

``notebooks/reports/monthly.ipynb`` calls :func:`show` with its parameters; papermill runs it on the
tenant's schedule (:mod:`scope3lib.reporting.runs`). Unlike the dashboard, a section that fails fails the
run, with the section named, so a report is never silently incomplete.
"""

from __future__ import annotations

import datetime as dt
import html

from sqlalchemy.engine import Engine

from ..accounting import inventory
from ..errors import Scope3Error
from ..tenancy import connected_tenant
from . import panels


class ReportSectionError(Scope3Error):
    """A section of a report could not be built; the run fails with the section named."""


def window_label(first: dt.date, last: dt.date) -> str:
    return f"{first:%B %Y} to {last:%B %Y}"


def show(engine: Engine, months: int = 12, end: str | None = None, top_n: int = 10) -> list[panels.Panel]:
    """Display the report for the ``months`` months ending at ``end`` (YYYY-MM; the latest month with entries
    when None); returns its panels."""
    from IPython.display import HTML, display

    first, last = inventory.month_window(engine, months, end or None)
    label = window_label(first, last)
    ctx = panels.PanelContext(engine, inventory.entries(engine, first, last), label, connected_tenant(engine),
                              top_n)
    display(HTML(f"<h1>Scope 3 emissions report</h1><p><b>{html.escape(label)}</b></p>"))
    shown = []
    for spec in panels.specs("report"):
        try:
            panel = spec.build(ctx)
        except Exception as exc:
            raise ReportSectionError(f"section {spec.title!r} failed: {exc}") from exc
        panel.display(level=2)
        shown.append(panel)
    return shown

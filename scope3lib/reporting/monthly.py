"""The monthly report: every panel of the registry shown "on" the report, over a window of months.

``notebooks/reports/monthly.ipynb`` calls :func:`show` with its parameters; papermill runs it on the
tenant's schedule (:mod:`scope3lib.reporting.runs`). Unlike the dashboard, a section that fails fails the
run, with the section named, so a report is never silently incomplete.
"""

from __future__ import annotations

import html

from sqlalchemy.engine import Engine

from ..accounting import inventory
from ..errors import Scope3Error
from ..tenancy import connected_tenant
from . import panels, tables


class ReportSectionError(Scope3Error):
    """A section of a report could not be built; the run fails with the section named."""


def show(engine: Engine, months: int | None = None, end: str | None = None, top_n: int = 10) -> list[panels.Panel]:
    """Display the report and return its panels. The period is :func:`scope3lib.accounting.inventory.reporting_window`:
    ``months`` months ending at ``end`` (YYYY-MM), or by default the last complete reporting year (or the open
    year to date, marked partial). A period without entries says so and shows no figures: never a 0 t result."""
    from IPython.display import HTML, display

    window = inventory.reporting_window(engine, months or None, end or None)
    entries = inventory.entries(engine, window.first, window.last)
    display(HTML(f"{tables.style()}<h1>Scope 3 emissions report</h1><p><b>{html.escape(window.label)}</b></p>"))
    if entries.empty:
        display(HTML(f"<p class='report-empty'>No emission entries in {html.escape(window.label)}: there is nothing "
                     f"to report for this period. {html.escape(_what_there_is(engine))}</p>"))
        return []
    ctx = panels.PanelContext(engine, entries, window.label, connected_tenant(engine), top_n)
    shown = []
    for spec in panels.specs("report"):
        try:
            panel = spec.build(ctx)
        except Exception as exc:
            raise ReportSectionError(f"section {spec.title!r} failed: {exc}") from exc
        panel.display(level=2, report=True)
        shown.append(panel)
    return shown


def _what_there_is(engine: Engine) -> str:
    span = inventory.entries(engine)["period_start"]
    if span.empty:
        return "The inventory has no entries yet."
    return f"The inventory has entries from {min(span):%B %Y} to {max(span):%B %Y}; choose a period among those."

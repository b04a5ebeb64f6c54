"""The executive dashboard: controls and panels, built once here and shown by Voila.

``notebooks/dashboards/executive.ipynb`` is one call, ``ExecutiveDashboard(scope3lib.connect()).show()``.
The data is read once with the tenant's read-only role; the controls (period, category, supplier)
filter it in memory, so a change redraws in milliseconds without a query.

Under them, four tenant-wide panels (:class:`Panel`): hotspots, how much of the inventory is estimated,
ledger verification and reduction scenarios. They are computed once, on first use, and never on a
redraw. Each has an empty state that says what to do (no checkpoint signed, no scenario stored, no ML
estimates, too few suppliers to compare); in the dashboard a panel that fails shows one line,
``panel unavailable: <reason>``, and logs the error, so the rest of the page still renders. The monthly
report shows the same panels built by the same functions, unguarded: there a failure fails the run.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..accounting import inventory
from ..categories import CATEGORIES, category_label
from ..errors import ScenarioError, Scope3Error
from ..meters.status import daily_energy, device_status
from ..tenancy import connected_tenant
from . import charts

log = logging.getLogger(__name__)

PRIMARY_SOURCES = ("manual", "iot")  # supplier-reported or metered, as opposed to imports of spend and ML


def kpis(entries: pd.DataFrame) -> dict[str, float]:
    """Headline figures of a selection of entries (t CO2e, shares in 0-1)."""
    total = float(entries["kg_co2e"].sum())
    primary = float(entries.loc[entries["data_source"].isin(PRIMARY_SOURCES), "kg_co2e"].sum())
    estimated = float(entries.loc[entries["data_source"] == "ml", "kg_co2e"].sum())
    spend = entries["spend"].fillna(0) if "spend" in entries else pd.Series(dtype=float)
    supplier_spend = spend[entries["method"] == "supplier_specific"].sum() if len(spend) else 0.0
    weighted_dq = (entries["data_quality"] * entries["kg_co2e"]).sum() / total if total else float("nan")
    return {
        "t_co2e": total / 1000,
        "primary_share": primary / total if total else 0.0,
        "estimated_share": estimated / total if total else 0.0,
        "supplier_data_spend_coverage": float(supplier_spend / spend.sum()) if len(spend) and spend.sum() else 0.0,
        "data_quality": float(weighted_dq),
        "suppliers": float(entries["supplier"].nunique()),
    }


def _kpi_html(k: dict[str, float], label: str) -> str:
    cells = [
        ("Total emissions", f"{k['t_co2e']:,.0f} t CO2e"),
        ("Primary data (supplier or meter)", f"{k['primary_share']:.0%}"),
        ("Estimated by ML", f"{k['estimated_share']:.0%}"),
        ("Spend covered by supplier data", f"{k['supplier_data_spend_coverage']:.0%}"),
        ("Data quality (1 best - 5)", "n/a" if pd.isna(k["data_quality"]) else f"{k['data_quality']:.1f}"),
        ("Suppliers", f"{k['suppliers']:,.0f}"),
    ]
    tiles = "".join(
        f"<div style='flex:1;min-width:150px;padding:8px 12px;border:1px solid #ddd;border-radius:6px'>"
        f"<div style='font-size:12px;color:#555'>{html.escape(t)}</div>"
        f"<div class='kpi-value' style='font-size:22px;font-weight:600'>{html.escape(v)}</div></div>"
        for t, v in cells
    )
    return (f"<div style='color:#555;margin:4px 0'>{html.escape(label)}</div>"
            f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{tiles}</div>")


def _device_table(devices: pd.DataFrame) -> str:
    if devices.empty:
        return "<p>No meters registered.</p>"
    shown = devices[["device", "supplier", "grid_region", "state", "last_seen", "readings_today"]].copy()
    shown["last_seen"] = pd.to_datetime(shown["last_seen"], utc=True).dt.strftime("%Y-%m-%d %H:%M UTC")
    return str(shown.to_html(index=False, na_rep="-", classes="device-status", border=0, escape=True))


# --- tenant-wide panels --------------------------------------------------------------------------

TITLES = {"hotspots": "Hotspots", "estimated": "How much is estimated", "verification": "Verification",
          "scenarios": "Scenarios"}
HOTSPOTS_SHOWN = 10
# Fewer suppliers than this and the comparison is noise: score_suppliers fits no IsolationForest below 8,
# and a pooled MAD over a handful of suppliers flags whoever happens to sit at an edge.
HOTSPOT_MIN_SUPPLIERS = 8
DISCREPANCIES_SHOWN = 50  # rows of the verification table; `scope3 ledger verify` lists them all
_STATUS_STYLE = {  # (text colour, background) of the verification status line
    "green": ("#1b5e20", "#e6f4ea"), "red": ("#b3261e", "#fce8e6"), "amber": ("#7a4f01", "#fff4e5"),
}

PanelState = Literal["ok", "empty", "unavailable"]


@dataclass(frozen=True, eq=False)  # eq would compare the DataFrames, which has no single truth value
class Panel:
    """One tenant-wide section of the dashboard and the monthly report.

    ``items`` are its content in display order: HTML strings and plotly figures. ``state`` is ``"ok"``,
    ``"empty"`` (nothing to show yet; the HTML says what would fill it) or ``"unavailable"`` (it failed;
    the HTML gives the reason in one line). ``data`` is the table behind it, for analysts and tests.
    """

    key: str
    title: str
    items: tuple[str | go.Figure, ...]
    state: PanelState = "ok"
    data: pd.DataFrame | None = None

    def html(self) -> str:
        """The title and the HTML items (figures left out)."""
        return f"<h3>{html.escape(self.title)}</h3>" + "".join(i for i in self.items if isinstance(i, str))

    def figures(self) -> list[go.Figure]:
        return [i for i in self.items if isinstance(i, go.Figure)]

    def display(self, title: bool = True) -> None:
        """Display the panel in a notebook, a report or an ipywidgets Output."""
        from IPython.display import HTML, display

        if title:
            display(HTML(f"<h3>{html.escape(self.title)}</h3>"))
        for item in self.items:
            display(HTML(item) if isinstance(item, str) else item)


def _note(text: str, style: str = "color:#555") -> str:
    return f"<p class='panel-note' style='{style}'>{text}</p>"


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def hotspots_panel(engine: Engine, shown: int = HOTSPOTS_SHOWN) -> Panel:
    """Suppliers out of line with their sector peers, largest emissions at stake first (whole inventory;
    :func:`scope3lib.ml.hotspots.tenant_hotspots`). Empty when fewer than :data:`HOTSPOT_MIN_SUPPLIERS`
    suppliers have both spend and emissions to compare."""
    from ..ml.hotspots import comparable, hotspots, tenant_intensities

    title = TITLES["hotspots"]
    suppliers = tenant_intensities(engine)
    compared = int(comparable(suppliers).sum())
    if compared < HOTSPOT_MIN_SUPPLIERS:
        return Panel("hotspots", title, (_note(
            f"Too few suppliers to compare: {compared} with both spend and emissions; hotspots need at least "
            f"{HOTSPOT_MIN_SUPPLIERS}, each compared with its sector peers."),), "empty")
    flagged = hotspots(suppliers)
    if flagged.empty:
        return Panel("hotspots", title, (_note(
            f"No supplier is out of line with its sector peers ({compared} suppliers compared)."),), "ok", flagged)
    at_stake_t = float(flagged["kg_at_stake"].sum()) / 1000
    top = flagged.head(shown)
    table = pd.DataFrame({
        "Supplier": top["name"],
        "Category": [category_label(int(c)) for c in top["category"]],
        "t CO2e": (top["kg_co2e"] / 1000).map("{:,.1f}".format),
        "t CO2e at stake": (top["kg_at_stake"] / 1000).map("{:,.1f}".format),
        "Why it is flagged": top["explanation"],
    })
    head = _note(
        f"<b>{len(flagged)}</b> of {compared} suppliers are out of line with their sector peers; "
        f"<b>{at_stake_t:,.0f} t CO2e</b> at stake (what they emit above their sector's median intensity)."
        + (f" The {len(top)} largest:" if len(flagged) > len(top) else ""), "color:#222")
    rows = str(table.to_html(index=False, classes="hotspots", border=0, justify="left"))
    return Panel("hotspots", title, (head, rows), "ok", flagged)


def estimated_panel(entries: pd.DataFrame, scope: str = "whole inventory", slug: str | None = None) -> Panel:
    """How much of ``entries`` rests on ML estimates, and the share of each data source per category."""
    title = TITLES["estimated"]
    if entries.empty:
        return Panel("estimated", title, (_note(f"No emission entries yet ({html.escape(scope)})."),), "empty")
    shares = inventory.source_shares(entries)
    whole = shares.iloc[0]
    mix = ", ".join(f"{charts.SOURCE_LABELS.get(c.removesuffix('_share'), c.removesuffix('_share'))} "
                    f"{whole[c]:.0%}" for c in shares.columns if c.endswith("_share") and whole[c] > 0)
    figure = charts.source_mix(shares, f"Share of emissions by data source, {scope} (%)")
    if not whole["ml_kg_co2e"] > 0:
        who = f"{_code(f'scope3 ml train {slug}')} then {_code(f'scope3 ml predict {slug}')}" if slug else (
            f"{_code('scope3 ml train')} then {_code('scope3 ml predict')}")
        note = _note(f"<b>No ML estimates</b> ({html.escape(scope)}): spend-based entries keep their EEIO "
                     f"sector factors. By data source: {html.escape(mix)}. An analyst estimates the suppliers "
                     f"that do not report with {who}.")
        return Panel("estimated", title, (note, figure), "empty", shares)
    cats = shares.iloc[1:]
    with_ml = int((cats["ml_kg_co2e"] > 0).sum())
    note = _note(
        f"<b>{whole['ml_share']:.0%}</b> of the emissions ({html.escape(scope)}: "
        f"{whole['ml_kg_co2e'] / 1000:,.0f} of {whole['kg_co2e'] / 1000:,.0f} t CO2e) are estimated by ML, in "
        f"{with_ml} of {len(cats)} categories. By data source: {html.escape(mix)}.", "color:#222")
    return Panel("estimated", title, (note, figure), "ok", shares)


def _floor_pct(share: float) -> str:
    """A share as a percentage rounded down, so 2,639 verified entries of 2,640 never read as 100.0%."""
    return f"{math.floor(share * 1000) / 10:.1f}%"


def _status(colour: str, text: str) -> str:
    fg, bg = _STATUS_STYLE[colour]
    return (f"<div class='ledger-status ledger-{colour}' style='color:{fg};background:{bg};padding:6px 10px;"
            f"border-radius:4px;font-weight:600'>{text}</div>")


def verification_panel(engine: Engine) -> Panel:
    """The tamper-evident ledger checked now (:func:`scope3lib.ledger.log.verify`): verified share of the
    entries, the last checkpoint, and every discrepancy, under a green, amber or red status line."""
    from ..ledger.log import verify

    report = verify(engine)
    cp = report.last_checkpoint
    slug = report.tenant
    n = len(report.discrepancies)
    if n:
        status = _status("red", f"&#10006; {n} discrepanc{'y' if n == 1 else 'ies'}: the inventory or its log no "
                                "longer matches what the ledger recorded")
    elif cp is None:
        status = _status("amber", f"no checkpoint signed yet: run {_code(f'scope3 ledger checkpoint {slug}')}")
    elif report.verified == report.entries:
        status = _status("green", f"&#10004; Verified: all {report.entries:,} entries match the ledger and its "
                                  "signed checkpoint")
    else:
        status = _status("green", f"&#10004; No discrepancies; {report.entries - report.verified:,} entries changed "
                                  f"since the last checkpoint (run {_code(f'scope3 ledger checkpoint {slug}')})")
    if cp is None:
        cp_text = "none yet"
    else:
        signed = cp.signed_at.astimezone(dt.UTC)
        cp_text = (f"{signed:%Y-%m-%d %H:%M} UTC, tree size {cp.tree_size:,} leaves"
                   + ("" if cp.valid else " (<b>its signature or root no longer holds</b>)"))
    facts = (f"<ul class='ledger-facts'>"
             f"<li>Verified entries: <b>{_floor_pct(report.verified_share)}</b> ({report.verified:,} of "
             f"{report.entries:,})"
             f"</li><li>Last checkpoint: {cp_text}</li><li>Log: {report.log_size:,} leaves</li>"
             f"<li>Discrepancies: <b>{n}</b></li></ul>")
    items: list[str | go.Figure] = [status, facts]
    frame = report.discrepancies_frame()
    if n:
        shown = frame.head(DISCREPANCIES_SHOWN).astype({"entry_id": "Int64", "leaf_index": "Int64"})
        items.append(str(shown.to_html(index=False, na_rep="-", classes="ledger-discrepancies", border=0)))
        if n > DISCREPANCIES_SHOWN:
            items.append(_note(f"The first {DISCREPANCIES_SHOWN} of {n}; "
                               f"{_code(f'scope3 ledger verify {slug}')} lists them all."))
    return Panel("verification", TITLES["verification"], tuple(items), "empty" if cp is None and not n else "ok",
                 frame)


def scenarios_panel(engine: Engine) -> Panel:
    """The tenant's stored scenarios against business as usual and the SBTi 1.5°C pathway, and the marginal
    abatement cost curve of the first that runs (the figures of :func:`scope3lib.scenarios.dashboard_figures`).

    Each scenario runs on its own: one the inventory no longer supports (a lever naming a supplier that is
    gone) is named with the reason instead of hiding the others; when none runs the panel raises.
    """
    from .. import scenarios

    title = TITLES["scenarios"]
    stored = scenarios.list_scenarios(engine)
    if stored.empty:
        slug = connected_tenant(engine) or "SLUG"
        return Panel("scenarios", title, (_note(
            "No scenarios stored yet: an analyst saves one with "
            f"{_code(f'scope3 scenarios run {slug} FILE.yaml --save')}."),), "empty", stored)
    results, broken = [], []
    for name in stored["name"].astype(str):
        try:
            results.append(scenarios.run(engine, scenarios.load(engine, name)))
        except ScenarioError as exc:
            broken.append(f"scenario {name!r}: {exc}")
    if not results:
        raise ScenarioError("; ".join(broken))
    names = [r.scenario.name for r in results]
    items: list[str | go.Figure] = [_note(
        f"{len(names)} stored scenario{'s' if len(names) > 1 else ''} ({html.escape(', '.join(names))}) against "
        f"business as usual and the target pathway; the cost curve is of {html.escape(names[0])}.", "color:#222")]
    items += [_note(f"Not shown: {html.escape(b)}", "color:#7a4f01") for b in broken]
    items += [scenarios.comparison_figure(results), scenarios.cost_curve_figure(results[0])]
    return Panel("scenarios", title, tuple(items), "ok", stored)


def _reason(exc: BaseException) -> str:
    """One line saying why a panel failed: a domain error's message, a database error's first line."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, sa.exc.DBAPIError):  # pandas wraps it in its own
        cause = cause.__cause__
    if isinstance(cause, sa.exc.DBAPIError) and cause.orig is not None:
        text = str(cause.orig)
    elif isinstance(exc, Scope3Error):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 300 else first[:299] + "…"


def guarded(key: str, build: Callable[[], Panel]) -> Panel:
    """``build()``, or when it raises, a panel saying ``panel unavailable: <reason>`` (the error is logged
    with its traceback, which viewers never see)."""
    try:
        return build()
    except Exception as exc:
        log.exception("dashboard panel %r failed", key)
        return Panel(key, TITLES.get(key, key), (_note(
            f"panel unavailable: {html.escape(_reason(exc))}", "color:#b3261e"),), "unavailable")


class _ServerLog(logging.StreamHandler[Any]):
    """The handler :func:`_log_to_server` installs (recognised so it is installed once)."""


def _log_to_server() -> None:
    """Send this module's log records to the kernel process's own stderr: the Voila service's log.

    In a kernel ``sys.stderr`` is the notebook's output (what a viewer could see) and ipykernel also
    forwards file descriptor 2 there; it keeps the process's real stderr as ``_original_stdstream_copy``
    (and routes its own log the same way).
    """
    if any(isinstance(h, _ServerLog) for h in log.handlers):
        return
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False)) if isinstance(fd, int) else sys.__stderr__
    if stream is None:
        return
    handler = _ServerLog(stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s %(asctime)s %(name)s] %(message)s"))
    log.addHandler(handler)
    log.propagate = False


def wait_for_viewer() -> None:
    """In a preheated Voila kernel, wait here until a viewer opens the page; elsewhere return at once.

    Voila runs the dashboard notebook in its pool kernels before anyone asks for it. Called after the
    imports and before the data is read, this keeps the slow part (kernel start, imports) ahead of the
    viewer and still reads the data for them, not minutes earlier at preheat time.
    """
    try:
        from voila.utils import wait_for_request
    except ImportError:  # not under Voila: nothing to wait for
        return
    # What the panels import lazily (scikit-learn for hotspots, the ledger, scenarios): ahead of the viewer too.
    import ipywidgets  # noqa: F401

    from .. import scenarios  # noqa: F401
    from ..ledger import log as ledger_log  # noqa: F401
    from ..ml import hotspots  # noqa: F401

    wait_for_request()


class ExecutiveDashboard:
    """Controls and panels over one tenant's inventory, read with ``engine`` (the read-only role)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.entries = inventory.entries(engine)
        self.devices = device_status(engine)
        self.energy = daily_energy(engine)
        months = sorted(pd.to_datetime(self.entries["period_start"]).dt.to_period("M").unique())
        self.months = [str(m) for m in months]
        self._tenant_panels: list[Panel] | None = None

    def select(self, first: str | None = None, last: str | None = None, category: int | None = None,
               supplier: str = "") -> pd.DataFrame:
        """Entries of months ``first``..``last`` (YYYY-MM), one category, suppliers whose name contains text."""
        df = self.entries
        month = pd.to_datetime(df["period_start"]).dt.to_period("M").astype(str)
        mask = pd.Series(True, index=df.index)
        if first:
            mask &= month >= first
        if last:
            mask &= month <= last
        if category:
            mask &= df["category"] == category
        if supplier.strip():
            mask &= df["supplier"].fillna("").str.contains(supplier.strip(), case=False, regex=False)
        return df[mask]

    def panels(self, selection: pd.DataFrame) -> list[Any]:
        """The figures of a selection, in display order."""
        return [
            charts.trend(selection),
            charts.by_category(selection),
            charts.top_suppliers(selection),
            charts.data_sources(selection),
            charts.recent_energy(self.energy),
        ]

    def tenant_panels(self) -> list[Panel]:
        """The tenant-wide panels (hotspots, estimates, verification, scenarios), computed on first use and
        kept: the controls do not change them. One that fails says why in a line; the others still show."""
        if self._tenant_panels is None:
            slug: str | None = None
            try:
                slug = connected_tenant(self.engine)
            except Exception:  # only the wording of the ML panel's hint needs it
                log.exception("cannot read the tenant's slug")
            self._tenant_panels = [
                guarded("hotspots", lambda: hotspots_panel(self.engine)),
                guarded("estimated", lambda: estimated_panel(self.entries, slug=slug)),
                guarded("verification", lambda: verification_panel(self.engine)),
                guarded("scenarios", lambda: scenarios_panel(self.engine)),
            ]
        return self._tenant_panels

    def show(self) -> None:
        """Display the controls and panels (in a notebook or Voila)."""
        import ipywidgets as w
        from IPython.display import display

        options = self.months or ["-"]
        period = w.SelectionRangeSlider(options=options, index=(0, len(options) - 1), description="Period",
                                        layout=w.Layout(width="480px"))
        category = w.Dropdown(options=[("All categories", 0)]
                              + [(category_label(n), n) for n in CATEGORIES], value=0, description="Category")
        supplier = w.Text(placeholder="name contains...", description="Supplier")
        kpi = w.HTML()
        figures = w.Output()
        devices = w.HTML(_device_table(self.devices))

        def redraw(*_: object) -> None:
            first, last = period.value if self.months else (None, None)
            sel = self.select(first, last, category.value or None, supplier.value)
            kpi.value = _kpi_html(kpis(sel), f"{first} to {last}" if first else "no entries yet")
            with figures:
                figures.clear_output(wait=True)
                for fig in self.panels(sel):
                    display(fig)

        for control in (period, category, supplier):
            control.observe(redraw, names="value")
        redraw()
        _log_to_server()
        sections: list[Any] = []
        for panel in self.tenant_panels():
            content = w.Output()
            with content:
                panel.display(title=False)
            sections += [w.HTML(f"<h3>{html.escape(panel.title)}</h3>"), content]
        display(w.VBox([
            w.HBox([period, category, supplier]),
            kpi,
            figures,
            w.HTML("<h3>Meters</h3>"),
            devices,
            *sections,
        ]))

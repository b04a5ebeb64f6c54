"""The executive dashboard: controls over the panels of :mod:`scope3lib.reporting.panels`, shown by Voila.

``notebooks/dashboards/executive.ipynb`` is one call, ``ExecutiveDashboard(scope3lib.connect()).show()``.
The data is read once with the tenant's read-only role; the controls (period, category, supplier) filter
it in memory, so a change redraws the selection's panels in milliseconds without a query. The tenant-wide
panels (hotspots, how much is estimated, ledger verification, scenarios) are computed once, on first use,
and never on a redraw. A panel that fails shows one line, ``panel unavailable: <reason>``, and logs the
error to the service's log, so the rest of the page still renders; the monthly report renders the same
panels unguarded, where a failure fails the run. Charts reach the browser as inline SVG
(:mod:`~scope3lib.reporting.svg`), not as plotly figures the browser would lay out.

The page's first view is plain HTML in the page itself (the default selection, the meters read when the viewer
arrived, the tenant-wide panels), drawn by the browser as the page arrives, before any script has run or the
kernel is connected; the controls and the live panels are widgets that take over their part of the page once
they have something new to show (:func:`_take_over`). In the dashboard service a preheated kernel prepares
that first view before its viewer arrives (:func:`wait_for_viewer`), for the data version it read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import html
import io
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..accounting import inventory
from ..categories import CATEGORIES, category_label
from ..errors import Scope3Error
from ..factors import lookup
from . import panels, svg, tables, tenant_cache
from .panels import Panel, PanelContext, note
from .panels.headline import kpis
from .panels.hotspots import HOTSPOT_MIN_SUPPLIERS

__all__ = ["HOTSPOT_MIN_SUPPLIERS", "ExecutiveDashboard", "Panel", "guarded", "kpis", "read_ahead", "wait_for_viewer"]

log = logging.getLogger(__name__)


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
        return Panel(key, panels.spec(key).title, (note(
            f"panel unavailable: {html.escape(_reason(exc))}", "color:#b3261e"),), "unavailable")


class _ServerLog(logging.StreamHandler[Any]):
    """The handler :func:`_log_to_server` installs (recognised so it is installed once per process)."""

    pid = 0


def _log_to_server() -> None:
    """Send this module's log records to the kernel process's own stderr: the Voila service's log.

    In a kernel ``sys.stderr`` is the notebook's output (what a viewer could see) and ipykernel also
    forwards file descriptor 2 there; it keeps the process's real stderr as ``_original_stdstream_copy``
    (and routes its own log the same way).
    """
    # A process forked from one that installed it (the kernel zygote's) gets its own: the parent's stream may now
    # be a descriptor ipykernel forwards to the page.
    for h in [h for h in log.handlers if isinstance(h, _ServerLog)]:
        if h.pid == os.getpid():
            return
        log.removeHandler(h)
    fd = getattr(sys.stderr, "_original_stdstream_copy", None)
    stream = io.TextIOWrapper(io.FileIO(fd, "w", closefd=False)) if isinstance(fd, int) else sys.__stderr__
    if stream is None:
        return
    handler = _ServerLog(stream)
    handler.pid = os.getpid()
    handler.setFormatter(logging.Formatter("[%(levelname)s %(asctime)s %(name)s] %(message)s"))
    log.addHandler(handler)
    log.propagate = False


def wait_for_viewer() -> None:
    """In a preheated Voila kernel, wait here until a viewer opens the page; elsewhere return at once.

    Voila runs the dashboard notebook in its pool kernels before anyone asks for it. Called after the
    imports, this keeps the slow part (kernel start, imports, reading the entries and the kept tenant-wide
    panels) ahead of the viewer, and the page still shows the data as it is when the viewer arrives: it
    uses what was read ahead only when the data version (:mod:`~scope3lib.reporting.tenant_cache`) is
    unchanged, and reads again otherwise.
    """
    try:
        from voila.utils import wait_for_request
    except ImportError:  # not under Voila: nothing to wait for
        return
    # What the page's own panels import, ahead of the viewer. The tenant-wide panels' scikit-learn, SciPy, ledger
    # and scenarios are not: the service's cache (tenant_cache) holds those panels, and a page kernel that never
    # computes them stays about 85 MB smaller.
    import ipywidgets  # noqa: F401

    from ..meters import status  # noqa: F401

    panels.specs()
    if os.environ.get("VOILA_PREHEAT", "False") != "False":
        read_ahead()
    wait_for_request()


@dataclass(frozen=True)
class _Entries:
    """The tenant's entries and the month (YYYY-MM) of each, which every redraw filters on."""

    frame: pd.DataFrame
    month: pd.Series

    @classmethod
    def read(cls, engine: Engine) -> _Entries:
        frame = inventory.entries(engine)
        return cls(frame, pd.to_datetime(frame["period_start"]).dt.to_period("M").astype(str))


@dataclass(frozen=True)
class FirstView:
    """What a page shows before its viewer touches a control: the default period (slider indices), and the HTML of
    the default selection's panels and of the tenant-wide panels."""

    index: tuple[int, int]
    selection: str
    tenant: str


# What this process read and prepared for the data version it last saw (a preheated kernel's, ahead of its viewer):
# at most one version, and the first view also for the day it was prepared (its default period follows the date).
_ENTRIES: dict[tenant_cache.Version, _Entries] = {}
_FIRST: dict[tuple[tenant_cache.Version, dt.date], FirstView] = {}


def _read_entries(engine: Engine, version: tenant_cache.Version | None) -> _Entries:
    """The tenant's entries: read now, or in the dashboard service, those read for this data version."""
    if version is None:
        return _Entries.read(engine)
    if version not in _ENTRIES:
        _ENTRIES.clear()
        _ENTRIES[version] = _Entries.read(engine)
    return _ENTRIES[version]


def read_ahead() -> bool:
    """Read the entries, load the kept tenant-wide panels and prepare the first view for the data as it is now, so
    that a page only checks that the data is still the same (one query) and reads the meters. A preheated kernel
    does it before it waits for its viewer, and the service's kernel zygote (:mod:`scope3lib.hub.forkserver`) for
    every kernel it forks; each finds done what the data has not changed since. True when anything was read anew."""
    from .. import db

    def held() -> tuple[object, ...]:  # the kept tenant-wide panels follow: a first view is made only over them
        return tuple(_ENTRIES), tuple(_FIRST)

    before = held()
    engine = db.connect()
    try:
        dashboard = ExecutiveDashboard(engine)
        # Only over kept tenant-wide panels: computing them here would bring scikit-learn and SciPy into the page
        # kernel (the service's refresher computes them; until then the viewer's page does).
        if dashboard.version is not None and tenant_cache.load(dashboard.version) is not None:
            dashboard.first_view()
    except Exception:  # the viewer's page reads it again, and says what fails
        log.warning("dashboard: reading ahead of the viewer failed", exc_info=True)
    finally:
        engine.dispose()
    return held() != before


class ExecutiveDashboard:
    """Controls and panels over one tenant's inventory, read with ``engine`` (the read-only role)."""

    def __init__(self, engine: Engine) -> None:
        _log_to_server()  # before anything here can log: a viewer never sees the service's log
        self.engine = engine
        # In the dashboard service: the data version, so that what a preheated kernel read ahead of its viewer is
        # used when (and only when) the data is still the same. Elsewhere None: read every time.
        self.version = tenant_cache.current_version(engine)
        read = _read_entries(engine, self.version)
        self.entries, self._month = read.frame, read.month
        self.months = sorted(self._month.unique())
        self._tenant_panels: list[Panel] | None = None
        self._slug: str | None = None
        self._factor_table: tuple[float, pd.DataFrame] | None = None

    @property
    def slug(self) -> str | None:
        if self._slug is None:
            from ..tenancy import connected_tenant  # here: its ORM models and alembic cost a page kernel ~18 MB

            try:
                self._slug = connected_tenant(self.engine)
            except Exception:  # only the wording of some panels' hints needs it
                log.exception("cannot read the tenant's slug")
        return self._slug

    def select(self, first: str | None = None, last: str | None = None, category: int | None = None,
               supplier: str = "") -> pd.DataFrame:
        """Entries of months ``first``..``last`` (YYYY-MM), one category, suppliers whose name contains text."""
        df, month = self.entries, self._month
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

    def _default_period(self) -> tuple[int, int]:
        """The slider's first selection: the report's period (the last complete reporting year, or the open year
        to date), so the page opens on the numbers the monthly report gives."""
        if not self.months:
            return 0, 0
        window = inventory.reporting_window(self.engine)
        first, last = f"{window.first:%Y-%m}", f"{window.last:%Y-%m}"
        inside = [i for i, m in enumerate(self.months) if first <= m <= last]
        return (inside[0], inside[-1]) if inside else (0, len(self.months) - 1)

    def _context(self, entries: pd.DataFrame, label: str = "whole inventory", tenant: bool = False) -> PanelContext:
        """Only the tenant-wide panels word hints with the slug: the others are built without reading it."""
        return PanelContext(self.engine, entries, label, self.slug if tenant else None)

    def _render(self, scope: panels.Scope, ctx: PanelContext) -> list[Panel]:
        return [guarded(s.key, functools.partial(s.build, ctx)) for s in panels.specs("dashboard", scope)]

    def panels(self, selection: pd.DataFrame, label: str = "whole inventory") -> list[Panel]:
        """The panels of a selection of entries, in display order (rebuilt on every change of the controls)."""
        return self._render("selection", self._context(selection, label))

    def live_panels(self, keys: set[str] | None = None) -> list[Panel]:
        """The meters' panels (all, or those of ``keys``), read now: an open page rebuilds each every
        ``refresh_s`` seconds of its registration."""
        ctx = self._context(self.entries)
        ctx.shared["factors"] = self._factors()
        return [guarded(s.key, functools.partial(s.build, ctx)) for s in panels.specs("dashboard", "live")
                if keys is None or s.key in keys]

    def _factors(self) -> pd.DataFrame:
        """The factor table the live panels price today's energy with, read at most every 10 minutes."""
        if self._factor_table is None or time.monotonic() - self._factor_table[0] > 600:
            self._factor_table = (time.monotonic(), lookup.factor_table(self.engine))
        return self._factor_table[1]

    def tenant_panels(self) -> list[Panel]:
        """The tenant-wide panels (hotspots, estimates, verification, scenarios), computed on first use and
        kept: the controls do not change them. One that fails says why in a line; the others still show. In the
        dashboard service they come from :mod:`~scope3lib.reporting.tenant_cache` when the data has not changed."""
        if self._tenant_panels is None:
            self._tenant_panels = tenant_cache.cached(
                self.engine, lambda: self._render("tenant", self._context(self.entries, tenant=True)), self.version)
        return self._tenant_panels

    def _selection_label(self, first: str | None, last: str | None) -> str:
        return f"{first} to {last}" if first else "no entries yet"

    def first_view(self) -> FirstView:
        """The default period and the HTML of its panels and of the tenant-wide panels; in the dashboard service,
        prepared once per data version and day (a preheated kernel does it before its viewer arrives)."""
        key = None if self.version is None else (self.version, dt.date.today())
        if key is not None and key in _FIRST:
            return _FIRST[key]
        index = self._default_period()
        first, last = (self.months[index[0]], self.months[index[1]]) if self.months else (None, None)
        selection = "".join(_html(p) for p in self.panels(self.select(first, last), self._selection_label(first, last)))
        tenant = "".join(_section(p.title, _html(p)) for p in self.tenant_panels())
        view = FirstView(index, selection, tenant)
        if key is not None:
            _FIRST.clear()
            _FIRST[key] = view
        return view

    def show(self) -> None:
        """Display the controls and panels (in a notebook or Voila).

        The first view is plain HTML, shown as the page arrives; each part that changes (the selection, when a
        control does; a live panel, at its refresh) is a widget box, empty until then, which then takes over from
        the plain HTML it replaces (:func:`_take_over`).
        """
        import ipywidgets as w
        from IPython.display import HTML, display

        view = self.first_view()
        page = uuid.uuid4().hex[:12]  # names this page's plain parts (a notebook may show several dashboards)
        period = w.SelectionRangeSlider(options=self.months or ["-"], index=view.index, description="Period",
                                        layout=w.Layout(width="480px"))
        category = w.Dropdown(options=[("All categories", 0)]
                              + [(category_label(n), n) for n in CATEGORIES], value=0, description="Category")
        supplier = w.Text(placeholder="name contains...", description="Supplier")
        selection = w.VBox()

        def redraw(*_: object) -> None:
            first, last = period.value if self.months else (None, None)
            sel = self.select(first, last, category.value or None, supplier.value)
            chosen = self.panels(sel, self._selection_label(first, last))
            _replace(selection, _take_over(f"s3-{page}-selection", [x for panel in chosen for x in _widgets(panel)]))

        for control in (period, category, supplier):
            control.observe(redraw, names="value")
        _log_to_server()
        live = self.live_panels()
        boxes = {p.key: w.VBox() for p in live}
        display(HTML(tables.style()), w.HBox([period, category, supplier]), selection,
                HTML(f"<div class='s3-{page}-selection'>{view.selection}</div>"))
        for panel in live:
            display(HTML(_section(panel.title, "")), boxes[panel.key],
                    HTML(f"<div class='s3-{page}-{panel.key}'>{_html(panel)}</div>"))
        display(HTML(view.tenant))
        try:
            loop = asyncio.get_running_loop()  # a kernel's (Voila, Jupyter); plain Python has none to keep a page live
        except RuntimeError:
            return
        self._live_task = loop.create_task(self._keep_live(boxes, page))

    async def _keep_live(self, boxes: dict[str, Any], page: str) -> None:
        """Rebuild each live panel every ``refresh_s`` seconds, for as long as the page's kernel lives: readings
        reach an open page without a reload and without re-running it. The queries run in a thread, so the
        page's controls stay responsive; only the widgets' new content crosses to the browser."""
        due = {s.key: time.monotonic() + s.refresh_s for s in panels.specs("dashboard", "live")}
        every = {s.key: s.refresh_s for s in panels.specs("dashboard", "live")}
        while True:
            await asyncio.sleep(max(0.5, min(due.values()) - time.monotonic()))
            keys = {k for k, t in due.items() if t <= time.monotonic()}
            try:
                fresh = await asyncio.to_thread(self.live_panels, keys)
            except Exception:  # never let a refresh end the loop: the next one may succeed
                log.exception("dashboard: refreshing the live panels failed")
                fresh = []
            for panel in fresh:
                _replace(boxes[panel.key], _take_over(f"s3-{page}-{panel.key}", _widgets(panel)))
            for k in keys:
                due[k] = time.monotonic() + every[k]


def _items(panel: Panel) -> list[str]:
    """A panel's items as HTML, its figures drawn as inline SVG (:mod:`~scope3lib.reporting.svg`: the browser draws
    no plotly chart)."""
    return [item if isinstance(item, str) else svg.figure_svg(item) for item in panel.items]


def _html(panel: Panel) -> str:
    return "".join(f"<div>{item}</div>" for item in _items(panel))


def _section(title: str, body: str) -> str:
    return f"<h3>{html.escape(title)}</h3>{body}"


def _widgets(panel: Panel) -> list[Any]:
    """A panel as HTML widgets, one per item. The page's kernel redraws them by replacing widgets, never by running
    code on the viewer's behalf."""
    import ipywidgets as w

    return [w.HTML(item) for item in _items(panel)]


def _take_over(plain: str, widgets: list[Any]) -> list[Any]:
    """``widgets``, the first of which also hides the page's plain HTML of class ``plain`` that they replace (the
    first view, drawn before the widgets could be). A style rule rather than a removal: the page's plain outputs
    are not widgets the kernel can change."""
    import ipywidgets as w

    hide = f"<style>.{plain} {{ display: none; }}</style>"
    if widgets:
        widgets[0].value = hide + widgets[0].value
        return widgets
    return [w.HTML(hide)]


def _replace(box: Any, children: list[Any]) -> None:
    """Show ``children`` in ``box`` and close the widgets they replace: a closed widget's model leaves the
    kernel and the browser, where a page refreshing its live panels every few seconds would otherwise keep
    every one it ever showed."""
    old = box.children
    box.children = children
    for widget in old:
        widget.close()

"""The panels people see, in one registry that the executive dashboard and the monthly report both render.

A panel is one module of this package: a function that builds a :class:`Panel` from a
:class:`PanelContext`, registered with :func:`register` (its key, title, order, where it appears and how
often it changes). Every module here is loaded when the registry is first used, so a new panel is one
module and nothing else: the dashboard and the report pick it up by its ``on`` and ``scope``.

Scopes say when a panel is rebuilt:

- ``selection``: from the entries selected (the dashboard's period, category and supplier controls; the
  report's months), rebuilt on every change of the controls, in memory, without a query;
- ``live``: what the meters do now, rebuilt every few seconds on an open dashboard;
- ``tenant``: the whole tenant (hotspots, estimates, ledger, scenarios), built once per page or report.
"""

from __future__ import annotations

import html
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy.engine import Engine

Scope = Literal["selection", "live", "tenant"]
Where = Literal["dashboard", "report"]
PanelState = Literal["ok", "empty", "unavailable"]


@dataclass(frozen=True, eq=False)  # eq would compare the DataFrames, which has no single truth value
class Panel:
    """One section of the dashboard and the monthly report.

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

    def display(self, title: bool = True, level: int = 3, report: bool = False) -> None:
        """Display the panel in a notebook, a report or an ipywidgets Output.

        With ``report``, each figure is displayed both as plotly's own output (interactive in JupyterLab) and
        as HTML that draws it with a plotly.js the page loads once (what the report's HTML export keeps), so
        a report does not carry a copy of plotly.js per figure.
        """
        from IPython.display import HTML, display

        if title:
            display(HTML(f"<h{level}>{html.escape(self.title)}</h{level}>"))
        for item in self.items:
            if isinstance(item, str):
                display(HTML(item))
            elif report:
                display({"application/vnd.plotly.v1+json": json.loads(item.to_json()),
                         "text/html": item.to_html(full_html=False, include_plotlyjs=False)}, raw=True)
            else:
                display(item)


@dataclass
class PanelContext:
    """What a panel is built from: the tenant's engine (the dashboard's read-only role, or the report's
    tenant role), the entries selected and words for them, and reads shared between panels."""

    engine: Engine
    entries: pd.DataFrame
    scope_label: str = "whole inventory"
    slug: str | None = None
    top_n: int = 10
    shared: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, read: Callable[[], Any]) -> Any:
        """``read()`` the first time ``name`` is asked for in this context, then the same value."""
        if name not in self.shared:
            self.shared[name] = read()
        return self.shared[name]


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    scope: Scope
    order: int
    on: tuple[Where, ...]
    build: Callable[[PanelContext], Panel]
    refresh_s: float = 5.0  # live panels: how often an open dashboard rebuilds it


_REGISTRY: dict[str, PanelSpec] = {}
_loaded = False


def register(key: str, title: str, *, scope: Scope, order: int, on: tuple[Where, ...] = ("dashboard", "report"),
             refresh_s: float = 5.0) -> Callable[[Callable[[PanelContext], Panel]], Callable[[PanelContext], Panel]]:
    """Register the decorated function as the builder of panel ``key`` (keys are unique); a ``live`` panel is
    rebuilt every ``refresh_s`` seconds on an open dashboard."""
    def decorate(build: Callable[[PanelContext], Panel]) -> Callable[[PanelContext], Panel]:
        if key in _REGISTRY and _REGISTRY[key].build is not build:
            raise ValueError(f"panel {key!r} is registered twice")
        _REGISTRY[key] = PanelSpec(key, title, scope, order, on, build, refresh_s)
        return build
    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def specs(on: Where | None = None, scope: Scope | None = None) -> list[PanelSpec]:
    """The registered panels shown ``on`` the dashboard or the report (all when None), of one ``scope``, in order."""
    _load()
    chosen = [s for s in _REGISTRY.values() if (on is None or on in s.on) and (scope is None or s.scope == scope)]
    return sorted(chosen, key=lambda s: (s.order, s.key))


def spec(key: str) -> PanelSpec:
    _load()
    return _REGISTRY[key]


def build(key: str, ctx: PanelContext) -> Panel:
    """Panel ``key`` built from ``ctx`` (exceptions propagate: the report fails, the dashboard guards)."""
    return spec(key).build(ctx)


# --- helpers the panel modules share ---------------------------------------------------------------


def note(text: str, style: str = "color:#555") -> str:
    """A paragraph of the panel (``text`` is HTML)."""
    return f"<p class='panel-note' style='{style}'>{text}</p>"


def code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def empty_panel(key: str, text: str, data: pd.DataFrame | None = None) -> Panel:
    return Panel(key, spec(key).title, (note(text),), "empty", data)

"""The registry of factor sources: one module per source, one registration each.

A source is a publisher's factor set (``epa-useeio``, ``desnz``, ``egrid``, ``ember``). Its module in this
package declares it with :func:`register`: its name and aliases (what users type after
``scope3 factors import``), the reader of its official file (when it has one), the releases of it that
ship in the built-in set (with their citation), and what kind of factors it holds: sector factors per
unit of spend (the spend-based method) or location-based grid electricity factors by region, ranked when
several sources cover one region. The CLI's choices, the store's built-in metadata and the factor lookup
all come from here. Every module of this package is loaded when the registry is first used; another
package can add a source through the ``scope3.factor_sources`` entry point (a module that registers).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from ...errors import InvalidArgument
from ..dataset import FactorDataset

ENTRY_POINT_GROUP = "scope3.factor_sources"


@dataclass(frozen=True)
class BuiltinRelease:
    """Metadata of a release whose curated subset ships in ``builtin.csv`` (each row has its own citation)."""

    name: str
    publisher: str
    licence: str
    citation: str


@dataclass(frozen=True)
class FactorSource:
    """One publisher's factor set.

    ``read`` turns the publisher's official file into a :class:`FactorDataset` (None: built-in only).
    ``sector_factors``: the source holds spend-based factors per currency unit by NAICS sector (EEIO).
    ``grid_rank``: the source holds location-based grid electricity factors (kg CO2e per kWh) by region;
    when several sources cover a region for the same year, the lowest rank wins (the most specific).
    """

    name: str
    title: str
    aliases: tuple[str, ...] = ()
    read: Callable[[Path], FactorDataset] | None = None
    builtin: Mapping[str, BuiltinRelease] = field(default_factory=dict)
    sector_factors: bool = False
    grid_rank: int | None = None


_REGISTRY: dict[str, FactorSource] = {}
_loaded = False


def register(source: FactorSource) -> FactorSource:
    """Add ``source`` to the registry (its name and aliases must be new); returns it."""
    for name in (source.name, *source.aliases):
        if name in _REGISTRY and _REGISTRY[name] is not source:
            raise ValueError(f"factor source name {name!r} is registered twice")
        _REGISTRY[name] = source
    return source


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def sources() -> list[FactorSource]:
    """Every registered source, once each, by name."""
    _load()
    return sorted({id(s): s for s in _REGISTRY.values()}.values(), key=lambda s: s.name)


def get(name: str) -> FactorSource:
    """The source called ``name`` (or one of its aliases, any case); refused with the known names."""
    _load()
    source = _REGISTRY.get(name.strip().lower())
    if source is None:
        raise InvalidArgument(f"unknown factor source {name!r}: choose one of {', '.join(sorted(_REGISTRY))}")
    return source


def importable() -> list[str]:
    """Names (and aliases) of the sources whose official files can be imported: the CLI's choices."""
    return sorted(n for s in sources() if s.read is not None for n in (s.name, *s.aliases))


def grid_sources() -> list[str]:
    """Sources of grid electricity factors, most specific first."""
    return [s.name for s in sorted((s for s in sources() if s.grid_rank is not None), key=lambda s: s.grid_rank or 0)]


def sector_sources() -> list[str]:
    return [s.name for s in sources() if s.sector_factors]

"""scope3lib: the shared library of the Scope 3 platform.

The public API that notebooks, dashboards, reports, the CLI and the ingest service use. The library is
grouped into packages named after the domain (``accounting``, ``factors``, ``meters``, ``ml``, ``ledger``,
``scenarios``, ``reporting``, ``hub``); the modules analysts use most are also reachable by their short
names, e.g. ``from scope3lib import inventory, estimates``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .categories import CATEGORIES, Category, DataSource, Method, category_label
from .db import connect
from .errors import Scope3Error

# Short names for notebooks, imported on first use so that `import scope3lib` stays fast.
_SHORT_NAMES = {
    "inventory": "scope3lib.accounting.inventory",
    "calculation": "scope3lib.accounting.calculation",
    "estimates": "scope3lib.ml.estimates",
    "hotspots": "scope3lib.ml.hotspots",
    "models_registry": "scope3lib.ml.registry",
    "ledger_log": "scope3lib.ledger.log",
    "charts": "scope3lib.reporting.charts",
    "executive": "scope3lib.reporting.executive",
}


def __getattr__(name: str) -> ModuleType:
    if name in _SHORT_NAMES:
        return importlib.import_module(_SHORT_NAMES[name])
    raise AttributeError(f"module 'scope3lib' has no attribute {name!r}")


__all__ = ["CATEGORIES", "Category", "DataSource", "Method", "Scope3Error", "category_label", "connect"]

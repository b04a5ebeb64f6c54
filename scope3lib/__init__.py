"""scope3lib: the shared library of the Scope 3 platform.

The public API that notebooks, dashboards, reports, the CLI and the ingest service use.
"""

from .categories import CATEGORIES, Category, DataSource, Method, category_label
from .db import connect
from .errors import Scope3Error

__all__ = ["CATEGORIES", "Category", "DataSource", "Method", "Scope3Error", "category_label", "connect"]

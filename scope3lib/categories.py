"""The 15 GHG Protocol Scope 3 categories, defined once and used everywhere.

Source: GHG Protocol, *Corporate Value Chain (Scope 3) Accounting and Reporting Standard* (2011),
table 5.4, and *Technical Guidance for Calculating Scope 3 Emissions* (2013), chapters 1-15, which
name the calculation methods each category allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Method(StrEnum):
    """Calculation methods of the Scope 3 Technical Guidance."""

    SPEND_BASED = "spend_based"
    AVERAGE_DATA = "average_data"
    DISTANCE_BASED = "distance_based"
    SUPPLIER_SPECIFIC = "supplier_specific"
    HYBRID = "hybrid"


class DataSource(StrEnum):
    MANUAL = "manual"
    IMPORT = "import"
    IOT = "iot"
    ML = "ml"


@dataclass(frozen=True)
class Category:
    number: int
    name: str
    stream: str  # "upstream" or "downstream"
    methods: frozenset[Method]


_M = Method
CATEGORIES: dict[int, Category] = {
    c.number: c
    for c in [
        Category(1, "Purchased goods and services", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.HYBRID, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(2, "Capital goods", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.HYBRID, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(3, "Fuel- and energy-related activities", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA})),
        Category(4, "Upstream transportation and distribution", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.DISTANCE_BASED, _M.SPEND_BASED})),
        Category(5, "Waste generated in operations", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(6, "Business travel", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.DISTANCE_BASED, _M.SPEND_BASED})),
        Category(7, "Employee commuting", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.DISTANCE_BASED, _M.SPEND_BASED})),
        Category(8, "Upstream leased assets", "upstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(9, "Downstream transportation and distribution", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.DISTANCE_BASED, _M.SPEND_BASED})),
        Category(10, "Processing of sold products", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA})),
        Category(11, "Use of sold products", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA})),
        Category(12, "End-of-life treatment of sold products", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA})),
        Category(13, "Downstream leased assets", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(14, "Franchises", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.SPEND_BASED})),
        Category(15, "Investments", "downstream",
                 frozenset({_M.SUPPLIER_SPECIFIC, _M.AVERAGE_DATA, _M.SPEND_BASED, _M.HYBRID})),
    ]
}


def category_label(number: int) -> str:
    """``"1 Purchased goods and services"``: the label reports and dashboards show."""
    return f"{number} {CATEGORIES[number].name}"

"""A factor dataset as read from its publisher's file, the helpers every reader shares, and the built-in set.

A :class:`FactorDataset` is one release of an official factor set (metadata and one row per factor).
Readers (one per source, in :mod:`scope3lib.factors.sources`) return one; storing it as a version is the
job of :mod:`scope3lib.factors.store`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FactorFileError

#: Columns of :attr:`FactorDataset.factors`, in this order.
FACTOR_COLUMNS: tuple[str, ...] = (
    "factor_key",
    "description",
    "unit",
    "region",
    "year",
    "kg_co2e_per_unit",
    "kg_co2_per_unit",
    "kg_ch4_per_unit",
    "kg_n2o_per_unit",
    "gwp",
    "scope",
    "category_hint",
)

# 100-year GWPs of CH4 and N2O, to turn a published "kg CO2e of CH4" back into kg of CH4.
GWP_CH4_N2O: dict[str, tuple[float, float]] = {"AR4": (25.0, 298.0), "AR5": (28.0, 265.0)}


@dataclass(eq=False)
class FactorDataset:
    """One release of an official factor set, as read from its publisher's file.

    ``factors`` has the columns of :data:`FACTOR_COLUMNS`: ``factor_key`` (unique within the dataset),
    ``description``, ``unit`` (the denominator of the factor: ``USD_2022``, ``kWh``, ``tonne.km``,
    ``passenger.km``, ``room.night``, ``litre``, ``tonne``, ``km``...), ``region``, ``year``,
    ``kg_co2e_per_unit`` (kg CO2e per unit), ``kg_co2_per_unit``, ``kg_ch4_per_unit`` and
    ``kg_n2o_per_unit`` (kg of each gas per unit, NaN where the publisher gives no split), ``gwp``
    (the IPCC assessment report of the GWPs, e.g. ``AR5``), ``scope`` (GHG Protocol scope the
    publisher lists the factor under, or NA) and ``category_hint`` (the Scope 3 category the factor
    usually serves, or NA).
    """

    source: str
    name: str
    version: str
    publisher: str
    licence: str
    citation: str
    sha256: str
    factors: pd.DataFrame = field(repr=False)

    def __len__(self) -> int:
        return len(self.factors)


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def existing_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FactorFileError(f"{p}: no such file")
    return p


def column_letter(index: int) -> str:
    """Spreadsheet column name of a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def first_true(mask: pd.Series | np.ndarray) -> int | None:
    """Position of the first True in a boolean mask, or None."""
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if hits.size else None


def factors_frame(data: pd.DataFrame | list[dict[str, Any]]) -> pd.DataFrame:
    """The factors frame with the columns of FACTOR_COLUMNS, in order, with their dtypes."""
    df = pd.DataFrame(data, columns=list(FACTOR_COLUMNS))
    df = df.astype(
        {
            "factor_key": str,
            "description": str,
            "unit": str,
            "region": str,
            "year": "int64",
            "kg_co2e_per_unit": "float64",
            "kg_co2_per_unit": "float64",
            "kg_ch4_per_unit": "float64",
            "kg_n2o_per_unit": "float64",
            "gwp": str,
            "scope": "Int64",
            "category_hint": "Int64",
        }
    )
    return df.reset_index(drop=True)


_BUILTIN = Path(__file__).with_name("builtin.csv")


@cache
def _builtin() -> pd.DataFrame:
    return pd.read_csv(_BUILTIN, dtype={"factor_key": str, "version": str})


def builtin_factors(source: str | None = None) -> pd.DataFrame:
    """The curated factors shipped with the package, each with its citation.

    Columns: source, version, factor_key, description, unit, region, year, kg_co2e_per_unit, gwp,
    citation. ``source`` filters to one dataset (``"epa-useeio"``, ...).
    """
    df = _builtin()
    return (df[df["source"] == source] if source else df).copy()

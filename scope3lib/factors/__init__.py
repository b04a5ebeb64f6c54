"""Emission-factor datasets: the built-in curated set, official importers, versioned storage."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from .importers import FACTOR_COLUMNS, FactorDataset, read_desnz, read_epa_useeio

__all__ = ["FACTOR_COLUMNS", "FactorDataset", "builtin_factors", "read_desnz", "read_epa_useeio"]

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

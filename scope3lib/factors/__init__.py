"""Emission factors as versioned data: the sources and their official files, the store, the one lookup.

- :mod:`.sources`: the registry of factor sources, one module each (US EPA USEEIO, UK DESNZ, eGRID, Ember).
- :mod:`.dataset`: a release as read from its publisher's file, and the built-in curated set.
- :mod:`.store`: datasets and factors in PostgreSQL, imported once, never overwritten.
- :mod:`.lookup`: which factor applies, by one documented rule (version and fallback).
"""

from __future__ import annotations

from .dataset import FACTOR_COLUMNS, FactorDataset, builtin_factors

__all__ = ["FACTOR_COLUMNS", "FactorDataset", "builtin_factors"]

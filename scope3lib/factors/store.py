"""Versioned factor storage in PostgreSQL: datasets and their factors, never overwritten.

A dataset is identified by ``(source, version)``. Importing the same official file again changes
nothing (its sha256 is recorded); a new release is a new dataset beside the old one, so entries keep
pointing at the version they were calculated with (DESIGN.md decision 6).

The built-in curated set (``builtin.csv``) is stored as datasets flagged ``builtin``. When the full
official file of the same release is imported later, it *completes* the built-in subset: every
built-in value with a key in the file must equal the file's value (else the import is refused), and
the file's other factors are added. Nothing already stored changes value.

Writes need the admin connection (the tables' owner); every platform role can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import FactorFileError, Scope3Error
from .importers import FactorDataset, read_desnz, read_epa_useeio

# Metadata of the sources the built-in set draws on; each factor row also carries its own citation.
BUILTIN_DATASETS: dict[tuple[str, str], dict[str, str]] = {
    ("epa-useeio", "1.3.0"): {
        "name": "Supply Chain Greenhouse Gas Emission Factors for US Industries and Commodities",
        "publisher": "US Environmental Protection Agency",
        "licence": "US Government work (public domain)",
        "citation": (
            "US EPA (2024), Supply Chain Greenhouse Gas Emission Factors for US Industries and Commodities "
            "v1.3.0, DOI 10.23719/1531143; column 'Supply Chain Emission Factors with Margins', kg CO2e per "
            "2022 USD (purchaser price); built-in subset of the NAICS codes the demo uses"
        ),
    },
    ("egrid", "2023"): {
        "name": "Emissions & Generation Resource Integrated Database (eGRID2023), subregion output emission rates",
        "publisher": "US Environmental Protection Agency",
        "licence": "US Government work (public domain)",
        "citation": (
            "US EPA, eGRID2023 (data year 2023), subregion total output emission rates, column SRC2ERTA "
            "(lb CO2e/MWh) converted to kg CO2e/kWh"
        ),
    },
    ("desnz", "2024-v1.1"): {
        "name": "Greenhouse gas reporting: conversion factors 2024 (full set for advanced users)",
        "publisher": "UK Department for Energy Security and Net Zero (DESNZ)",
        "licence": "Open Government Licence v3.0",
        "citation": (
            "DESNZ (2024), UK Government GHG Conversion Factors for Company Reporting, full set for advanced "
            "users, version 1.1; built-in subset (UK grid electricity)"
        ),
    },
    ("ember", "2023"): {
        "name": "Carbon intensity of electricity generation (lifecycle), by country",
        "publisher": "Ember; Energy Institute; processed by Our World in Data",
        "licence": "CC BY 4.0",
        "citation": (
            "Ember, Yearly Electricity Data, and Energy Institute, Statistical Review of World Energy, with "
            "processing by Our World in Data, 'Carbon intensity of electricity generation', gCO2e/kWh, 2023"
        ),
    },
}

#: Importers by the name users type after ``scope3 factors import``.
IMPORTERS = {"epa-useeio": read_epa_useeio, "desnz": read_desnz, "defra": read_desnz}

_FACTOR_COLUMNS = [
    "factor_key", "description", "unit", "region", "year", "kg_co2e_per_unit", "kg_co2_per_unit",
    "kg_ch4_per_unit", "kg_n2o_per_unit", "gwp", "scope", "category_hint", "citation",
]  # fmt: skip


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: ``imported`` (a new dataset), ``unchanged`` (the same file was already
    imported) or ``completed`` (the official file completed the built-in subset of that release)."""

    status: str
    source: str
    version: str
    factors: int  # factors of the dataset after the import
    added: int  # factors this import added

    def message(self) -> str:
        if self.status == "unchanged":
            return (f"{self.source} {self.version} is already imported from this file "
                    f"({self.factors} factors); nothing changed")
        if self.status == "completed":
            return (f"completed the built-in {self.source} {self.version} with the official file: "
                    f"{self.added} factors added, {self.factors} in all (built-in values checked equal)")
        return f"imported {self.source} {self.version}: {self.factors} factors"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    clean = df.astype(object).where(df.notna(), None)
    return [{str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in clean.to_dict("records")]


def _insert_factors(conn: Connection, dataset_id: int, factors: pd.DataFrame) -> int:
    if factors.empty:
        return 0
    df = factors.copy()
    for col in _FACTOR_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[_FACTOR_COLUMNS].assign(dataset_id=dataset_id)
    result = conn.execute(
        sa.text(
            "INSERT INTO factors (dataset_id, factor_key, description, unit, region, year, kg_co2e_per_unit, "
            "kg_co2_per_unit, kg_ch4_per_unit, kg_n2o_per_unit, gwp, scope, category_hint, citation) "
            "VALUES (:dataset_id, :factor_key, :description, :unit, :region, :year, :kg_co2e_per_unit, "
            ":kg_co2_per_unit, :kg_ch4_per_unit, :kg_n2o_per_unit, :gwp, :scope, :category_hint, :citation) "
            "ON CONFLICT (dataset_id, factor_key, region, year) DO NOTHING"
        ),
        _records(df),
    )
    return int(result.rowcount or 0)


def load_builtin(conn: Connection) -> int:
    """Store the built-in curated set (idempotent); returns how many factors were added."""
    from . import builtin_factors

    added = 0
    df = builtin_factors()
    for (source, version), group in df.groupby(["source", "version"], sort=False):
        meta = BUILTIN_DATASETS.get((str(source), str(version)))
        if meta is None:
            raise Scope3Error(f"builtin.csv has dataset {source} {version} without metadata in BUILTIN_DATASETS")
        dataset_id = conn.scalar(
            sa.text("SELECT id FROM factor_datasets WHERE source = :s AND version = :v"),
            {"s": source, "v": version},
        )
        if dataset_id is None:
            dataset_id = conn.scalar(
                sa.text(
                    "INSERT INTO factor_datasets (source, version, name, publisher, licence, citation, builtin) "
                    "VALUES (:s, :v, :name, :publisher, :licence, :citation, true) RETURNING id"
                ),
                {"s": source, "v": version, **meta},
            )
        added += _insert_factors(conn, int(dataset_id), group.drop(columns=["source", "version"]))
    return added


def ensure_builtin(engine: Engine) -> int:
    """Load built-in factors added since the database was migrated (admin engine; idempotent)."""
    with engine.begin() as conn:
        return load_builtin(conn)


def import_dataset(engine: Engine, dataset: FactorDataset) -> ImportOutcome:
    """Store ``dataset`` as a new version; a no-op for a file already imported; never an overwrite."""
    with engine.begin() as conn:
        # One import of a given release at a time: a second one waits, then sees the first's result.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"factor-import:{dataset.source}:{dataset.version}"})
        row = conn.execute(
            sa.text("SELECT id, sha256, builtin FROM factor_datasets WHERE source = :s AND version = :v"),
            {"s": dataset.source, "v": dataset.version},
        ).first()
        if row is not None and row.sha256 == dataset.sha256:
            count = conn.scalar(sa.text("SELECT count(*) FROM factors WHERE dataset_id = :d"), {"d": row.id})
            return ImportOutcome("unchanged", dataset.source, dataset.version, int(count or 0), 0)
        if row is not None and not row.builtin:
            raise FactorFileError(
                f"{dataset.source} {dataset.version} is already imported from another file (sha256 "
                f"{str(row.sha256)[:12]}..., this file {dataset.sha256[:12]}...); a stored version is never "
                "overwritten: import the publisher's new release, which carries a new version"
            )
        if row is not None:  # the built-in subset of this release: complete it
            stored = pd.read_sql(
                sa.text("SELECT factor_key, region, year, kg_co2e_per_unit FROM factors WHERE dataset_id = :d"),
                conn, params={"d": row.id},
            )
            merged = stored.merge(dataset.factors, on="factor_key", how="inner", suffixes=("_stored", ""))
            differs = ~np.isclose(merged["kg_co2e_per_unit_stored"], merged["kg_co2e_per_unit"], rtol=1e-9,
                                  atol=0.0)
            if differs.any():
                bad = merged[differs].iloc[0]
                raise FactorFileError(
                    f"{dataset.source} {dataset.version}: the built-in factor {bad['factor_key']} is "
                    f"{bad['kg_co2e_per_unit_stored']} but the file says {bad['kg_co2e_per_unit']}; refusing "
                    "to change a stored value (is this file the release it claims to be?)"
                )
            new = dataset.factors[~dataset.factors["factor_key"].isin(stored["factor_key"])]
            added = _insert_factors(conn, int(row.id), new)
            conn.execute(
                sa.text(
                    "UPDATE factor_datasets SET sha256 = :h, builtin = false, name = :name, publisher = :p, "
                    "licence = :l, citation = :c WHERE id = :d"
                ),
                {"h": dataset.sha256, "name": dataset.name, "p": dataset.publisher, "l": dataset.licence,
                 "c": dataset.citation, "d": row.id},
            )
            count = conn.scalar(sa.text("SELECT count(*) FROM factors WHERE dataset_id = :d"), {"d": row.id})
            return ImportOutcome("completed", dataset.source, dataset.version, int(count or 0), added)
        dataset_id = conn.scalar(
            sa.text(
                "INSERT INTO factor_datasets (source, version, name, publisher, licence, citation, sha256) "
                "VALUES (:s, :v, :name, :p, :l, :c, :h) RETURNING id"
            ),
            {"s": dataset.source, "v": dataset.version, "name": dataset.name, "p": dataset.publisher,
             "l": dataset.licence, "c": dataset.citation, "h": dataset.sha256},
        )
        added = _insert_factors(conn, int(dataset_id), dataset.factors)
        return ImportOutcome("imported", dataset.source, dataset.version, added, added)


def import_file(engine: Engine, kind: str, path: str | Path) -> ImportOutcome:
    """Read an official file with the importer for ``kind`` (``epa-useeio``, ``desnz``/``defra``) and store it."""
    reader = IMPORTERS.get(kind.lower())
    if reader is None:
        from ..errors import InvalidArgument

        raise InvalidArgument(f"unknown factor file kind {kind!r}: choose one of {', '.join(sorted(IMPORTERS))}")
    return import_dataset(engine, reader(path))


def datasets(engine: Engine | Connection) -> pd.DataFrame:
    """Every stored dataset with its licence, citation and number of factors, oldest first."""
    sql = sa.text(
        "SELECT d.source, d.version, d.name, d.publisher, d.licence, d.citation, d.sha256, d.builtin, "
        "d.imported_at, (SELECT count(*) FROM factors f WHERE f.dataset_id = d.id) AS factors "
        "FROM factor_datasets d ORDER BY d.source, d.imported_at, d.id"
    )
    return _read(engine, sql)


def _read(engine: Engine | Connection, sql: sa.TextClause, params: dict[str, Any] | None = None) -> pd.DataFrame:
    if isinstance(engine, Connection):
        return pd.read_sql(sql, engine, params=params)
    with engine.connect() as conn:
        return pd.read_sql(sql, conn, params=params)


def latest_version(engine: Engine | Connection, source: str) -> str:
    df = datasets(engine)
    df = df[df["source"] == source]
    if df.empty:
        raise Scope3Error(f"no factor dataset {source!r} (see `scope3 factors datasets`)")
    return str(df.iloc[-1]["version"])


def list_factors(engine: Engine | Connection, source: str, version: str | None = None) -> pd.DataFrame:
    """Factors of one dataset (the latest version when ``version`` is None): factor_key, description,
    unit, region, year, kg_co2e_per_unit (plus the gas split, GWP and citation)."""
    version = version or latest_version(engine, source)
    df = _read(
        engine,
        sa.text(
            "SELECT f.factor_key, f.description, f.unit, f.region, f.year, f.kg_co2e_per_unit, f.kg_co2_per_unit, "
            "f.kg_ch4_per_unit, f.kg_n2o_per_unit, f.gwp, f.citation FROM factors f "
            "JOIN factor_datasets d ON d.id = f.dataset_id WHERE d.source = :s AND d.version = :v "
            "ORDER BY f.factor_key, f.region, f.year"
        ),
        {"s": source, "v": version},
    )
    if df.empty:
        known = datasets(engine)
        versions = known.loc[known["source"] == source, "version"].tolist()
        if not versions:
            raise Scope3Error(f"no factor dataset {source!r} (see `scope3 factors datasets`)")
        raise Scope3Error(f"no version {version!r} of {source!r}; stored versions: {', '.join(versions)}")
    return df


def factor_table(engine: Engine | Connection) -> pd.DataFrame:
    """All stored factors with their dataset: source, version, factor_key, unit, region, year,
    kg_co2e_per_unit, and ``latest`` (True for the most recently imported version of each source).
    This is what :func:`scope3lib.accounting.calculation.calculate` joins against."""
    df = _read(
        engine,
        sa.text(
            "SELECT d.source, d.version, d.imported_at, d.id AS dataset_id, f.factor_key, f.unit, f.region, f.year, "
            "f.kg_co2e_per_unit FROM factors f JOIN factor_datasets d ON d.id = f.dataset_id"
        ),
    )
    order = df[["source", "imported_at", "dataset_id"]].drop_duplicates().sort_values(["imported_at", "dataset_id"])
    newest = order.groupby("source")["dataset_id"].last()
    df["latest"] = df["dataset_id"].isin(newest.to_numpy())
    return df.drop(columns=["imported_at", "dataset_id"])


def builtin_factor_table() -> pd.DataFrame:
    """The built-in set in the shape of :func:`factor_table`, for calculating without a database."""
    from . import builtin_factors

    df = builtin_factors()[["source", "version", "factor_key", "unit", "region", "year", "kg_co2e_per_unit"]]
    return df.assign(latest=True)

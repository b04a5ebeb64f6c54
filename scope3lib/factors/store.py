"""Versioned factor storage in PostgreSQL: datasets and their factors, never overwritten.

A dataset is identified by ``(source, version)``. Importing the same official file again changes
nothing (its sha256 is recorded); a new release is a new dataset beside the old one, so entries keep
pointing at the version they were calculated with (docs/design.md, decision 6).

The built-in curated set (``builtin.csv``) is stored as datasets flagged ``builtin``. When the full
official file of the same release is imported later, it *completes* the built-in subset: every
built-in value with a key in the file must equal the file's value (else the import is refused), and
the file's other factors are added. Nothing already stored changes value.

Writes need the admin connection (the tables' owner); every platform role can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import frames
from ..db import read_frame
from ..errors import FactorFileError, InvalidArgument, Scope3Error
from . import sources
from .dataset import FactorDataset, builtin_factors

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
        frames.rows(df),
    )
    return int(result.rowcount or 0)


def load_builtin(conn: Connection) -> int:
    """Store the built-in curated set (idempotent); returns how many factors were added."""
    added = 0
    df = builtin_factors()
    for (source, version), group in df.groupby(["source", "version"], sort=False):
        release = sources.get(str(source)).builtin.get(str(version))
        if release is None:
            raise Scope3Error(f"builtin.csv has dataset {source} {version}, which its source does not declare "
                              "as a built-in release (scope3lib/factors/sources)")
        meta = {"name": release.name, "publisher": release.publisher, "licence": release.licence,
                "citation": release.citation}
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
            stored = read_frame(conn, "SELECT factor_key, region, year, kg_co2e_per_unit FROM factors "
                                      "WHERE dataset_id = :d", {"d": row.id})
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
    """Read an official file with the reader of source ``kind`` (a name or alias of
    :mod:`scope3lib.factors.sources`, e.g. ``epa-useeio``, ``desnz``/``defra``) and store it."""
    source = sources.get(kind)
    if source.read is None:
        raise InvalidArgument(f"factor source {source.name!r} has no importer: choose one of "
                              f"{', '.join(sources.importable())}")
    return import_dataset(engine, source.read(Path(path)))


def datasets(engine: Engine | Connection) -> pd.DataFrame:
    """Every stored dataset with its licence, citation and number of factors, oldest first."""
    sql = sa.text(
        "SELECT d.source, d.version, d.name, d.publisher, d.licence, d.citation, d.sha256, d.builtin, "
        "d.imported_at, (SELECT count(*) FROM factors f WHERE f.dataset_id = d.id) AS factors "
        "FROM factor_datasets d ORDER BY d.source, d.imported_at, d.id"
    )
    return read_frame(engine, sql)


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
    df = read_frame(
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

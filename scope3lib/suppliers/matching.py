"""Vendors of an ERP extract matched to the tenant's suppliers: by identifier, then by normalised name.

The order, the first that finds one supplier wins:

1. the ERP vendor number, when a supplier has it as an alias (``vendor_id`` of the supplier file, or a
   match an analyst confirmed);
2. the VAT number, LEI or DUNS number of the line, against the suppliers' identifiers;
3. the vendor's normalised name (:func:`~.identifiers.name_key`), against the suppliers' names and their
   name aliases (names of merged records, names an analyst confirmed). A key two suppliers share matches
   neither.

Nothing else is applied: :func:`candidates` ranks likely suppliers for the vendors left unmatched (character
n-gram TF-IDF over the names, cosine similarity), for an analyst to confirm; a confirmation becomes an alias.
Work is per distinct vendor, then mapped back to the lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from . import identifiers as ids


@dataclass(frozen=True)
class SupplierIndex:
    """What matching looks vendors up in, read once per import."""

    by_vendor_id: dict[str, int]
    by_identifier: dict[str, dict[str, int]]  # field -> value -> supplier id
    by_name: dict[str, int]  # name key -> supplier id (keys two suppliers share are left out)
    names: pd.DataFrame  # supplier_id, name, key, naics_code: the live records, for candidates

    @classmethod
    def read(cls, bind: Engine | Connection) -> SupplierIndex:
        sup = db.read_frame(bind, "SELECT id, name, naics_code, lei, duns, vat_number FROM suppliers "
                                  "WHERE merged_into IS NULL")
        aliases = db.read_frame(bind, "SELECT supplier_id, kind, alias_key FROM supplier_aliases")
        return cls.build(sup, aliases)

    @classmethod
    def build(cls, sup: pd.DataFrame, aliases: pd.DataFrame) -> SupplierIndex:
        keys = ids.name_keys(sup["name"])
        named = pd.concat([pd.DataFrame({"key": keys, "id": sup["id"].to_numpy()}),
                           aliases.loc[aliases["kind"] == "name", ["alias_key", "supplier_id"]]
                           .set_axis(["key", "id"], axis=1)]).drop_duplicates()
        shared = named["key"].duplicated(keep=False)
        by_name = dict(zip(named.loc[~shared, "key"], named.loc[~shared, "id"].astype(int), strict=True))
        vendor = aliases[aliases["kind"] == "vendor_id"]
        by_identifier = {f: dict(zip(sup[f].dropna(), sup.loc[sup[f].notna(), "id"].astype(int), strict=True))
                         for f in ("lei", "duns", "vat_number")}
        return cls(dict(zip(vendor["alias_key"], vendor["supplier_id"].astype(int), strict=True)), by_identifier,
                   by_name, pd.DataFrame({"supplier_id": sup["id"].astype(int), "name": sup["name"], "key": keys,
                                          "naics_code": sup["naics_code"]}))


def _canonical(check: object, value: str) -> str:
    try:
        return str(check(value)) if value else ""  # type: ignore[operator]
    except ValueError:
        return ""


def match_vendors(vendors: pd.DataFrame, index: SupplierIndex) -> tuple[np.ndarray, np.ndarray]:
    """The supplier of each distinct vendor (-1 none) and how it was found (``vendor_id``, ``vat_number``, ``lei``,
    ``duns``, ``name`` or ``""``). ``vendors``: vendor_id, vendor_name and optionally vat_number, lei, duns."""
    n = len(vendors)
    found = np.full(n, -1, dtype=np.int64)
    how = np.full(n, "", dtype=object)

    def take(values: pd.Series | np.ndarray | list[str | None], table: dict[str, int], label: str) -> None:
        hit = pd.Series(np.asarray(values, dtype=object)).map(table).to_numpy(dtype="float64")
        new = (found < 0) & np.isfinite(hit)
        found[new] = hit[new].astype(np.int64)
        how[new] = label

    take([ids.vendor_number(v) for v in vendors["vendor_id"]], index.by_vendor_id, "vendor_id")
    checks = {"vat_number": ids.vat_number, "lei": ids.lei, "duns": ids.duns}
    for f, check in checks.items():
        if f in vendors:
            take([_canonical(check, str(v)) or None for v in vendors[f]], index.by_identifier[f], f)
    take(ids.name_keys(vendors["vendor_name"]), index.by_name, "name")
    return found, how


def candidates(names: list[str], index: SupplierIndex, top: int = 3, threshold: float = 0.5) -> list[list[tuple[
        int, str, float]]]:
    """For each vendor name, up to ``top`` suppliers whose names look alike (id, name, similarity 0-1), best first.
    Suggestions only: nothing is matched until an analyst confirms one."""
    if not names or index.names.empty:
        return [[] for _ in names]
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))
    known = vec.fit_transform(index.names["key"].astype(str))
    asked = vec.transform([ids.name_key(n) for n in names])
    sims = (asked @ known.T).toarray()
    out = []
    for row in sims:
        best = np.argsort(-row)[:top]
        sid, name = index.names["supplier_id"].to_numpy(dtype=np.int64), index.names["name"].to_numpy(dtype=object)
        out.append([(int(sid[j]), str(name[j]), round(float(row[j]), 3))
                    for j in best if row[j] >= threshold])
    return out

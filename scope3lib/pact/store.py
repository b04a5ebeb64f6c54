"""The product footprints a tenant publishes over PACT: the one writer of ``pact_footprints``.

A JSON array of v3 ProductFootprints is imported all or nothing, validated by :mod:`scope3lib.pact.model`;
a footprint never changes once published (spec section 7.2), so importing an id again is accepted only with
the same document (nothing changes), and a footprint that lists earlier ones in ``precedingPfIds`` deprecates
them. Lists select with :mod:`scope3lib.pact.filters` on the narrow filter columns (the product and company
criteria narrow in SQL first, on GIN indexes) and read only the page's documents.

The functions take an engine and a tenant slug: the CLI passes the admin engine (``scope3 pact footprints``),
a notebook and the API the tenant's own roles (row-level security confines each to the tenant's rows).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from scope3lib.errors import FootprintNotFound, FootprintRefused, Problem
from scope3lib.pact.filters import COLUMNS, FootprintFilter, mask
from scope3lib.pact.model import ProductFootprint, notes, parse_footprints
from scope3lib.pages import page
from scope3lib.tenancy import tenant_id

_INSERT = sa.text(
    "INSERT INTO pact_footprints (tenant_id, id, document, status, product_ids, company_ids, classifications, "
    "geography, valid_from, valid_until, created, imported_by) VALUES (:t, :id, :doc, :status, :products, "
    ":companies, :classes, :geo, :start, :end, :created, :by)"
).bindparams(sa.bindparam("doc", type_=JSONB))


@dataclass(frozen=True)
class Imported:
    """What an import did: footprints added, already published unchanged, earlier ones deprecated, and the
    PACT Methodology's notes on the added ones (``(path, message)``, none of them a refusal)."""

    added: int
    unchanged: int
    deprecated: int
    notes: list[Problem]


def footprint_uuid(text: str) -> uuid.UUID | None:
    """A footprint id (``8-4-4-4-12`` hex, optionally ``urn:uuid:``-prefixed) as a UUID; None if it is none."""
    try:
        return uuid.UUID(text.strip().removeprefix("urn:uuid:"))
    except ValueError:
        return None


def _row(tid: int, fp: ProductFootprint, imported_by: str) -> dict[str, Any]:
    start, end = fp.validity()
    geography = fp.pcf.geography
    return {"t": tid, "id": footprint_uuid(fp.id), "doc": fp.to_json(), "status": fp.status,
            "products": [v.lower() for v in fp.productIds], "companies": [v.lower() for v in fp.companyIds],
            "classes": [v.lower() for v in fp.productClassifications or []],
            "geo": geography.lower() if geography else None, "start": start, "end": end, "created": fp.created,
            "by": imported_by}


def _repeats(footprints: Sequence[ProductFootprint], source: str) -> dict[int, list[Problem]]:
    first: dict[uuid.UUID | None, int] = {}
    refusals: dict[int, list[Problem]] = {}
    for i, fp in enumerate(footprints):
        key = footprint_uuid(fp.id)
        if key in first:
            refusals[i] = [(f"{source}[{i}].id", f"repeats {source}[{first[key]}].id ({fp.id}): each footprint "
                                                 "has its own id")]
        first.setdefault(key, i)
    return refusals


def import_footprints(engine: Engine, slug: str, items: object, *, source: str = "footprints",
                      imported_by: str = "operator") -> Imported:
    """Publish the footprints of a JSON array; all or nothing (:class:`~scope3lib.errors.FootprintRefused`
    names each refused footprint's field)."""
    footprints = parse_footprints(items, source)
    refusals = _repeats(footprints, source)
    if refusals:
        raise FootprintRefused(source, refusals, len(footprints))
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        rows = [_row(tid, fp, imported_by) for fp in footprints]
        known = {r.id: r.document for r in conn.execute(
            sa.text("SELECT id, document FROM pact_footprints WHERE tenant_id = :t AND id = ANY(:ids)"),
            {"t": tid, "ids": [r["id"] for r in rows]})}
        new, unchanged = [], 0
        for i, row in enumerate(rows):
            if row["id"] not in known:
                new.append(i)
            elif _same(known[row["id"]], row["doc"]):
                unchanged += 1
            else:
                refusals[i] = [(f"{source}[{i}].id", f"footprint {footprints[i].id} is already published with other "
                                "values, and a published footprint never changes: publish the correction with a "
                                "new id that lists this one in precedingPfIds")]
        if refusals:
            raise FootprintRefused(source, refusals, len(footprints))
        if new:
            conn.execute(_INSERT, [rows[i] for i in new])
        preceding = {footprint_uuid(p) for fp in footprints for p in fp.precedingPfIds or []}
        deprecated = _deprecate(conn, tid, [p for p in preceding if p is not None], must_exist=False)
    added_notes = [(f"{source}[{i}].{path}", message) for i, fp in enumerate(footprints)
                   for path, message in notes(fp) if i in set(new)]
    return Imported(added=len(new), unchanged=unchanged, deprecated=deprecated, notes=added_notes)


def _same(stored: dict[str, Any], given: dict[str, Any]) -> bool:
    # A footprint deprecated since it was published is still the same footprint.
    return {**stored, "status": given["status"]} == given


def _deprecate(conn: Connection, tid: int, ids: list[uuid.UUID], *, must_exist: bool) -> int:
    if must_exist:
        have = set(conn.scalars(sa.text("SELECT id FROM pact_footprints WHERE tenant_id = :t AND id = ANY(:ids)"),
                                {"t": tid, "ids": ids}))
        missing = [i for i in ids if i not in have]
        if missing:
            raise FootprintNotFound(str(missing[0]))
    result = conn.execute(
        sa.text("UPDATE pact_footprints SET status = 'Deprecated', updated_at = now(), "
                "document = jsonb_set(document, '{status}', '\"Deprecated\"') "
                "WHERE tenant_id = :t AND id = ANY(:ids) AND status = 'Active'"), {"t": tid, "ids": ids})
    return int(result.rowcount or 0)


def deprecate(engine: Engine, slug: str, footprint_ids: Sequence[str]) -> int:
    """Mark published footprints Deprecated (they stay listed and fetchable); how many changed.
    An id the tenant does not have is :class:`~scope3lib.errors.FootprintNotFound`, and nothing changes."""
    ids = []
    for text in footprint_ids:
        value = footprint_uuid(text)
        if value is None:
            raise FootprintNotFound(text)
        ids.append(value)
    with engine.begin() as conn:
        return _deprecate(conn, tenant_id(conn, slug), ids, must_exist=True)


def _frame(conn: Connection, tid: int, flt: FootprintFilter) -> pd.DataFrame:
    where, params = ["tenant_id = :t"], dict[str, Any](t=tid)
    # The list criteria a footprint names itself narrow on the GIN indexes; mask() then decides every criterion.
    for name, column in (("productId", "product_ids"), ("companyId", "company_ids")):
        if getattr(flt, name):
            where.append(f"{column} && CAST(:{name} AS text[])")
            params[name] = [v.lower() for v in getattr(flt, name)]
    rows = conn.execute(sa.text(
        "SELECT id, status, product_ids, company_ids, classifications, geography, valid_from, valid_until "
        f"FROM pact_footprints WHERE {' AND '.join(where)} ORDER BY seq"), params).all()
    frame = pd.DataFrame(
        [(r.id, r.status.lower(), tuple(r.product_ids), tuple(r.company_ids), tuple(r.classifications),
          (r.geography,) if r.geography else (), r.valid_from, r.valid_until) for r in rows], columns=list(COLUMNS))
    for column in ("validFrom", "validUntil"):
        frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(UTC)
    return frame


def _documents(conn: Connection, tid: int, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    if not ids:
        return []
    found = {r.id: r.document for r in conn.execute(
        sa.text("SELECT id, document FROM pact_footprints WHERE tenant_id = :t AND id = ANY(:ids)"),
        {"t": tid, "ids": ids})}
    return [found[i] for i in ids if i in found]


def list_footprints(engine: Engine, slug: str, flt: FootprintFilter | None = None, *, limit: int | None = None,
                    offset: int = 0, max_page: int = 1000) -> tuple[list[dict[str, Any]], int | None]:
    """``(footprints as the spec's JSON, offset of the next page or None)``: those ``flt`` selects, in the order
    they were published, at most ``limit`` and ``max_page`` of them from ``offset``."""
    flt = flt or FootprintFilter()
    with engine.connect() as conn:
        tid = tenant_id(conn, slug)
        if flt.is_empty():  # no criterion: the page straight from the index, one more row telling if more remain
            size = max_page if limit is None else min(limit, max_page)
            ids = list(conn.scalars(sa.text("SELECT id FROM pact_footprints WHERE tenant_id = :t ORDER BY seq "
                                            "OFFSET :o LIMIT :n"), {"t": tid, "o": offset, "n": size + 1}))
            more = len(ids) > size and size > 0
            return _documents(conn, tid, ids[:size]), (offset + size if more else None)
        frame = _frame(conn, tid, flt)
        if not frame.empty:
            frame = frame[mask(frame, flt)]
        ids, following = page(list(frame["id"]), limit, offset, max_page)
        return _documents(conn, tid, ids), following


def get_footprint(engine: Engine, slug: str, footprint_id: str) -> dict[str, Any]:
    """One published footprint as the spec's JSON (deprecated ones too);
    :class:`~scope3lib.errors.FootprintNotFound` for an id the tenant does not have."""
    key = footprint_uuid(footprint_id)
    if key is None:
        raise FootprintNotFound(footprint_id)
    with engine.connect() as conn:
        found = _documents(conn, tenant_id(conn, slug), [key])
    if not found:
        raise FootprintNotFound(footprint_id)
    return found[0]


def summary(engine: Engine, slug: str) -> list[dict[str, Any]]:
    """Every published footprint, one line each (id, status, products, company, validity) for listings."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, status, document->>'productNameCompany' AS product, product_ids, valid_from, valid_until, "
            "imported_at FROM pact_footprints WHERE tenant_id = :t ORDER BY seq"),
            {"t": tenant_id(conn, slug)}).mappings()
        return [dict(r) for r in rows]

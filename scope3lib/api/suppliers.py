"""Suppliers: list, read, create, change, delete, and bulk import (all or nothing, matched by name).

Every write to ``suppliers`` from the API goes through :func:`write_suppliers` and :func:`delete_supplier`,
the one small place to switch to the library's supplier writer when there is one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Connection

from ..tenancy import check_limit
from .auth import Reader, Writer
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

router = APIRouter(tags=["suppliers"])
Ctx = Annotated[ApiContext, Depends(context)]
SupplierId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SupplierFields(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored
    naics_code: str | None = Field(default=None, pattern=r"^\d{2,6}$", description="NAICS sector code")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=64)
    annual_spend: float | None = Field(default=None, ge=0, le=1e15)
    spend_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217")


class SupplierIn(SupplierFields):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class SupplierPatch(SupplierFields):
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")


class Supplier(SupplierIn):
    id: int
    created_at: dt.datetime


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suppliers: list[SupplierIn] = Field(min_length=1, max_length=10_000)


class BulkResult(BaseModel):
    created: int
    updated: int


_COLUMNS = ("name", "naics_code", "country", "region", "annual_spend", "spend_currency")
_SELECT = ("SELECT id, name, naics_code, country, region, annual_spend::float8 AS annual_spend, spend_currency, "
           "created_at FROM suppliers")


def write_suppliers(conn: Connection, slug: str, tenant_id: int, rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Insert new suppliers and update those whose name exists, in the caller's transaction; (created, updated)."""
    names = [r["name"].strip() for r in rows]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ApiProblem(422, "Invalid input", f"supplier {dup!r} is given twice", field="body.suppliers")
    existing = set(conn.scalars(sa.text("SELECT name FROM suppliers WHERE name = ANY(:n)"), {"n": names}))
    new = [n for n in names if n not in existing]
    if new:
        check_limit(conn, slug, "suppliers", "SELECT count(*) FROM suppliers WHERE tenant_id = :t", extra=len(new))
    params = [{**{c: r.get(c) for c in _COLUMNS}, "name": r["name"].strip(), "t": tenant_id} for r in rows]
    conn.execute(sa.text(
        "INSERT INTO suppliers (tenant_id, name, naics_code, country, region, annual_spend, spend_currency) "
        "VALUES (:t, :name, :naics_code, :country, :region, :annual_spend, :spend_currency) "
        "ON CONFLICT (tenant_id, name) DO UPDATE SET naics_code = excluded.naics_code, country = excluded.country, "
        "region = excluded.region, annual_spend = excluded.annual_spend, spend_currency = excluded.spend_currency"),
        params)
    return len(new), len(names) - len(new)


def update_supplier(conn: Connection, supplier_id: int, changes: dict[str, Any]) -> bool:
    if not changes:
        return bool(conn.scalar(sa.text("SELECT 1 FROM suppliers WHERE id = :i"), {"i": supplier_id}))
    sets = ", ".join(f"{c} = :{c}" for c in changes)
    result = conn.execute(sa.text(f"UPDATE suppliers SET {sets} WHERE id = :i"), {**changes, "i": supplier_id})
    return result.rowcount > 0


def delete_supplier(conn: Connection, supplier_id: int) -> bool:
    return conn.execute(sa.text("DELETE FROM suppliers WHERE id = :i"), {"i": supplier_id}).rowcount > 0


def _one(conn: Connection, supplier_id: int) -> dict[str, Any]:
    row = conn.execute(sa.text(f"{_SELECT} WHERE id = :i"), {"i": supplier_id}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no supplier {supplier_id}", field="path.supplier_id")
    return dict(row)


@router.get("/suppliers", response_model=Page[Supplier], summary="List suppliers")
def list_suppliers(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                   cursor: Cursor = None,
                   name: Annotated[str | None, Query(max_length=200, description="Name contains (any case)")] = None,
                   naics_code: Annotated[str | None, Query(max_length=6)] = None,
                   country: Annotated[str | None, Query(max_length=2)] = None) -> dict[str, Any]:
    where: list[str] = ["tenant_id = :tid"]
    params: dict[str, Any] = {"tid": ctx.tenant_id, "n": limit + 1}
    after = decode(cursor, (int,))
    for cond, key, value in (("id > :after", "after", after[0] if after else None),
                             ("strpos(lower(name), lower(:name)) > 0", "name", name),
                             ("naics_code = :naics", "naics", naics_code), ("country = :country", "country", country)):
        if value is not None:
            where.append(cond)
            params[key] = value
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.text(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id LIMIT :n"), params).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/suppliers/{supplier_id}", response_model=Supplier, summary="One supplier")
def get_supplier(supplier_id: SupplierId, ctx: Ctx, who: Reader) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        return _one(conn, supplier_id)


@router.post("/suppliers", response_model=Supplier, status_code=201, summary="Add a supplier")
def create_supplier(body: SupplierIn, ctx: Ctx, who: Writer) -> dict[str, Any]:
    with ctx.write.begin() as conn:
        if conn.scalar(sa.text("SELECT 1 FROM suppliers WHERE name = :n"), {"n": body.name.strip()}):
            raise ApiProblem(409, "Conflict", f"a supplier named {body.name.strip()!r} exists", field="body.name")
        write_suppliers(conn, ctx.slug, ctx.tenant_id, [body.model_dump()])
        sid = conn.scalar(sa.text("SELECT id FROM suppliers WHERE name = :n"), {"n": body.name.strip()})
        return _one(conn, int(sid))


@router.patch("/suppliers/{supplier_id}", response_model=Supplier, summary="Change a supplier")
def patch_supplier(supplier_id: SupplierId, body: SupplierPatch, ctx: Ctx, who: Writer) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes:
        if changes["name"] is None:
            raise ApiProblem(422, "Invalid input", "name cannot be null", field="body.name")
        changes["name"] = changes["name"].strip()
    with ctx.write.begin() as conn:
        if not update_supplier(conn, supplier_id, changes):
            raise ApiProblem(404, "Not found", f"no supplier {supplier_id}", field="path.supplier_id")
        return _one(conn, supplier_id)


@router.delete("/suppliers/{supplier_id}", status_code=204, summary="Delete a supplier without entries")
def remove_supplier(supplier_id: SupplierId, ctx: Ctx, who: Writer) -> Response:
    with ctx.write.begin() as conn:
        if conn.scalar(sa.text("SELECT 1 FROM emission_entries WHERE supplier_id = :i LIMIT 1"), {"i": supplier_id}):
            raise ApiProblem(409, "Conflict", f"supplier {supplier_id} has emission entries; they keep it",
                             field="path.supplier_id")
        if not delete_supplier(conn, supplier_id):
            raise ApiProblem(404, "Not found", f"no supplier {supplier_id}", field="path.supplier_id")
    return Response(status_code=204)


@router.post("/suppliers/bulk", response_model=BulkResult, summary="Import suppliers: add new names, update known")
def bulk_suppliers(body: BulkIn, ctx: Ctx, who: Writer) -> BulkResult:
    """All or nothing: one refused supplier (or the plan's limit) leaves the tenant's suppliers as they were."""
    with ctx.write.begin() as conn:
        created, updated = write_suppliers(conn, ctx.slug, ctx.tenant_id, [s.model_dump() for s in body.suppliers])
    return BulkResult(created=created, updated=updated)

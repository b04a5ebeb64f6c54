"""Suppliers: list, read, create, change, archive, restore, merge, history, and bulk import (all or nothing).

Every change goes through the library's one supplier writer, :mod:`scope3lib.suppliers.records`: the same
checks as a notebook or the CLI (sector codes with a factor, grid regions, currencies, identifiers, duplicates
by identifier or normalised name), the same history, written by PostgreSQL's trigger, naming the API caller
(``key:<prefix>`` or ``user:<name>``) as the person who made the change. Here only the HTTP shape is checked
(types, lengths) and the library's refusals are turned into problems naming the field at fault.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import frames
from ..errors import DuplicateSupplier, RowsRefused, SupplierError, UnknownSupplier
from ..suppliers import records
from .auth import Principal, Reader, Writer
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem, FieldError

router = APIRouter(tags=["suppliers"])
Ctx = Annotated[ApiContext, Depends(context)]
SupplierId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reason = Annotated[str | None, Query(max_length=500, description="Why, kept in the supplier's history")]
T = TypeVar("T")


class SupplierFields(BaseModel):
    """The fields of a record; their values are checked by the library (a refusal names the field)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field is refused, not ignored
    naics_code: str | None = Field(default=None, max_length=10,
                                   description="NAICS code with a spend-based factor in the stored sector dataset")
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2")
    region: str | None = Field(default=None, max_length=64, description="Grid region of the stored factor datasets")
    annual_spend: float | None = Field(default=None, ge=0, le=1e15,
                                       description="Needs spend_currency and spend_year")
    spend_currency: str | None = Field(default=None, max_length=3, description="ISO 4217, one with exchange rates")
    spend_year: int | None = Field(default=None, ge=1990, le=2100)
    lei: str | None = Field(default=None, max_length=40, description="ISO 17442 Legal Entity Identifier")
    duns: str | None = Field(default=None, max_length=20, description="D-U-N-S number (nine digits)")
    vat_number: str | None = Field(default=None, max_length=40, description="VAT number with its country prefix")
    contact_email: str | None = Field(default=None, max_length=254)


class SupplierIn(SupplierFields):
    name: str = Field(min_length=1, max_length=200, pattern=r"\S")


class SupplierPatch(SupplierFields):
    """Fields to change; ``null`` clears a field (not the name)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")


class Supplier(SupplierIn):
    id: int
    archived_at: dt.datetime | None = Field(default=None, description="Set when archived (or merged)")
    merged_into: int | None = Field(default=None, description="The record this one was merged into")
    created_at: dt.datetime
    updated_at: dt.datetime | None = None


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    other: int = Field(ge=1, le=2**63 - 1, description="The record merged into this one (then archived)")
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


class Change(BaseModel):
    id: int
    changed_at: dt.datetime
    actor: str | None = Field(description="Who: the API key (key:<prefix>), hub user (user:<name>) or person")
    role_name: str | None
    action: str
    reason: str | None
    changes: dict[str, list[Any]] = Field(description="{field: [before, after]}")


class History(BaseModel):
    items: list[Change]


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suppliers: list[SupplierIn] = Field(min_length=1, max_length=10_000)


class BulkResult(BaseModel):
    created: int
    updated: int
    unchanged: int


_SELECT = ("SELECT id, name, naics_code, country, region, annual_spend::float8 AS annual_spend, spend_currency, "
           "spend_year, lei, duns, vat_number, contact_email, archived_at, merged_into, created_at, updated_at "
           "FROM suppliers")


@contextmanager
def _refusals(supplier_id: int | None = None) -> Iterator[None]:
    """The library's refusals as problems: a field at fault is named (``body.<field>``; 409 for a duplicate,
    422 for an invalid value), an unknown id is 404, a record in the wrong state (merged, archived) is 409."""
    try:
        yield
    except UnknownSupplier as exc:
        if supplier_id is None:
            raise
        raise ApiProblem(404, "Not found", f"no supplier {supplier_id}", field="path.supplier_id") from exc
    except SupplierError as exc:
        status, title = (409, "Duplicate supplier") if isinstance(exc, DuplicateSupplier) else (422, "Invalid input")
        if not exc.fields:
            raise ApiProblem(409, "Conflict", str(exc),
                             field="path.supplier_id" if supplier_id is not None else None) from exc
        raise ApiProblem(status, title, str(exc), errors=[FieldError(field=f"body.{f}", message=m)
                                                          for f, m in exc.fields]) from exc


def _write(who: Principal, supplier_id: int | None, change: Callable[[], T]) -> T:
    """Run a change of the library as the caller, with its refusals as problems."""
    with records.acting_as(who.label), _refusals(supplier_id):
        return change()


def _one(ctx: ApiContext, supplier_id: int) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        row = conn.execute(sa.text(f"{_SELECT} WHERE id = :i"), {"i": supplier_id}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no supplier {supplier_id}", field="path.supplier_id")
    return dict(row)


@router.get("/suppliers", response_model=Page[Supplier], summary="List suppliers")
def list_suppliers(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                   cursor: Cursor = None,
                   name: Annotated[str | None, Query(max_length=200, description="Name contains (any case)")] = None,
                   naics_code: Annotated[str | None, Query(max_length=6)] = None,
                   country: Annotated[str | None, Query(max_length=2)] = None,
                   archived: Annotated[bool, Query(description="true: the archived (and merged) records instead "
                                                               "of the live ones")] = False) -> dict[str, Any]:
    where: list[str] = ["tenant_id = :tid", f"archived_at IS {'NOT ' if archived else ''}NULL"]
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


@router.get("/suppliers/{supplier_id}", response_model=Supplier, summary="One supplier (archived ones too)")
def get_supplier(supplier_id: SupplierId, ctx: Ctx, who: Reader) -> dict[str, Any]:
    return _one(ctx, supplier_id)


@router.post("/suppliers", response_model=Supplier, status_code=201, summary="Add a supplier")
def create_supplier(body: SupplierIn, ctx: Ctx, who: Writer, reason: Reason = None) -> dict[str, Any]:
    """Refused (409) when another record is the same company: the same LEI, DUNS or VAT number, or the same
    normalised name ("ACME Corp." and "Acme Corporation")."""
    fields = body.model_dump(exclude_none=True)
    sid = _write(who, None, lambda: records.create(ctx.write, reason=reason, **fields))
    return _one(ctx, sid)


@router.patch("/suppliers/{supplier_id}", response_model=Supplier, summary="Change a supplier")
def patch_supplier(supplier_id: SupplierId, body: SupplierPatch, ctx: Ctx, who: Writer,
                   reason: Reason = None) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise ApiProblem(422, "Invalid input", "name cannot be null", field="body.name")
    _write(who, supplier_id, lambda: records.update(ctx.write, supplier_id, reason=reason, **changes))
    return _one(ctx, supplier_id)


@router.delete("/suppliers/{supplier_id}", status_code=204, summary="Archive a supplier")
def remove_supplier(supplier_id: SupplierId, ctx: Ctx, who: Writer, reason: Reason = None) -> Response:
    """Archives the record (emission entries and history reference it, so it is never deleted): it leaves the
    list and the plan's count; ``GET /suppliers/{id}`` still shows it, ``POST .../restore`` brings it back."""
    _write(who, supplier_id, lambda: records.archive(ctx.write, supplier_id, reason=reason))
    return Response(status_code=204)


@router.post("/suppliers/{supplier_id}/restore", response_model=Supplier, summary="Restore an archived supplier")
def restore_supplier(supplier_id: SupplierId, ctx: Ctx, who: Writer, reason: Reason = None) -> dict[str, Any]:
    _write(who, supplier_id, lambda: records.restore(ctx.write, supplier_id, reason=reason))
    return _one(ctx, supplier_id)


@router.post("/suppliers/{supplier_id}/merge", response_model=Supplier, summary="Merge another record into this one")
def merge_supplier(supplier_id: SupplierId, body: MergeIn, ctx: Ctx, who: Writer) -> dict[str, Any]:
    """Two records of one company become one: this one takes the other's missing fields, identifiers, names
    (as aliases), disclosures, spend lines and open-period entries; the other is archived, ``merged_into``
    this one."""
    with ctx.read.connect() as conn:  # an unknown other is the body's fault, not the path's
        if not conn.scalar(sa.text("SELECT 1 FROM suppliers WHERE id = :i"), {"i": body.other}):
            raise ApiProblem(422, "Unknown supplier", f"no supplier {body.other}", field="body.other")
    _write(who, supplier_id, lambda: records.merge(ctx.write, supplier_id, body.other, reason=body.reason))
    return _one(ctx, supplier_id)


@router.get("/suppliers/{supplier_id}/history", response_model=History, summary="Every change of a supplier")
def supplier_history(supplier_id: SupplierId, ctx: Ctx, who: Reader) -> dict[str, Any]:
    with _refusals(supplier_id), ctx.read.connect() as conn:
        df = records.history(conn, supplier_id)
    return {"items": frames.rows(df[["id", "changed_at", "actor", "role_name", "action", "reason", "changes"]])}


@router.post("/suppliers/bulk", response_model=BulkResult, summary="Import suppliers: add new ones, update known")
def bulk_suppliers(body: BulkIn, ctx: Ctx, who: Writer, reason: Reason = None) -> BulkResult:
    """All or nothing, as a supplier file: a row that is a record already (same identifier, else the same
    normalised name) updates the fields it gives; every refused row is named (``body.suppliers[i].field``)
    and then nothing is written."""
    # Text, as in a file: the library parses and checks every value the same way.
    rows = pd.DataFrame([{k: str(v) for k, v in s.model_dump(exclude_none=True).items()} for s in body.suppliers])
    try:
        done = _write(who, None, lambda: records.import_suppliers(ctx.write, rows, source="request body",
                                                                   reason=reason or "imported through the API"))
    except RowsRefused as exc:
        fields = exc.fields or ["name"] * len(exc.problems)
        found = [FieldError(field=f"body.suppliers[{line - 2}].{f}", message=r)
                 for (line, r), f in zip(exc.problems, fields, strict=True)]
        raise ApiProblem(422, "Invalid input", f"{len(found)} of {exc.total} suppliers refused; nothing was "
                         "imported (a message's 'line N' is suppliers[N-2])", errors=found) from exc
    return BulkResult(created=done.created, updated=done.updated, unchanged=done.unchanged)

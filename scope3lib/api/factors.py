"""Emission-factor datasets and their factors: public reference data, read-only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from .auth import Reader
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page

router = APIRouter(tags=["factors"])
Ctx = Annotated[ApiContext, Depends(context)]


class Dataset(BaseModel):
    id: int
    source: str
    version: str
    name: str
    publisher: str
    licence: str
    citation: str
    sha256: str | None
    builtin: bool
    imported_at: dt.datetime
    factors: int


class Factor(BaseModel):
    id: int
    source: str
    version: str
    factor_key: str
    description: str
    unit: str
    region: str
    year: int
    kg_co2e_per_unit: float
    gwp: str
    category_hint: int | None


@router.get("/factor-datasets", response_model=Page[Dataset], summary="Stored factor datasets (every release)")
def list_datasets(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                  cursor: Cursor = None, source: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    after = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            "SELECT d.id, d.source, d.version, d.name, d.publisher, d.licence, d.citation, d.sha256, d.builtin, "
            "d.imported_at, (SELECT count(*) FROM factors f WHERE f.dataset_id = d.id) AS factors "
            "FROM factor_datasets d WHERE d.id > :a AND (CAST(:s AS text) IS NULL OR d.source = :s) "
            "ORDER BY d.id LIMIT :n"), {"a": after[0] if after else 0, "s": source, "n": limit + 1}).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/factors", response_model=Page[Factor], summary="Factors, by dataset, key, region and year")
def list_factors(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                 cursor: Cursor = None, source: Annotated[str | None, Query(max_length=64)] = None,
                 version: Annotated[str | None, Query(max_length=64)] = None,
                 factor_key: Annotated[str | None, Query(max_length=200)] = None,
                 region: Annotated[str | None, Query(max_length=64)] = None,
                 year: Annotated[int | None, Query(ge=1900, le=2200)] = None) -> dict[str, Any]:
    after = decode(cursor, (int,))
    where = ["f.id > :a"]
    params: dict[str, Any] = {"a": after[0] if after else 0, "n": limit + 1}
    for cond, name, value in (("d.source = :s", "s", source), ("d.version = :v", "v", version),
                              ("f.factor_key = :k", "k", factor_key), ("f.region = :r", "r", region),
                              ("f.year = :y", "y", year)):
        if value is not None:
            where.append(cond)
            params[name] = value
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            "SELECT f.id, d.source, d.version, f.factor_key, f.description, f.unit, f.region, f.year, "
            "f.kg_co2e_per_unit, f.gwp, f.category_hint FROM factors f JOIN factor_datasets d ON d.id = f.dataset_id "
            f"WHERE {' AND '.join(where)} ORDER BY f.id LIMIT :n"), params).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])

"""Emission entries (list, filter, create from activity rows through the calculation engine) and the summary."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

import anyio.to_thread
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import db, pages
from ..accounting import activity, inventory
from ..categories import DataSource, Method
from .auth import Credential, Reader, Scope, Writer, admit, identify
from .context import ApiContext, context
from .pagination import Page, decode, json_page
from .problems import ApiProblem

router = APIRouter(tags=["inventory"])
Ctx = Annotated[ApiContext, Depends(context)]

MethodName = Literal["spend_based", "average_data", "distance_based", "supplier_specific", "hybrid"]
DataSourceName = Literal["manual", "import", "iot", "ml"]
assert set(MethodName.__args__) == {m.value for m in Method}  # type: ignore[attr-defined]
assert set(DataSourceName.__args__) == {d.value for d in DataSource}  # type: ignore[attr-defined]


class Entry(BaseModel):
    id: int
    category: int
    period_start: dt.date
    period_end: dt.date
    method: str
    supplier_id: int | None
    supplier: str | None
    device_id: int | None
    description: str | None
    activity_quantity: float | None
    activity_unit: str | None
    spend: float | None
    spend_currency: str | None
    spend_year: int | None
    factor_source: str | None
    factor_version: str | None
    factor_key: str | None
    factor_value: float | None
    factor_unit: str | None
    kg_co2e: float = Field(description="kg CO2e, as calculated by the platform")
    data_source: str
    data_quality: int = Field(description="1 (best) to 5")
    created_at: dt.datetime


_ENTRY_COLUMNS = (
    "e.id, e.category, e.period_start, e.period_end, e.method, e.supplier_id, s.name AS supplier, "
    "e.device_id, e.description, e.activity_quantity, e.activity_unit, e.spend::float8 AS spend, e.spend_currency, "
    "e.spend_year, e.factor_source, e.factor_version, e.factor_key, e.factor_value, e.factor_unit, e.kg_co2e, "
    "e.data_source, e.data_quality, e.created_at"
)


def _entry_sql(where: str) -> str:
    """The entries ``where`` selects, in id order, ``LIMIT %(n)s``: the page is cut first (along the index on
    (tenant_id, id)) and only its rows are joined to their suppliers."""
    return (f"SELECT {_ENTRY_COLUMNS} FROM (SELECT * FROM emission_entries e WHERE {where} ORDER BY e.id "
            "LIMIT %(n)s) e LEFT JOIN suppliers s ON s.id = e.supplier_id ORDER BY e.id")


class EntryFilter(BaseModel):
    """The list's query: a page (``limit``, ``cursor``) of the entries the filters select."""

    limit: int = Field(default=100, ge=1, le=1000, description="Items per page (1-1000).")
    cursor: str | None = Field(default=None, max_length=200, description="`next_cursor` of the previous page.")
    period_from: dt.date | None = Field(default=None, description="Entries whose period starts on or after")
    period_to: dt.date | None = Field(default=None, description="Entries whose period starts on or before")
    category: int | None = Field(default=None, ge=1, le=15)
    supplier_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    method: MethodName | None = None
    data_source: DataSourceName | None = None

    def sql(self, tenant_id: int) -> tuple[str, dict[str, Any]]:
        """The page's query (:func:`_entry_sql`) and its parameters."""
        where: list[str] = ["e.tenant_id = %(tid)s"]
        params: dict[str, Any] = {"tid": tenant_id, "n": self.limit + 1}
        after = decode(self.cursor, (int,))
        for column, op, value in (("id", ">", after[0] if after else None), ("period_start", ">=", self.period_from),
                                  ("period_start", "<=", self.period_to), ("category", "=", self.category),
                                  ("supplier_id", "=", self.supplier_id), ("method", "=", self.method),
                                  ("data_source", "=", self.data_source)):
            if value is not None:
                name = f"p{len(params)}"
                where.append(f"e.{column} {op} %({name})s")
                params[name] = value
        return _entry_sql(" AND ".join(where)), params


@router.get("/emission-entries", response_model=Page[Entry], summary="List emission entries, filtered")
async def list_entries(request: Request, ctx: Ctx, credential: Credential,
                       query: Annotated[EntryFilter, Query()]) -> Response:
    """Entries in id order (stable across pages), filtered by period, category, supplier, method and source."""
    select, params = query.sql(ctx.tenant_id)

    # The hottest route integrations call: the caller is checked in the same thread call and on the same
    # connection as the page's query, without SQLAlchemy's statement layer (docs/benchmarks.md, API).
    def answer() -> tuple[str, str | None]:
        with db.raw_cursor(ctx.read, autocommit=True) as cur:
            who = request.state.principal = identify(ctx, credential, cur)
            admit(ctx.limiter, who, Scope.READ)
            return json_page(cur, select, params, query.limit)

    body, cursor = await anyio.to_thread.run_sync(answer)
    headers = {"Link": pages.next_link(str(request.url), limit=query.limit, cursor=cursor)} if cursor else None
    return Response(body, media_type="application/json", headers=headers)


@router.get("/emission-entries/{entry_id}", response_model=Entry, summary="One emission entry")
def get_entry(entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)], ctx: Ctx, who: Reader) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        row = conn.exec_driver_sql(_entry_sql("e.id = %(i)s"), {"i": entry_id, "n": 1}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no emission entry {entry_id}", field="path.entry_id")
    return dict(row)


class ActivityRow(BaseModel):
    """One activity or spend row, as in an activity file (docs/accounting.md#activity-files)."""

    model_config = ConfigDict(extra="forbid")  # kg_co2e, above all, is the platform's to calculate

    category: int | None = Field(default=None, ge=1, le=15, description="GHG Protocol Scope 3 category 1-15")
    method: MethodName
    period_start: dt.date
    period_end: dt.date
    supplier: str | None = Field(default=None, max_length=200, description="The name of one of the tenant's suppliers")
    # Magnitudes no real activity reaches: beyond them float arithmetic overflows.
    quantity: float | None = Field(default=None, ge=-1e12, le=1e12)
    unit: str | None = Field(default=None, max_length=64)
    factor_source: str | None = Field(default=None, max_length=64)
    factor_key: str | None = Field(default=None, max_length=200)
    factor_version: str | None = Field(default=None, max_length=64)
    spend: float | None = Field(default=None, ge=-1e12, le=1e12)
    currency: str | None = Field(default=None, max_length=3)
    spend_year: int | None = Field(default=None, ge=1900, le=2200)
    supplier_kg_co2e: float | None = Field(default=None, ge=-1e12, le=1e12)
    supplier_revenue: float | None = Field(default=None, ge=0.01, le=1e15, description="In the spend's currency")
    eeio_direct_share: float | None = Field(default=None, ge=0, le=1)
    description: str | None = Field(default=None, max_length=2000)


class ActivityBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: list[ActivityRow] = Field(min_length=1, max_length=10_000)


class ImportResult(BaseModel):
    rows: int
    kg_co2e: float = Field(description="kg CO2e of the rows, as calculated")


@router.post("/emission-entries", response_model=ImportResult, status_code=201,
             summary="Add entries: activity rows, calculated by the platform")
def create_entries(batch: ActivityBatch, ctx: Ctx, who: Writer) -> ImportResult:
    """Rows are priced by the calculation engine with the platform's factors and added all or nothing;
    kg CO2e is never taken from the caller. A bad row refuses the batch, each named as ``body.rows[i]``."""
    frame = pd.DataFrame([r.model_dump() for r in batch.rows]).astype(object)
    frame = frame.where(frame.notna(), "").astype(str)  # the activity format is text, as read from a file
    frame["period_start"] = [r.period_start.isoformat() for r in batch.rows]
    frame["period_end"] = [r.period_end.isoformat() for r in batch.rows]
    out = activity.import_activity(ctx.write, frame, source="request body", data_source=DataSource.IMPORT.value)
    return ImportResult(rows=out.rows, kg_co2e=out.kg_co2e)


class CategoryTotal(BaseModel):
    category: int
    name: str
    stream: str
    included: bool
    exclusion_reason: str
    methods: str
    data_quality: float | None
    primary_share: float | None
    primary_spend_share: float | None
    spend_usd: float | None
    kg_co2e: float
    t_co2e: float


class Summary(BaseModel):
    period_from: dt.date | None
    period_to: dt.date | None
    t_co2e: float
    categories: list[CategoryTotal]


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


@router.get("/inventory/summary", response_model=Summary, summary="The inventory by the 15 Scope 3 categories")
def summary(ctx: Ctx, who: Reader, period_from: dt.date | None = None, period_to: dt.date | None = None) -> Summary:
    table = inventory.summary(ctx.read, period_from, period_to).reset_index()
    cats = [CategoryTotal(**{str(k): _finite(v) for k, v in r.items()}) for r in table.to_dict("records")]
    return Summary(period_from=period_from, period_to=period_to, t_co2e=sum(c.t_co2e for c in cats), categories=cats)

"""Emission entries (list, filter, create from activity rows through the calculation engine) and the summary."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..accounting import activity, inventory
from ..categories import DataSource, Method
from .auth import Reader, Writer
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
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


_ENTRY_SQL = (
    "SELECT e.id, e.category, e.period_start, e.period_end, e.method, e.supplier_id, s.name AS supplier, "
    "e.device_id, e.description, e.activity_quantity, e.activity_unit, e.spend::float8 AS spend, e.spend_currency, "
    "e.spend_year, e.factor_source, e.factor_version, e.factor_key, e.factor_value, e.factor_unit, e.kg_co2e, "
    "e.data_source, e.data_quality, e.created_at "
    "FROM emission_entries e LEFT JOIN suppliers s ON s.id = e.supplier_id"
)


@router.get("/emission-entries", response_model=Page[Entry], summary="List emission entries, filtered")
def list_entries(
    request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100, cursor: Cursor = None,
    period_from: Annotated[dt.date | None, Query(description="Entries whose period starts on or after")] = None,
    period_to: Annotated[dt.date | None, Query(description="Entries whose period starts on or before")] = None,
    category: Annotated[int | None, Query(ge=1, le=15)] = None,
    supplier_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    method: MethodName | None = None,
    data_source: DataSourceName | None = None,
) -> dict[str, Any]:
    """Entries in id order (stable across pages), filtered by period, category, supplier, method and source."""
    where: list[str] = ["e.tenant_id = :tid"]
    params: dict[str, Any] = {"tid": ctx.tenant_id, "n": limit + 1}
    after = decode(cursor, (int,))
    for cond, name, value in (("e.id > :after", "after", after[0] if after else None),
                              ("e.period_start >= :pf", "pf", period_from), ("e.period_start <= :pt", "pt", period_to),
                              ("e.category = :c", "c", category), ("e.supplier_id = :s", "s", supplier_id),
                              ("e.method = :m", "m", method), ("e.data_source = :d", "d", data_source)):
        if value is not None:
            where.append(cond)
            params[name] = value
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.text(f"{_ENTRY_SQL} WHERE {' AND '.join(where)} ORDER BY e.id LIMIT :n"), params).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/emission-entries/{entry_id}", response_model=Entry, summary="One emission entry")
def get_entry(entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)], ctx: Ctx, who: Reader) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        row = conn.execute(sa.text(f"{_ENTRY_SQL} WHERE e.id = :i"), {"i": entry_id}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no emission entry {entry_id}", field="path.entry_id")
    return dict(row)


class ActivityRow(BaseModel):
    """One activity or spend row, as in an activity file (docs/accounting.md#activity-files)."""

    model_config = ConfigDict(extra="forbid")  # kg_co2e, above all, is the platform's to calculate

    category: int | None = Field(default=None, description="GHG Protocol Scope 3 category 1-15")
    method: MethodName
    period_start: dt.date
    period_end: dt.date
    supplier: str | None = Field(default=None, description="The name of one of the tenant's suppliers")
    quantity: float | None = None
    unit: str | None = None
    factor_source: str | None = None
    factor_key: str | None = None
    factor_version: str | None = None
    spend: float | None = None
    currency: str | None = None
    spend_year: int | None = None
    supplier_kg_co2e: float | None = None
    supplier_revenue: float | None = None
    eeio_direct_share: float | None = None
    description: str | None = None


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

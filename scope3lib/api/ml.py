"""ML estimates in the inventory and the supplier hotspots (read), and a prediction started as a job."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from .. import frames
from .auth import Reader, Writer
from .context import ApiContext, context
from .jobs import Job, start
from .pagination import Cursor, Limit, Page, frame_page

router = APIRouter(tags=["ml"])
Ctx = Annotated[ApiContext, Depends(context)]


class Estimate(BaseModel):
    supplier_id: int | None
    supplier: str | None
    naics_code: str | None
    model_version: str | None
    estimate: float | None = Field(description="kg CO2e per 2022 USD")
    lower: float | None
    upper: float | None
    confidence: float | None
    eeio_factor: float | None
    data_quality: int | None
    entries: int
    kg_co2e: float


class Hotspot(BaseModel):
    model_config = ConfigDict(extra="allow")  # the scorer's explanatory columns ride along

    supplier_id: int | None = None
    supplier: str | None = None
    kg_at_stake: float | None = None


class PredictionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, max_length=64, description="Model version (latest when omitted)")


@router.get("/ml/estimates", response_model=Page[Estimate], summary="ML estimates in use, largest emissions first")
def list_estimates(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                   cursor: Cursor = None) -> dict[str, Any]:
    from ..ml import estimates  # here: the ML stack takes seconds to import, and the API starts without it

    return frame_page(request, response, frames.rows(estimates.stored_estimates(ctx.read)), limit, cursor)


@router.get("/ml/hotspots", response_model=Page[Hotspot], summary="Suppliers whose intensity stands out")
def list_hotspots(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                  cursor: Cursor = None) -> dict[str, Any]:
    from ..ml import hotspots

    return frame_page(request, response, frames.rows(hotspots.tenant_hotspots(ctx.read)), limit, cursor)


@router.post("/ml/predictions", response_model=Job, status_code=202,
             summary="Estimate non-reporting suppliers with the tenant's model (a job)")
def start_prediction(body: PredictionIn, response: Response, ctx: Ctx, who: Writer) -> dict[str, Any]:
    from ..ml import estimates

    def work() -> dict[str, Any]:
        out = estimates.predict_tenant(ctx.write, ctx.data_dir, ctx.slug, version=body.version)
        return {"basis": out.basis, "model_version": out.model_version, "reason": out.reason,
                "entries_updated": out.entries_updated, "suppliers": len(out.predictions),
                "unknown_sectors": out.unknown_sectors}

    return start(ctx, response, who, "ml-prediction", body.model_dump(), work)

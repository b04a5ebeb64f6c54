"""Reduction scenarios: list, read, save (create or replace), delete, and run (:mod:`scope3lib.scenarios`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from .. import frames
from ..scenarios import model as scenarios
from .auth import Reader, Writer
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

router = APIRouter(tags=["scenarios"])
Ctx = Annotated[ApiContext, Depends(context)]
Name = Annotated[str, Path(min_length=1, max_length=100)]


class ScenarioListed(BaseModel):
    id: int
    name: str
    base_year: int
    target_year: int
    growth: float
    discount_rate: float
    levers: int
    created_at: dt.datetime


class ScenarioRun(BaseModel):
    name: str
    fingerprint: str
    summary: dict[str, Any]
    totals: list[dict[str, Any]]
    levers: list[dict[str, Any]]


def _exists(ctx: ApiContext, name: str) -> None:
    with ctx.read.connect() as conn:
        if not conn.scalar(sa.text("SELECT 1 FROM scenarios WHERE name = :n"), {"n": name}):
            raise ApiProblem(404, "Not found", f"no scenario named {name!r}", field="path.name")


@router.get("/scenarios", response_model=Page[ScenarioListed], summary="Stored scenarios")
def list_scenarios(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                   cursor: Cursor = None) -> dict[str, Any]:
    after = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            "SELECT id, name, base_year, target_year, growth, discount_rate, jsonb_array_length(levers) AS levers, "
            "created_at FROM scenarios WHERE tenant_id = :t AND id > :a ORDER BY id LIMIT :n"),
            {"t": ctx.tenant_id, "a": after[0] if after else 0, "n": limit + 1}).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/scenarios/{name}", response_model=scenarios.Scenario, summary="One scenario: its inputs")
def get_scenario(name: Name, ctx: Ctx, who: Reader) -> scenarios.Scenario:
    _exists(ctx, name)
    return scenarios.load(ctx.read, name)


@router.put("/scenarios/{name}", response_model=scenarios.Scenario, summary="Save a scenario (create or replace)")
def put_scenario(name: Name, body: scenarios.Scenario, ctx: Ctx, who: Writer) -> scenarios.Scenario:
    if body.name != name:
        raise ApiProblem(422, "Invalid input", f"body names scenario {body.name!r}, the path {name!r}",
                         field="body.name")
    scenarios.save(ctx.write, body, replace=True)
    return body


@router.delete("/scenarios/{name}", status_code=204, summary="Delete a scenario")
def delete_scenario(name: Name, ctx: Ctx, who: Writer) -> Response:
    _exists(ctx, name)
    scenarios.delete(ctx.write, name)
    return Response(status_code=204)


@router.post("/scenarios/{name}/run", response_model=ScenarioRun,
             summary="Project a stored scenario on the current inventory (changes nothing: read scope)")
def run_scenario(name: Name, ctx: Ctx, who: Reader) -> ScenarioRun:
    _exists(ctx, name)
    result = scenarios.run(ctx.read, scenarios.load(ctx.read, name))
    summary = frames.rows(pd.DataFrame([result.summary]))[0]
    return ScenarioRun(name=name, fingerprint=result.fingerprint, summary=summary,
                       totals=frames.rows(result.totals), levers=frames.rows(result.levers))

"""Report runs: the history, a run started as a job, and a run's outputs (HTML, notebook) to download."""

from __future__ import annotations

import datetime as dt
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from ..reporting import runs
from .auth import Reader, Writer
from .context import ApiContext, context
from .jobs import Job, start
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

router = APIRouter(tags=["reports"])
Ctx = Annotated[ApiContext, Depends(context)]
RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class ReportRun(BaseModel):
    id: int
    report: str
    trigger: str
    scheduled_for: dt.datetime | None
    attempt: int
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    failed_cell: int | None
    error: str | None
    parameters: dict[str, Any]
    outputs: list[str] = Field(description="What /reports/runs/{id}/outputs/{kind} serves: html, ipynb")


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report: str = Field(min_length=1, max_length=64, description="A report of reports/schedules.yaml (monthly...)")
    parameters: dict[str, Any] = Field(default_factory=dict, description="The notebook's parameters")


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    d["outputs"] = [k for k in ("html", "ipynb") if d.pop(f"output_{k}")]
    return d


@router.get("/reports/runs", response_model=Page[ReportRun], summary="Report runs, newest first")
def list_runs(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
              cursor: Cursor = None) -> dict[str, Any]:
    before = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [_row(r) for r in conn.execute(sa.text(
            "SELECT id, report, trigger, scheduled_for, attempt, status, started_at, finished_at, failed_cell, error, "
            "parameters, output_html, output_ipynb FROM report_runs WHERE tenant_id = :t AND id < :b "
            "ORDER BY id DESC LIMIT :n"), {"t": ctx.tenant_id, "b": before[0] if before else 2**63 - 1,
                                           "n": limit + 1}).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.post("/reports/runs", response_model=Job, status_code=202, summary="Run a report now (a job)")
def start_run(body: ReportIn, response: Response, ctx: Ctx, who: Writer) -> dict[str, Any]:
    spec = runs.get_spec(body.report)  # an unknown report or a bad parameter is refused now, not in the job
    runs.validate_parameters(spec.notebook_path(), {**spec.parameters, **body.parameters})
    url = ctx.write.url.render_as_string(hide_password=False)

    def work() -> dict[str, Any]:
        result = runs.run_report(ctx.write, url, ctx.slug, body.report, spec, body.parameters, data_dir=ctx.data_dir)
        return {"status": result.status, "run_ids": result.attempts, "error": result.error}

    return start(ctx, response, who, "report", body.model_dump(), work)


@router.get("/reports/runs/{run_id}/outputs/{kind}", summary="Download a run's output", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}, "application/x-ipynb+json": {}}}})
def download(run_id: RunId, kind: Literal["html", "ipynb"], ctx: Ctx, who: Reader) -> FileResponse:
    with ctx.read.connect() as conn:
        stored = conn.scalar(sa.text(f"SELECT output_{kind} FROM report_runs WHERE id = :i"), {"i": run_id})
    root = runs.output_dir(ctx.data_dir, ctx.slug).resolve()
    path = FilePath(stored).resolve() if stored else None
    # Only files under the tenant's own output folder are served, whatever the table says.
    if path is None or not path.is_relative_to(root) or not path.is_file():
        raise ApiProblem(404, "Not found", f"report run {run_id} has no {kind} output", field="path.kind")
    media = "text/html" if kind == "html" else "application/x-ipynb+json"
    return FileResponse(path, media_type=media, filename=path.name)

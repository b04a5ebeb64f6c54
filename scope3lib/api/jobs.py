"""Work the API starts in the background (an ML prediction, a report run): a ``jobs`` row per job.

``POST`` answers 202 with the job and ``Location: /jobs/{id}`` at once; the job runs in the service's small
thread pool with the tenant's read-write role and records its outcome (``succeeded`` with a JSON result,
or ``failed`` with the error's message). Jobs a restarted service never finished are marked failed at start.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from ..errors import Scope3Error
from .auth import Principal, Reader
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

log = logging.getLogger("scope3.api.jobs")
router = APIRouter(tags=["jobs"])
Ctx = Annotated[ApiContext, Depends(context)]


class Job(BaseModel):
    id: int
    kind: str
    parameters: dict[str, Any]
    status: str
    created_by: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    result: dict[str, Any] | None
    error: str | None


_SELECT = "SELECT id, kind, parameters, status, created_by, created_at, finished_at, result, error FROM jobs"


def abandon_unfinished(ctx: ApiContext) -> None:
    with ctx.write.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET status = 'failed', finished_at = now(), error = 'the API service "
                             "restarted before the job finished: start it again' "
                             "WHERE status IN ('queued', 'running')"))


def start(ctx: ApiContext, response: Response, who: Principal, kind: str, parameters: dict[str, Any],
          work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Record a job, run ``work`` in the background, and answer with the job (202, Location)."""
    with ctx.write.begin() as conn:
        job_id = int(conn.scalar(sa.text(
            "INSERT INTO jobs (tenant_id, kind, parameters, status, created_by) "
            "VALUES (:t, :k, CAST(:p AS jsonb), 'queued', :c) RETURNING id"),
            {"t": ctx.tenant_id, "k": kind, "p": json.dumps(parameters), "c": who.label}))
    ctx.jobs.submit(_run, ctx, job_id, work)
    response.status_code = 202
    response.headers["Location"] = f"jobs/{job_id}"
    return _one(ctx, job_id)


def _run(ctx: ApiContext, job_id: int, work: Callable[[], dict[str, Any]]) -> None:
    def finish(status: str, result: dict[str, Any] | None, error: str | None) -> None:
        with ctx.write.begin() as conn:
            conn.execute(sa.text("UPDATE jobs SET status = :s, finished_at = now(), result = CAST(:r AS jsonb), "
                                 "error = :e WHERE id = :i"),
                         {"s": status, "r": None if result is None else json.dumps(result, default=str), "e": error,
                          "i": job_id})

    with ctx.write.begin() as conn:
        conn.execute(sa.text("UPDATE jobs SET status = 'running' WHERE id = :i"), {"i": job_id})
    try:
        result = work()
    except Scope3Error as exc:
        finish("failed", None, str(exc))
    except Exception as exc:  # a job must always end recorded; the traceback stays in the service's log
        log.exception("job %d failed", job_id)
        finish("failed", None, f"the job failed ({type(exc).__name__}); the operator's log has the details")
    else:
        finish("succeeded", result, None)


def _one(ctx: ApiContext, job_id: int) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        row = conn.execute(sa.text(f"{_SELECT} WHERE id = :i"), {"i": job_id}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no job {job_id}", field="path.job_id")
    return dict(row)


@router.get("/jobs", response_model=Page[Job], summary="Background jobs, newest first")
def list_jobs(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
              cursor: Cursor = None) -> dict[str, Any]:
    before = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            f"{_SELECT} WHERE tenant_id = :t AND id < :b ORDER BY id DESC LIMIT :n"),
            {"t": ctx.tenant_id, "b": before[0] if before else 2**63 - 1, "n": limit + 1}).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/jobs/{job_id}", response_model=Job, summary="One job: its status and, when done, its outcome")
def get_job(job_id: Annotated[int, Path(ge=1, le=2**63 - 1)], ctx: Ctx, who: Reader) -> dict[str, Any]:
    return _one(ctx, job_id)

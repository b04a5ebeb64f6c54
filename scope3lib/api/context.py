"""What every request of a tenant's API works with: the tenant, its two engines, and the service's parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy.engine import Engine

from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .ingest import GroupWriter
    from .requestlog import RequestLog


@dataclass
class ApiContext:
    slug: str
    tenant_id: int
    read: Engine  # the tenant's read-only role: every GET
    write: Engine  # the tenant's read-write role: every change, the request log, HTTP ingest
    data_dir: Path  # the tenant's models, ledger key (public half) and report outputs live under it
    limiter: RateLimiter  # and the tenant's plan, which sets its rates
    requests: RequestLog
    jobs: ThreadPoolExecutor
    ingest: GroupWriter
    hub_auth: Any = None  # jupyterhub.services.auth.HubAuth when run by the hub


async def context(request: Request) -> ApiContext:  # async: FastAPI runs a plain def in its thread pool
    ctx: ApiContext = request.app.state.scope3
    return ctx

"""What every request of a tenant's API works with: the tenant, its two engines, and the service's parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from sqlalchemy.engine import Engine

from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .requestlog import RequestLog


@dataclass
class ApiContext:
    slug: str
    tenant_id: int
    plan: str
    read: Engine  # the tenant's read-only role: every GET
    write: Engine  # the tenant's read-write role: every change, the request log, HTTP ingest
    data_dir: Path  # the tenant's models, ledger key (public half) and report outputs live under it
    limiter: RateLimiter
    requests: RequestLog
    jobs: ThreadPoolExecutor
    hub_auth: Any = None  # jupyterhub.services.auth.HubAuth when run by the hub
    ingest_seen: dict[int, float] = field(default_factory=dict)  # device id -> when last_seen was last written


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.scope3
    return ctx

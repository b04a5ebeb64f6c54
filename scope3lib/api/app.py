"""The application factory of a tenant's API, and the process that serves it.

FastAPI (docs/design.md, decision 11): typed request and response models that are also the OpenAPI 3.1
document (``/openapi.json``, interactive at ``/docs``), validation errors that name the field, and plain
synchronous handlers on SQLAlchemy run in a thread pool, so the library's functions are called as they are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI

from .. import db
from ..config import Settings, TenantSettings
from ..errors import ConfigurationError
from ..tenancy import tenant_credentials, validate_slug
from . import (
    apikeys,
    engagement,
    factors,
    ingest,
    inventory,
    jobs,
    ledger,
    meters,
    ml,
    pact_host,
    problems,
    reports,
    scenarios,
    suppliers,
)
from .bodylimit import BodyLimit
from .context import ApiContext
from .hotpath import HotPath
from .ratelimit import PLAN_RATES, RateLimiter
from .requestlog import RequestLog, RequestLogMiddleware

log = logging.getLogger("scope3.api")

#: The resource groups, one module each; their routes hang under the service's prefix.
ROUTERS: list[APIRouter] = [inventory.router, suppliers.router, factors.router, meters.router, ingest.router,
                            ml.router, scenarios.router, ledger.router, reports.router, jobs.router, apikeys.router,
                            engagement.router]

#: Synchronous handlers (and dependencies) running at once; anyio's default is 40. On two cores more threads
#: only contend for the GIL and the tail grows: 32 list clients, same run, 40 threads against 4: p99 277/304
#: against 129/136 ms, and 203/217 against 88/90 ms in another (docs/benchmarks.md, API). Ingest awaits its
#: commit without a thread and long work (predictions, reports) runs in ``ctx.jobs``, so few threads suffice.
HANDLER_THREADS = 4

DESCRIPTION = """The integration API of one tenant of the Scope 3 platform.

Authenticate with `Authorization: Bearer <key>`: a tenant API key (`s3k_...`, from `scope3 apikey create`)
or a token of the tenant's JupyterHub. Lists are paginated with `cursor` and `limit` and answer a
`Link: <...>; rel="next"` header. Errors are RFC 9457 problem details naming the field at fault.
"""


@dataclass(frozen=True)
class ApiConfig:
    """What one API process serves: a tenant, its two database URLs (never the admin's), where its files are."""

    slug: str
    database_url: str  # the tenant's read-write role
    database_url_readonly: str  # the tenant's read-only role
    data_dir: Path
    prefix: str = ""  # "/services/api" under the hub
    retention_days: int = 30
    pact_allow_http: bool = False  # SCOPE3_PACT_ALLOW_HTTP: development only

    @classmethod
    def from_environment(cls, slug: str, settings: Settings | None = None) -> ApiConfig:
        """The hub's service environment when it names ``slug``, else the tenant's secrets file."""
        settings = settings or Settings()
        validate_slug(slug)
        tenant = TenantSettings()
        if tenant.tenant == slug and tenant.tenant_database_url and tenant.tenant_database_url_readonly:
            rw, ro = tenant.tenant_database_url, tenant.tenant_database_url_readonly
        else:
            creds = tenant_credentials(settings.data_dir, slug)
            rw, ro = creds.database_url, creds.database_url_readonly
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "").rstrip("/")
        return cls(slug, rw, ro, settings.data_dir, prefix, settings.api_log_retention_days, settings.pact_allow_http)


def _hub_auth() -> Any:
    """HubAuth when the tenant's hub runs this service (it sets JUPYTERHUB_API_TOKEN), else None."""
    if not os.environ.get("JUPYTERHUB_API_TOKEN"):
        return None
    from jupyterhub.services.auth import HubAuth

    # A revoked hub token is trusted for at most this long (JupyterHub's default is 300 s).
    return HubAuth(cache_max_age=10)


def _context(config: ApiConfig) -> ApiContext:
    # No ping before each checkout (one more round trip per query, measured: docs/benchmarks.md, API): a
    # connection PostgreSQL dropped fails one request and SQLAlchemy then replaces the pool's connections.
    read = sa.create_engine(db.sqlalchemy_url(config.database_url_readonly), pool_size=24, max_overflow=16,
                            pool_recycle=1800)
    write = sa.create_engine(db.sqlalchemy_url(config.database_url), pool_size=8, max_overflow=16, pool_recycle=1800)
    with read.connect() as conn:
        row = conn.execute(sa.text("SELECT id, slug, plan FROM tenants WHERE id = tenant_of(current_user)")).first()
    if row is None or row.slug != config.slug:
        raise ConfigurationError(f"the read-only database URL is not tenant {config.slug!r}'s role: the API connects "
                                 "with the tenant's own roles only (`scope3 tenant credentials SLUG`)")
    requests = RequestLog(write, int(row.id), config.retention_days)
    limiter = RateLimiter(PLAN_RATES[str(row.plan)], str(row.plan))
    return ApiContext(slug=config.slug, tenant_id=int(row.id), read=read, write=write,
                      data_dir=config.data_dir, limiter=limiter, requests=requests,
                      jobs=ThreadPoolExecutor(max_workers=2, thread_name_prefix="api-job"),
                      ingest=ingest.GroupWriter(write, int(row.id), config.slug, limiter), hub_auth=_hub_auth())


def create_app(config: ApiConfig) -> FastAPI:
    """The ASGI application of tenant ``config.slug``'s API."""
    ctx = _context(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        jobs.abandon_unfinished(ctx)
        anyio.to_thread.current_default_thread_limiter().total_tokens = HANDLER_THREADS
        ctx.requests.start()
        try:
            yield
        finally:
            ctx.requests.stop()
            ctx.ingest.stop()
            ctx.jobs.shutdown(wait=False, cancel_futures=True)
            ctx.read.dispose()
            ctx.write.dispose()

    p = config.prefix
    app = FastAPI(title=f"Scope 3 platform API ({config.slug})", version="1", description=DESCRIPTION,
                  openapi_url=f"{p}/openapi.json", docs_url=f"{p}/docs", redoc_url=None, lifespan=lifespan,
                  responses=problems.RESPONSES)
    app.state.scope3 = ctx
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=p)
    pact_host.mount(app, p, allow_http=config.pact_allow_http)  # the tenant's PACT base URL is <api>/pact
    app.add_middleware(RequestLogMiddleware, requests=ctx.requests)
    app.add_middleware(HotPath, ctx=ctx, prefix=p)  # outside the log: it logs the requests it answers itself
    # Outermost: the hot path's reads are bounded too.
    app.add_middleware(BodyLimit, routes={f"{p}/engage/uploads/": engagement.MAX_UPLOAD_BYTES,
                                          f"{p}/iot/ingest/": ingest.MAX_BYTES})
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def serve(config: ApiConfig, host: str, port: int, tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
    """Serve the API in the foreground until interrupted; over TLS when given a certificate and its key."""
    import uvicorn

    if (tls_cert is None) != (tls_key is None):
        raise ConfigurationError("give --tls-cert and --tls-key together: the certificate (chain) and its private key")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", access_log=False,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1",
                ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)

"""A tenant hub's settings, in layers: defaults, then the tenant's file, then its secrets.

``DATA_DIR/tenants/<slug>/hub.yaml`` is written by ``scope3 tenant create`` (or by the hub's first start)
and an operator may edit it. Who may log in, and with which role, is not in it: the platform database is
the one source of membership (``scope3 user add``), read by the hub's authenticator. Secrets (cookie secret,
proxy token, database URLs) live apart in ``hub_secrets.json`` and ``secrets.json`` (mode 0600). The
schema is strict: an unknown or mistyped key, or a value of the wrong type, is refused with a message
naming the file and the key.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine

from .. import tenancy
from ..errors import ConfigurationError

log = logging.getLogger(__name__)

HUB_FILE = "hub.yaml"
HUB_SECRETS_FILE = "hub_secrets.json"
# Each tenant gets a block of 10 ports from here, by tenant id: public proxy, hub API, proxy API,
# dashboard (Voila). Override in hub.yaml when they clash with something else on the machine.
PORT_BASE = 18000


class HubFile(BaseModel):
    """What ``hub.yaml`` may contain. Defaults are the first layer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tenant: str = Field(description="The tenant slug; must match the directory.")
    bind_ip: str = Field("127.0.0.1", description="Address the hub's public proxy listens on.")
    port: int = Field(ge=1, le=65535, description=(
        "Public port of this tenant's hub. `scope3 tenant create` writes 18000 + 10 x the tenant's id: each "
        "tenant gets a block of ten ports, whose next three are the internal ports below."))
    base_url: str = Field("/", description="URL prefix of the hub, e.g. /acme/ behind a shared reverse proxy.")
    hub_port: int = Field(ge=1, le=65535, description="Internal port of the hub's API (written as port + 1).")
    proxy_api_port: int = Field(ge=1, le=65535, description="Internal port of the proxy's REST API (port + 2).")
    dashboard_port: int = Field(ge=1, le=65535, description="Internal port of the Voila dashboard service (port + 3).")
    spawner: Literal["auto", "local", "simple"] = Field(
        "auto",
        description=(
            "local: servers run as per-tenant system users `s3-<tenant>-<user>` (the hub runs as root); simple: as "
            "the hub's own user, with no OS-level isolation between analysts (logged loudly; the database still "
            "isolates tenants); auto: local when the hub runs as root and the database is reachable by other "
            "users (the embedded one keeps its socket private), else simple."
        ),
    )
    dashboard_pool_size: int = Field(
        1, ge=0, le=16,
        description="Preheated Voila kernels kept ready; 0: a kernel per page view.")
    dashboard_cell_timeout_s: int = Field(
        90, ge=5, le=3600,
        description=("A dashboard cell still running after this many seconds ends the page with an error (the "
                     "cell of a preheated kernel waiting for its viewer is exempt)."))
    dashboard_cull_idle_s: int = Field(
        300, ge=10, le=86_400,
        description=("A dashboard page's kernel with no browser connected (a page closed hard, a dropped connection, "
                     "a plain GET) is shut down after this many idle seconds; a page left open keeps its kernel."))
    dashboard_cull_interval_s: int = Field(
        30, ge=1, le=3600, description="How often idle dashboard kernels are looked for, in seconds.")
    dashboard_max_pages: int = Field(
        8, ge=1, le=200,
        description=("Most dashboard pages (each with a kernel of its own) open at once on this hub, besides the "
                     "preheated ones; beyond it a viewer gets a page saying the dashboard is busy."))
    dashboard_max_pages_per_viewer: int = Field(
        3, ge=1, le=50, description="Most dashboard pages one viewer may have open at once.")
    dashboard_fork_kernels: bool = Field(
        True, description=("Fork dashboard page kernels from one process that has imported what a page imports "
                           "(they start in a fraction of a second and share those imports); false: each kernel "
                           "is a Python process of its own."))
    scheduler: bool = Field(True, description="Run the scheduled-reports service with this hub.")
    api: bool = Field(True, description="Run the tenant's integration API as the hub's service `api` (/services/api/).")
    api_port: int | None = Field(None, ge=1, le=65535, description=(
        "Internal port of the API service; unset: port + 4 (the tenant's block of ten)."))
    rollup_every_s: int = Field(
        300, ge=0, le=86_400,
        description=("How often the scheduled-reports service turns meter readings into daily emission entries "
                     "(seconds; 0: never, only `scope3 meters rollup` does)."))
    checkpoint_every_s: int = Field(
        3600, ge=0, le=604_800,
        description=("How often the hub's ledger service signs a checkpoint of the tenant's log when it has "
                     "grown (seconds; 0: never, only `scope3 ledger checkpoint` does)."))
    allow_passwordless_database: bool = Field(
        False,
        description=("DEVELOPMENT ONLY. Start servers as local system users even though PostgreSQL lets local users "
                     "log in without a password ('trust' in pg_hba.conf), which lets any analyst bypass row-level "
                     "security. Logged as a warning at every start."))


class HubSecrets(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    cookie_secret: str = Field(min_length=64)
    proxy_auth_token: str = Field(min_length=32)


class HubSettings(BaseModel):
    """Everything a tenant hub needs, after layering."""

    model_config = ConfigDict(extra="forbid")

    hub: HubFile
    secrets: HubSecrets
    database_url: str
    database_url_readonly: str
    tenant_dir: Path

    @property
    def slug(self) -> str:
        return self.hub.tenant

    @property
    def state_dir(self) -> Path:
        return self.tenant_dir / "hub"


def tenant_dir(data_dir: Path, slug: str) -> Path:
    return data_dir / "tenants" / slug


def default_ports(tenant_id: int) -> dict[str, int]:
    base = PORT_BASE + 10 * tenant_id
    return {"port": base, "hub_port": base + 1, "proxy_api_port": base + 2, "dashboard_port": base + 3}


def write_initial(data_dir: Path, slug: str, tenant_id: int) -> Path:
    """Write the tenant's hub file and hub secrets (kept if they exist)."""
    d = tenant_dir(data_dir, slug)
    d.mkdir(parents=True, exist_ok=True)
    path = d / HUB_FILE
    if not path.exists():
        _write_hub_file(path, HubFile.model_validate({"tenant": slug, **default_ports(tenant_id)}))
    secrets_path = d / HUB_SECRETS_FILE
    if not secrets_path.exists():
        content = HubSecrets(cookie_secret=secrets.token_hex(32), proxy_auth_token=secrets.token_hex(32))
        fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(content.model_dump(), f, indent=2)
    return path


def ensure(engine: Engine, data_dir: Path, slug: str) -> Path:
    """The tenant's hub file and hub secrets, written with the defaults if missing (a tenant created from
    Python rather than ``scope3 tenant create`` gets them here, at its hub's first start)."""
    path = tenant_dir(data_dir, slug) / HUB_FILE
    if path.exists() and (path.parent / HUB_SECRETS_FILE).exists():
        return path
    with engine.connect() as conn:
        tid = tenancy.tenant_id(conn, slug)
    return write_initial(data_dir, slug, tid)


def _write_hub_file(path: Path, hub: HubFile) -> None:
    header = (
        "# JupyterHub settings of this tenant, layered over the defaults and under its secrets.\n"
        "# Written by `scope3 tenant create`; membership is in the platform database (`scope3 user add`).\n"
        "# Unknown keys are refused. See `scope3 hub settings SLUG` for the result of the layering.\n"
    )
    data = hub.model_dump(mode="json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def _format_errors(path: Path, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{where}'")
        elif err["type"] == "missing":
            parts.append(f"missing key '{where}'")
        else:
            parts.append(f"'{where}': {err['msg']} (got {err.get('input')!r})")
    return f"{path}: " + "; ".join(parts)


def _read_hub_file(path: Path) -> HubFile:
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"{path} not found: was the tenant created with `scope3 tenant create`?") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{path}: must be a mapping of settings, got {type(raw).__name__}")
    if "users" in raw:  # written by earlier versions; membership now lives only in the database
        log.warning("%s: ignoring 'users' (membership comes from the platform database); remove the key", path)
        raw = {k: v for k, v in raw.items() if k != "users"}
    try:
        return HubFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(_format_errors(path, exc)) from None


def load(data_dir: Path, slug: str) -> HubSettings:
    """The tenant hub's settings: defaults, then ``hub.yaml``, then the secrets files."""
    d = tenant_dir(data_dir, slug)
    hub = _read_hub_file(d / HUB_FILE)
    if hub.tenant != slug:
        raise ConfigurationError(f"{d / HUB_FILE}: 'tenant' is {hub.tenant!r} but the file is in {slug!r}'s directory")
    try:
        hub_secrets = HubSecrets.model_validate(json.loads((d / HUB_SECRETS_FILE).read_text()))
        db = json.loads((d / "secrets.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{exc.filename} not found: run `scope3 tenant rotate {slug}` to reissue") from None
    except ValidationError as exc:
        raise ConfigurationError(_format_errors(d / HUB_SECRETS_FILE, exc)) from None
    return HubSettings(hub=hub, secrets=hub_secrets, database_url=db["database_url"],
                       database_url_readonly=db["database_url_readonly"], tenant_dir=d)

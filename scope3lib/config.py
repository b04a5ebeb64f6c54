"""Platform settings, declared once with help text and safe defaults.

Read when a program starts (``Settings()``), never at import time. Every field can be set from
the environment with the ``SCOPE3_`` prefix, e.g. ``SCOPE3_DATABASE_URL``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "scope3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCOPE3_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy/libpq URL of the platform database, connecting as a role that owns the schema and "
            "may create roles (CREATEROLE). Unset: an embedded PostgreSQL (pgserver) is started under "
            "DATA_DIR/postgres."
        ),
    )
    ingest_database_url: str | None = Field(
        default=None,
        description=(
            "URL the ingest service connects with (the ingest role: may only look devices up and write "
            "readings and rejects). Unset: issued by the admin connection and kept in DATA_DIR/ingest.json."
        ),
    )
    mqtt_url: str | None = Field(
        default=None,
        description=(
            "mqtt://[user:password@]host[:port][?protocol=5|3.1.1] of the broker (port 1883 and MQTT 5 when not "
            "given). Unset: `scope3 demo` and `scope3 ingest` start an embedded amqtt broker (anonymous, MQTT "
            "3.1.1, for the demo only) on 127.0.0.1:1883, or a free port when 1883 is taken; `scope3 meters "
            "simulate` and `python -m ingest_service` refuse to run."
        ),
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description=(
            "Where the platform keeps its files: the embedded PostgreSQL (`postgres/`), each tenant's settings, "
            "secrets, ledger signing key, models and hub state (`tenants/<slug>/`), the ingest role's URL "
            "(`ingest.json`) and, by default, the Mosquitto files of `scope3 broker config` (`mosquitto/`)."
        ),
    )
    ingest_batch_size: int = Field(
        default=2000,
        ge=1,
        le=20000,
        description=(
            "Readings per COPY batch. Must stay below the broker's max_inflight_messages and far below "
            "paho's 65535 message-id range, because every message in a batch is unacknowledged until commit."
        ),
    )
    ingest_batch_ms: int = Field(
        default=200, ge=1, le=10000, description="Longest a reading waits in the buffer before a commit."
    )
    ingest_client_id: str = Field(
        default="scope3-ingest",
        description="MQTT client id of the ingest worker; the persistent session is keyed on it.",
    )
    ingest_shared_group: str | None = Field(
        default=None,
        description=(
            "Set to subscribe through `$share/<group>/scope3/+/+/readings`, so several ingest workers share "
            "the load."
        ),
    )
    max_payload_bytes: int = Field(
        default=1_048_576, ge=1024, description="Larger meter messages are refused (kept in rejects)."
    )
    ingest_queue_messages: int = Field(
        default=20_000,
        ge=100,
        le=60_000,
        description=(
            "Most messages buffered between the MQTT thread and the database writer. When full, the MQTT thread "
            "stops reading, so the broker holds the rest (back-pressure) and memory stays bounded."
        ),
    )
    ingest_metrics_addr: str | None = Field(
        default=None,
        description=(
            "host:port of the ingest service's HTTP endpoint: /healthz (200 when connected to broker and "
            "database) and /metrics (Prometheus text format). Unset: no endpoint."
        ),
    )
    log_format: str = Field(
        default="text",
        pattern="^(text|json)$",
        description="Log line format of the services: 'text' for people, 'json' (one object per line) for collectors.",
    )
    mosquitto_conf: Path | None = Field(
        default=None,
        description=(
            "mosquitto.conf written by `scope3 broker config`. Adding, removing or re-keying a device rewrites "
            "the password_file and acl_file it names and reloads Mosquitto (SIGHUP to the pid in its pid_file). "
            "Unset: DATA_DIR/mosquitto/mosquitto.conf when that file exists, else no broker files are managed."
        ),
    )
    ingest_writers: int = Field(
        default=2,
        ge=1,
        le=8,
        description=(
            "Database writer threads (one connection each) per ingest process: one gathers the next batch while "
            "another commits. Acknowledgements still leave in arrival order."
        ),
    )
    api_host: str = Field(
        default="127.0.0.1",
        description="Address `scope3 api serve` listens on (the hub's api service always listens on 127.0.0.1).",
    )
    api_port: int = Field(default=8780, ge=1, le=65535, description="Port of `scope3 api serve`.")
    api_log_retention_days: int = Field(
        default=30, ge=1, le=3650,
        description="Days the API keeps each request in the tenant's api_requests log; older rows are pruned hourly.",
    )
    engage_public_url: str | None = Field(
        default=None,
        description=(
            "The tenant API's address as suppliers reach it (e.g. https://scope3.example.com/services/api), the start "
            "of the upload links in data requests and reminders (`scope3 engage request`), and where suppliers' PACT "
            "hosts answer requests of the pact channel (URL/pact/3/events, https:// only). Unset: "
            "http://API_HOST:API_PORT, right for `scope3 api serve` on this machine only."
        ),
    )
    engage_link_days: int = Field(
        default=30, ge=1, le=365, description="Days an upload link of a data request stays valid.",
    )
    engage_max_upload_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, le=512 * 1024 * 1024,
        description="The largest file or JSON a supplier may upload with a link (bytes); a bigger one is refused "
                    "with 413 before it is read.",
    )
    pact_allow_http: bool = Field(
        default=False,
        description=(
            "Development only: let the PACT host of `scope3 api serve` (`/pact/...`) answer requests that came over "
            "plain HTTP, and send answers to partners over http://. Unset (production), PACT is HTTPS only as its "
            "spec requires: serve with --tls-cert and --tls-key (or behind a TLS proxy on 127.0.0.1 that sets "
            "X-Forwarded-Proto), and every /pact request over plain HTTP is refused with 403, not redirected. A "
            "warning is logged when the service starts with it set."
        ),
    )


class TenantSettings(BaseSettings):
    """The tenant a process works for, when one of the platform's processes started it for a tenant.

    These variables are set by the platform, not by an operator: the tenant's hub puts them in every server
    and service it starts, and the report runner in every report kernel. Names are matched exactly (upper
    case), as the processes that set them write them.
    """

    model_config = SettingsConfigDict(env_prefix="SCOPE3_", case_sensitive=True, extra="ignore", populate_by_name=True)

    tenant_database_url: str | None = Field(
        default=None,
        validation_alias="SCOPE3_TENANT_DATABASE_URL",
        description=(
            "URL of the tenant's own database role, which `scope3lib.connect()` uses when given no URL; row-level "
            "security limits it to that tenant's rows. The tenant's hub sets it for every server it spawns and "
            "for its reports service (the read-write role) and for its dashboard service (the read-only role); "
            "the report runner sets it for a report's kernel."
        ),
    )
    tenant_database_url_readonly: str | None = Field(
        default=None,
        validation_alias="SCOPE3_TENANT_DATABASE_URL_READONLY",
        description=(
            "URL of the tenant's read-only role, beside SCOPE3_TENANT_DATABASE_URL. The tenant's hub sets both for "
            "its api service, which reads with this one and writes with the other."
        ),
    )
    api_url: str | None = Field(
        default=None,
        validation_alias="SCOPE3_API_URL",
        description=(
            "URL of the tenant's integration API, which `scope3lib.api.client.connect()` uses when given no URL. "
            "The tenant's hub sets it for every server it spawns (the API service's address on the hub's machine)."
        ),
    )
    tenant: str | None = Field(
        default=None,
        validation_alias="SCOPE3_TENANT",
        description=(
            "Slug of the tenant SCOPE3_TENANT_DATABASE_URL belongs to, set beside it. `scope3 ml` and "
            "`scope3 report` use that URL for tenant SLUG only when this names SLUG (else the URL in the "
            "tenant's secrets file); the tenant's model registry (`estimates.tenant_models`) refuses to open "
            "when this names another tenant than the connected role's."
        ),
    )
    hub_tenant: str | None = Field(
        default=None,
        validation_alias="SCOPE3_HUB_TENANT",
        description=(
            "Slug of the tenant whose JupyterHub hub_config/jupyterhub_config.py configures. Set by "
            "`scope3 hub start SLUG` (and by the Kubernetes values file); the hub refuses to start without it."
        ),
    )
    dashboard_cache_dir: Path | None = Field(
        default=None,
        validation_alias="SCOPE3_DASHBOARD_CACHE_DIR",
        description=(
            "Directory where a tenant's dashboard service keeps the tenant-wide panels (hotspots, estimates, "
            "verification, scenarios) computed for the current data, so that pages load them instead of computing "
            "them (`scope3lib.reporting.tenant_cache`). Set by the dashboard service to a directory in its private "
            "runtime directory; unset, every page computes them."
        ),
    )

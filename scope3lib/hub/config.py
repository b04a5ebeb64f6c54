"""Apply a tenant's hub settings to a JupyterHub ``Config``: pure functions that only set values.

``hub_config/jupyterhub_config.py`` calls :func:`apply` with the settings of the tenant named by
``SCOPE3_HUB_TENANT``; :func:`apply` calls one ``update_*`` function per part of the hub (network,
state, proxy, authentication, default page, spawner, services). Tests call them on a bare
``Config()`` with no hub running.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.utils import url_path_join
from tornado.web import HTTPError
from traitlets.config import Config

from .. import paths
from . import machine
from .auth import API_SCOPES, API_SERVICE, DASHBOARD_SERVICE, SERVER_ROLES
from .dashboard import voila_command
from .settings import HubSettings
from .spawner import (
    Scope3LocalProcessSpawner,
    ensure_system_user,
    is_root,
    prepare_home,
    singleuser_cmd,
    system_username,
)

log = logging.getLogger(__name__)

REPORTS_SERVICE = "reports"
LEDGER_SERVICE = "ledger"
# The hub's own environment (admin database URL, secrets) never reaches a server: only these do.
ENV_KEEP = ["PATH", "LANG", "LC_ALL", "TZ"]


def _socket_only_for_owner(database_url: str) -> bool:
    """True when the database is reached through a Unix socket directory other users cannot enter
    (the embedded server keeps its socket in its private data directory)."""
    from sqlalchemy.engine import make_url

    host = make_url(database_url).query.get("host")
    path = Path(host if isinstance(host, str) else "") if host else None
    return bool(path and path.is_absolute() and not (path.stat().st_mode & 0o001 if path.exists() else False))


def spawner_mode(settings: HubSettings) -> str:
    mode = settings.hub.spawner
    if mode != "auto":
        return mode
    if is_root() and not _socket_only_for_owner(settings.database_url):
        return "local"
    return "simple"


def _is_viewer(user: Any) -> bool:
    return not user.admin and not any(r.name in SERVER_ROLES for r in user.roles)


def apply(c: Config, settings: HubSettings, admin_database_url: str, *, mode: str | None = None) -> Config:
    """Set every JupyterHub option this tenant's hub needs on ``c``; returns ``c``.

    ``mode`` is the spawner mode, ``local`` or ``simple``; :func:`spawner_mode` decides when it is None.
    """
    mode = mode or spawner_mode(settings)
    update_network(c, settings)
    update_state(c, settings)
    update_proxy(c, settings)
    update_auth(c, settings, admin_database_url)
    update_default_url(c, settings)
    update_spawner(c, settings, mode)
    update_services(c, settings, mode, admin_database_url)
    return c


def _base_url(settings: HubSettings) -> str:
    base_url = settings.hub.base_url
    return base_url if base_url.endswith("/") else base_url + "/"


def update_network(c: Config, settings: HubSettings) -> None:
    """Where the hub listens: the public proxy's address and base URL, and the hub's internal API."""
    hub = settings.hub
    c.JupyterHub.ip = hub.bind_ip
    c.JupyterHub.port = hub.port
    c.JupyterHub.base_url = _base_url(settings)
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub.hub_port


def update_state(c: Config, settings: HubSettings) -> None:
    """The hub's cookie secret and its files in the tenant's state directory."""
    state = settings.state_dir
    c.JupyterHub.cookie_secret = bytes.fromhex(settings.secrets.cookie_secret)
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True


def update_proxy(c: Config, settings: HubSettings) -> None:
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.hub.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = settings.secrets.proxy_auth_token
    c.ConfigurableHTTPProxy.pid_file = str(settings.state_dir / "proxy.pid")
    # A dashboard render waits for a kernel to run the notebook: allow it more than the default 20 s.
    c.ConfigurableHTTPProxy.command = [machine.proxy_command(), "--timeout=120000", "--proxy-timeout=120000"]


def update_auth(c: Config, settings: HubSettings, admin_database_url: str) -> None:
    """Members of this tenant log in with their platform accounts; their platform role sets their hub roles."""
    c.JupyterHub.authenticator_class = "scope3lib.hub.auth.Scope3Authenticator"
    c.Scope3Authenticator.tenant = settings.slug
    c.Scope3Authenticator.database_url = admin_database_url
    c.Authenticator.manage_roles = True
    c.Authenticator.manage_groups = True
    c.Authenticator.reset_managed_roles_on_startup = True
    c.Authenticator.allow_all = True  # authenticate() admits members of this tenant only
    c.Authenticator.auth_refresh_age = 300
    c.Authenticator.refresh_pre_spawn = True
    # Everyone keeps their name and groups (the pages need them); only analysts and admins get
    # "self" (their server), through the roles the authenticator manages.
    c.JupyterHub.load_roles = [{"name": "user", "scopes": ["read:users:name!user", "read:users:groups!user"]}]
    # The scopes the roles above grant on the tenant's API (scope3lib.api.auth checks them on each hub token).
    c.JupyterHub.custom_scopes = {name: dict(spec) for name, spec in API_SCOPES.items()}


def update_default_url(c: Config, settings: HubSettings) -> None:
    """Viewers land on the dashboard, everyone else on their server."""
    base_url = _base_url(settings)

    def default_url(handler: Any) -> str:
        user = handler.current_user
        if user is not None and _is_viewer(user):
            return url_path_join(base_url, f"services/{DASHBOARD_SERVICE}/")
        return url_path_join(base_url, "hub/spawn")

    c.JupyterHub.default_url = default_url


def update_spawner(c: Config, settings: HubSettings, mode: str) -> None:
    """Analysts' servers: JupyterLab with the tenant's read-write database URL, as ``mode`` runs them."""
    slug = settings.slug
    c.Spawner.cmd = singleuser_cmd()
    c.Spawner.default_url = "/lab"
    c.Spawner.env_keep = ENV_KEEP
    c.Spawner.environment = {"SCOPE3_TENANT_DATABASE_URL": settings.database_url, "SCOPE3_TENANT": slug}
    if settings.hub.api:  # notebooks reach the tenant's API with the analyst's own hub token (api.client.connect)
        c.Spawner.environment["SCOPE3_API_URL"] = f"http://127.0.0.1:{api_port(settings)}"
    c.Spawner.start_timeout = 120
    c.Spawner.http_timeout = 120
    if mode == "local":
        c.JupyterHub.spawner_class = Scope3LocalProcessSpawner
        c.Scope3LocalProcessSpawner.tenant = slug
    else:
        log.warning(
            "tenant %s: servers run as the hub's own user (spawner=simple): OS-level isolation between "
            "analysts is OFF; the database still isolates tenants. Run the hub as root for per-user system "
            "accounts (and a database other users can reach: the embedded one keeps its socket private).", slug,
        )
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = str(settings.tenant_dir / "home" / "{username}")
        if is_root():  # jupyter-server refuses to run as root without it (docs/design.md, measured facts)
            c.Spawner.args = ["--allow-root"]
    c.Spawner.pre_spawn_hook = _pre_spawn_hook(settings, mode, sorted((paths.notebooks() / "analyst").glob("*.ipynb")))


def _pre_spawn_hook(settings: HubSettings, mode: str, analyst_notebooks: list[Path]) -> Callable[[Any], None]:
    """Refuses viewers a server; gives an analyst a home holding the analyst notebooks."""
    slug = settings.slug

    def pre_spawn_hook(spawner: Any) -> None:
        if _is_viewer(spawner.user):
            raise HTTPError(403, "viewers have no server: the dashboard is at /services/dashboard/")
        if mode == "local":
            entry = ensure_system_user(system_username(slug, spawner.user.name))
            prepare_home(Path(entry.pw_dir), entry.pw_uid, entry.pw_gid, analyst_notebooks)
        else:
            home = settings.tenant_dir / "home" / spawner.user.name
            home.mkdir(parents=True, exist_ok=True)
            for nb in analyst_notebooks:
                if not (home / nb.name).exists():
                    (home / nb.name).write_bytes(nb.read_bytes())

    return pre_spawn_hook


def api_port(settings: HubSettings) -> int:
    return settings.hub.api_port or settings.hub.port + 4


def api_service(settings: HubSettings) -> dict[str, Any]:
    """The tenant's integration API (scope3lib.api) with the tenant's two roles' URLs and nothing of the
    hub's: it never holds the admin URL."""
    port = api_port(settings)
    return {
        "name": API_SERVICE,
        "url": f"http://127.0.0.1:{port}",
        "command": [sys.executable, "-m", "scope3lib", "api", "serve", settings.slug, "--host=127.0.0.1",
                    f"--port={port}"],
        "environment": {
            "SCOPE3_TENANT_DATABASE_URL": settings.database_url,
            "SCOPE3_TENANT_DATABASE_URL_READONLY": settings.database_url_readonly,
            "SCOPE3_TENANT": settings.slug,
            "SCOPE3_DATA_DIR": str(settings.tenant_dir.parents[1]),
        },
        "display": False,
    }


def update_services(c: Config, settings: HubSettings, mode: str, admin_database_url: str = "") -> None:
    """The dashboard (read-only database URL), unless switched off the scheduled-reports service (reports and
    meter rollups, read-write URL) and the integration API (both tenant URLs), and the operator's ledger
    service signing checkpoints (admin URL)."""
    hub, slug = settings.hub, settings.slug
    services: list[dict[str, Any]] = [
        {
            "name": DASHBOARD_SERVICE,
            "display": True,
            "url": f"http://127.0.0.1:{hub.dashboard_port}",
            "command": voila_command(
                paths.notebooks() / "dashboards" / "executive.ipynb", hub.dashboard_port, hub.dashboard_pool_size,
                hub.dashboard_cell_timeout_s, cull_idle_s=hub.dashboard_cull_idle_s,
                cull_interval_s=hub.dashboard_cull_interval_s, max_pages=hub.dashboard_max_pages,
                max_pages_per_viewer=hub.dashboard_max_pages_per_viewer, fork_kernels=hub.dashboard_fork_kernels),
            "environment": {"SCOPE3_TENANT_DATABASE_URL": settings.database_url_readonly, "SCOPE3_TENANT": slug},
            "oauth_no_confirm": True,
            "cwd": str(paths.notebooks() / "dashboards"),
        }
    ]
    if hub.scheduler:
        services.append({
            "name": REPORTS_SERVICE,
            "command": [sys.executable, "-m", "scope3lib", "report", "scheduler", slug,
                        f"--rollup-every={hub.rollup_every_s}"],
            "environment": {
                "SCOPE3_TENANT_DATABASE_URL": settings.database_url,
                "SCOPE3_TENANT": slug,
                "SCOPE3_DATA_DIR": str(settings.tenant_dir.parents[1]),
            },
        })
    if hub.api:
        services.append(api_service(settings))
    if mode == "local":
        for service in services:
            # The API serves and writes the files the reports service owns (models, report outputs): it runs as
            # that service's system user.
            owner = REPORTS_SERVICE if service["name"] == API_SERVICE else service["name"]
            service["user"] = system_username(slug, owner)
    if hub.checkpoint_every_s and admin_database_url:
        # The operator's own process (the hub's user, never a tenant's): it holds the admin URL and the tenant's
        # signing key, and runs no tenant code.
        services.append({
            "name": LEDGER_SERVICE,
            "command": [sys.executable, "-m", "scope3lib", "ledger", "checkpoint", slug,
                        f"--every={hub.checkpoint_every_s}"],
            "environment": {"SCOPE3_DATABASE_URL": admin_database_url,
                            "SCOPE3_DATA_DIR": str(settings.tenant_dir.parents[1])},
        })
    c.JupyterHub.services = services

"""Getting a machine ready for a tenant hub whose servers run as the tenant's system users (spawner ``local``).

Three things must hold before anyone's code runs as a local user, and ``scope3 hub start`` checks each:

1. **The installation is reachable** by the tenant's system users (they execute this Python). When a
   directory above it is closed (an installation under ``/root``), the hub refuses and says what to do:
   install into a shared prefix such as ``/opt/scope3``, or pass ``--grant-access`` to add execute permission
   for others on exactly the directories it names. Nothing outside the data directory is changed silently.
2. **The database asks for passwords.** Where PostgreSQL trusts local connections (``trust`` in
   ``pg_hba.conf``), an analyst's kernel connects as the superuser and row-level security means nothing.
   :func:`check_database_requires_passwords` tries exactly that as an unprivileged system user, and names
   the ``pg_hba.conf`` line to change. Only the development setting ``allow_passwordless_database`` in
   ``hub.yaml`` lets a hub start anyway, and then it says so at every start.
3. **A tenant's files are closed to every other tenant's users** (:func:`close_tenant_files`): homes 0700,
   the tenant's folder of the data directory 0710 to its reports service only, secrets and ``hub.yaml`` 0600,
   the hub's state 0700, report outputs and models the reports service's own (0700).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .. import db
from ..errors import ConfigurationError
from .settings import HUB_FILE, HUB_SECRETS_FILE, HubSettings

log = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = 30


def _as_user(user: pwd.struct_passwd, args: list[str], timeout: float = _PROBE_TIMEOUT_S
             ) -> subprocess.CompletedProcess[str]:
    """Run ``args`` as ``user`` (its own group, no supplementary groups) with an empty environment."""
    return subprocess.run(args, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env={"PATH": "/usr/bin:/bin"},
                          cwd="/", capture_output=True, text=True, timeout=timeout, check=False)


# --- 1. the installation -----------------------------------------------------------------------------


def closed_directories(paths: Iterable[Path]) -> list[Path]:
    """Directories on the way to ``paths`` that other users cannot pass through (no execute for others)."""
    closed: list[Path] = []
    for path in paths:
        for parent in [*reversed(path.resolve().parents), path.resolve()]:
            try:
                mode = parent.stat().st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH and parent not in closed:
                closed.append(parent)
    return closed


def installation_paths() -> list[Path]:
    """What the tenant's system users execute and read: this Python (and its base installation) and the
    notebooks and hub configuration that ship with the platform."""
    from .. import paths

    return sorted({Path(sys.prefix), Path(sys.base_prefix), paths.share_dir()})


def check_installation_reachable(user: pwd.struct_passwd, *, grant: bool = False) -> list[Path]:
    """Refuse (with what to do) when ``user`` cannot run this installation; with ``grant``, add execute
    permission for others on the closed directories instead and return them."""
    closed = closed_directories(installation_paths())
    if closed and grant:
        for d in closed:
            d.chmod(d.stat().st_mode | stat.S_IXOTH)
            log.warning("granted execute permission for others on %s (--grant-access)", d)
        return closed
    if closed:
        raise ConfigurationError(
            f"the tenant's servers run as system users, who cannot reach this installation: "
            f"{', '.join(map(str, closed))} {'is' if len(closed) == 1 else 'are'} closed to other users. Install the "
            "platform into a shared prefix (python3 -m venv /opt/scope3 && /opt/scope3/bin/pip install scope3), or "
            "run `scope3 hub start --grant-access` to add execute permission for others on exactly these directories"
        )
    probe = _as_user(user, [sys.executable, "-c", "import scope3lib"])
    if probe.returncode != 0:
        raise ConfigurationError(f"system user {user.pw_name} cannot run {sys.executable}: "
                                 f"{(probe.stderr.strip().splitlines() or ['unknown error'])[-1]}")
    return []


# --- 2. the database ---------------------------------------------------------------------------------

_PROBE = """
import sys, psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=5).close()
except Exception as exc:
    print(type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    sys.exit(1)
"""


def passwordless_login(admin_url: str, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` (an unprivileged system user, as an analyst's kernel is) can log in to the platform's
    database as its admin role without a password."""
    u = make_url(db.sqlalchemy_url(admin_url)).set(password=None)
    probe = _as_user(user, [sys.executable, "-c", _PROBE, db.libpq_url(u)])
    return probe.returncode == 0


def trust_rules(admin_url: str) -> list[str]:
    """The ``pg_hba.conf`` lines that trust connections, as "<file> line N: <the rule>" (the superuser can
    read them; another admin role gets an empty list and the generic advice)."""
    try:
        with db.create_engine(admin_url).connect() as conn:
            hba = conn.scalar(sa.text("SHOW hba_file"))
            rows = conn.execute(sa.text(
                "SELECT line_number, type, database, user_name, address, auth_method FROM pg_hba_file_rules "
                "WHERE auth_method = 'trust' ORDER BY line_number")).all()
    except sa.exc.DBAPIError:
        return []
    return [f"{hba} line {r.line_number}: {r.type} {','.join(r.database or [])} {','.join(r.user_name or [])} "
            f"{r.address or ''} trust".replace("  ", " ") for r in rows]


def check_database_requires_passwords(settings: HubSettings, admin_url: str, probe_user: pwd.struct_passwd) -> None:
    """Refuse to run servers as local users when the database lets them in without a password, unless the
    tenant's ``hub.yaml`` sets the development setting ``allow_passwordless_database``."""
    if not passwordless_login(admin_url, probe_user):
        return
    rules = trust_rules(admin_url)
    where = "; ".join(rules) if rules else "a 'trust' line of pg_hba.conf"
    if settings.hub.allow_passwordless_database:
        log.warning("DEVELOPMENT ONLY: tenant %s: PostgreSQL lets local users log in as %s without a password (%s): "
                    "any analyst's kernel can bypass row-level security. allow_passwordless_database is set in "
                    "hub.yaml; never run a real tenant like this.", settings.slug,
                    make_url(admin_url).username, where)
        return
    raise ConfigurationError(
        f"PostgreSQL lets local users log in as {make_url(admin_url).username!r} without a password ({where}): any "
        "analyst's kernel could connect as that role and read every tenant. Change 'trust' to 'scram-sha-256' on that "
        "line and reload PostgreSQL (SELECT pg_reload_conf()), or, for development only, set "
        "allow_passwordless_database: true in the tenant's hub.yaml"
    )


# --- 3. the tenant's files -------------------------------------------------------------------------------


def _own(path: Path, user: pwd.struct_passwd | None, mode: int, group: int | None = None) -> None:
    if user is not None or group is not None:
        os.chown(path, user.pw_uid if user else -1, group if group is not None else (user.pw_gid if user else -1))
    path.chmod(mode)


def close_tenant_files(settings: HubSettings, reports_user: pwd.struct_passwd, data_dir: Path,
                       models: Path, reports_out: Path) -> None:
    """Permissions of everything the tenant has on disk, as described in this module's docstring."""
    tenants = settings.tenant_dir.parent
    _own(tenants, None, 0o711)  # pass through, never list: tenants' names are not for other tenants
    # Only the tenant's reports service passes through its folder (to its models and outputs).
    _own(settings.tenant_dir, None, 0o710, group=reports_user.pw_gid)
    for name in (HUB_FILE, HUB_SECRETS_FILE, "secrets.json"):
        if (settings.tenant_dir / name).exists():
            _own(settings.tenant_dir / name, None, 0o600)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _own(settings.state_dir, None, 0o700)
    for folder in (models, reports_out):
        folder.mkdir(parents=True, exist_ok=True)
        for path in (folder, *folder.rglob("*")):
            _own(path, reports_user, 0o700 if path.is_dir() else 0o600)
    closed = closed_directories([data_dir])
    if closed:
        raise ConfigurationError(
            f"the tenant's reports service ({reports_user.pw_name}) cannot reach the data directory {data_dir}: "
            f"{', '.join(map(str, closed))} closed to other users; set SCOPE3_DATA_DIR to a directory under a shared "
            "path such as /var/lib/scope3")


def close_home(home: Path, user: pwd.struct_passwd) -> None:
    """A system user's home is theirs alone (useradd --create-home makes it 0755 under umask 022)."""
    home.mkdir(parents=True, exist_ok=True)
    _own(home, user, 0o700)


# --- the proxy -------------------------------------------------------------------------------------------

_PROXY_HINT = ("JupyterHub's proxy, configurable-http-proxy, is not installed: run `npm install -g "
               "configurable-http-proxy` (Node.js and npm: `apt-get install nodejs npm`)")


def proxy_command() -> str:
    """configurable-http-proxy (Node.js): the one ``make install`` puts in the virtual environment, else the one
    on PATH (``npm install -g``); refused in one line saying what to install when there is none."""
    local = Path(sys.prefix) / "node_modules" / ".bin" / "configurable-http-proxy"
    found = str(local) if local.exists() else shutil.which("configurable-http-proxy")
    if found is None or shutil.which("node") is None:
        raise ConfigurationError(_PROXY_HINT)
    return found

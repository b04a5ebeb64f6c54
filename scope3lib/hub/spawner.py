"""Where analysts' servers run: per-tenant system users when the hub is root, else the hub's own user.

On one machine, OS-level isolation between tenants comes from running each analyst's server as a
system user of their own (``s3-<tenant>-<user>``), created by provisioning; the database boundary
holds either way (row-level security), but without system users one analyst's kernel could read
files of another. The Kubernetes path replaces all of this with KubeSpawner (see hub_config/).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Unicode

from ..errors import ConfigurationError

_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]")


def system_username(tenant: str, username: str) -> str:
    """``s3-<tenant>-<user>``, valid for useradd (at most 32 characters, no dots)."""
    name = _NOT_ALLOWED.sub("_", f"s3-{tenant}-{username}".lower())
    if len(name) > 32:  # keep it unique when it has to be shortened
        name = f"{name[:23]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_system_user(name: str, home: Path | None = None) -> pwd.struct_passwd:
    """Create the system user ``name`` (no login shell, own group, a home directory of its own, mode 0700) if
    missing; an existing user's home is closed again too."""
    entry = _system_user(name, home)
    home_dir = Path(entry.pw_dir)
    home_dir.mkdir(parents=True, exist_ok=True)
    os.chown(home_dir, entry.pw_uid, entry.pw_gid)
    home_dir.chmod(0o700)  # useradd --create-home makes it 0755 under umask 022: readable by other tenants
    return entry


def _system_user(name: str, home: Path | None) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if not is_root():
        raise ConfigurationError(f"cannot create system user {name!r}: the hub must run as root for that")
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [useradd, "--system", "--user-group", "--create-home", "--shell", "/usr/sbin/nologin"]
    if home is not None:
        cmd += ["--home-dir", str(home)]
    result = subprocess.run([*cmd, name], capture_output=True, text=True)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise ConfigurationError(f"useradd {name} failed: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def prepare_home(home: Path, uid: int, gid: int, notebooks: list[Path]) -> None:
    """Give a new analyst the getting-started notebooks (never overwriting their own copies); the home is
    theirs alone (0700)."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for nb in notebooks:
        target = home / nb.name
        if not target.exists():
            shutil.copyfile(nb, target)
            os.chown(target, uid, gid)
    os.chown(home, uid, gid)


class Scope3LocalProcessSpawner(LocalProcessSpawner):
    """LocalProcessSpawner whose processes run as the tenant's system user for the hub user."""

    tenant = Unicode(help="Slug of the hub's tenant; part of every system user's name.").tag(config=True)

    def _system_user(self) -> str:
        return system_username(self.tenant, self.user.name)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        return super().make_preexec_fn(self._system_user())

    def user_env(self, env: dict[str, Any]) -> dict[str, Any]:
        entry = pwd.getpwnam(self._system_user())
        env["USER"] = entry.pw_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell
        return env


def singleuser_cmd() -> list[str]:
    """The single-user server of this installation (the same virtual environment as the hub)."""
    return [str(Path(sys.prefix) / "bin" / "jupyterhub-singleuser")]

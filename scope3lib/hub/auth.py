"""JupyterHub authentication from the platform's own users table.

Membership has one source of truth: the ``users`` and ``memberships`` tables. The authenticator checks
the stored argon2 hash, refuses anyone who is not a member of the hub's tenant, and hands JupyterHub
the user's role: owner and admin get the ``tenant-admin`` role (their own server, the hub's admin page with
the tenant's users, starting and stopping their servers), member gets the ``analyst`` role (a JupyterLab
server), viewer gets only the dashboard.

A tenant admin is deliberately not JupyterHub's built-in ``admin``: that role can enter every user's
server (``access:servers``), i.e. run code as another analyst's system user, and manage tokens and the
proxy. Within a tenant's own hub nobody needs that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from jupyterhub.auth import Authenticator
from traitlets import Unicode

from ..db import create_engine
from ..models import Role
from ..tenancy import authenticate

DASHBOARD_SERVICE = "dashboard"
API_SERVICE = "api"

# What a hub token may do on the tenant's API (scope3lib.api.auth), declared as JupyterHub custom scopes.
API_SCOPES: dict[str, dict[str, str]] = {
    "custom:scope3:read": {"display_name": "Read the tenant's data through its API",
                           "description": "GET every resource of the tenant's integration API."},
    "custom:scope3:write": {"display_name": "Change the tenant's data through its API",
                            "description": "Create, change and run resources of the tenant's integration API."},
    "custom:scope3:admin": {"display_name": "Administer the tenant's API",
                            "description": "Reserved for the tenant's owners and admins (API key management)."},
}

# JupyterHub roles, managed by this authenticator. The built-in "user" role is trimmed to the names
# and groups a viewer's pages need (see hub/config.py), so only analysts and admins get "self".
MANAGED_ROLES: list[dict[str, Any]] = [
    {
        "name": "tenant-admin",
        "description": "Tenant owner or admin: their own server, the dashboard, and the hub's admin page (the "
                       "tenant's users; start and stop their servers, never enter them)",
        "scopes": ["self", f"access:services!service={DASHBOARD_SERVICE}", "admin-ui", "list:users", "read:users",
                   "servers", "list:groups", "read:groups", "read:roles:users", "read:hub",
                   f"access:services!service={API_SERVICE}", "custom:scope3:read", "custom:scope3:write",
                   "custom:scope3:admin"],
    },
    {
        "name": "analyst",
        "description": "Tenant analyst: their own JupyterLab server and the dashboard",
        "scopes": ["self", f"access:services!service={DASHBOARD_SERVICE}", f"access:services!service={API_SERVICE}",
                   "custom:scope3:read", "custom:scope3:write"],
    },
    {
        "name": "viewer",
        "description": "Executive: the dashboard only; no server",
        # Without "self", a viewer must still hold its own name and groups, or the hub refuses to
        # issue the dashboard's OAuth token (measured on JupyterHub 6: docs/design.md, measured facts).
        "scopes": [
            f"access:services!service={DASHBOARD_SERVICE}",
            "read:users:name!user",
            "read:users:groups!user",
            f"access:services!service={API_SERVICE}",
            "custom:scope3:read",
            # Their own API tokens (for a BI tool), which can hold no more than the scopes above.
            "tokens!user",
        ],
    },
]


_HUB_ROLE = {Role.OWNER: "tenant-admin", Role.ADMIN: "tenant-admin", Role.MEMBER: "analyst", Role.VIEWER: "viewer"}
#: The managed roles that come with a server of one's own (everyone but viewers).
SERVER_ROLES = frozenset({"tenant-admin", "analyst"})


def hub_roles(role: Role) -> list[dict[str, Any]]:
    """The JupyterHub role specs (as the auth model wants them) for a platform role."""
    return [dict(r) for r in MANAGED_ROLES if r["name"] == _HUB_ROLE[role]]


def _auth_model(name: str, role: Role) -> dict[str, Any]:
    return {"name": name, "admin": False, "roles": hub_roles(role), "groups": [role.value]}


class Scope3Authenticator(Authenticator):
    """Log in members of one tenant with the password stored in the platform database."""

    tenant = Unicode(help="Slug of the tenant whose members may log in to this hub.").tag(config=True)
    database_url = Unicode(
        help="Platform database URL with read access to users and memberships (the admin URL)."
    ).tag(config=True)

    def _engine(self) -> sa.Engine:
        engine = getattr(self, "_sa_engine", None)
        if engine is None:
            engine = self._sa_engine = create_engine(self.database_url, pool_size=2)
        return engine

    async def authenticate(self, handler: object, data: dict[str, str]) -> dict[str, Any] | None:
        username = (data.get("username") or "").strip().lower()
        password = data.get("password") or ""
        if not username or not password:
            return None
        # argon2 verification takes tens of milliseconds: keep it off the hub's event loop.
        role = await asyncio.to_thread(authenticate, self._engine(), self.tenant, username, password)
        if role is None:
            self.log.warning("login refused for %r on tenant %s", username, self.tenant)
            return None
        return _auth_model(username, role)

    async def refresh_user(self, user: Any, handler: object = None) -> bool | dict[str, Any]:
        """Drop the session of a user who is no longer a member (or whose role changed)."""
        role = await asyncio.to_thread(self._current_role, user.name)
        if role is None:
            return False
        return _auth_model(user.name, role)

    def _current_role(self, username: str) -> Role | None:
        with self._engine().connect() as conn:
            role = conn.scalar(
                sa.text(
                    "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id "
                    "JOIN tenants t ON t.id = m.tenant_id WHERE u.username = :u AND t.slug = :s"
                ),
                {"u": username, "s": self.tenant},
            )
        return None if role is None else Role(role)

    async def load_managed_roles(self) -> list[dict[str, Any]]:
        """The roles with their members as the platform database has them now.

        Used with ``reset_managed_roles_on_startup``: at every start the hub's role assignments are
        rebuilt from the memberships table, so a member removed while the hub was down loses access.
        """
        members = await asyncio.to_thread(self._members)
        return [{**spec, "users": sorted(u for u, r in members if _HUB_ROLE[r] == spec["name"])}
                for spec in MANAGED_ROLES]

    def _members(self) -> list[tuple[str, Role]]:
        with self._engine().connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT u.username, m.role FROM memberships m JOIN users u ON u.id = m.user_id "
                    "JOIN tenants t ON t.id = m.tenant_id WHERE t.slug = :s"
                ),
                {"s": self.tenant},
            ).all()
        return [(str(r.username), Role(r.role)) for r in rows]

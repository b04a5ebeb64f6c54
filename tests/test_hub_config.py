"""The hub configuration functions on a bare ``Config()``: settings built in memory, no database, no hub running.

Whether the tests run as root must not matter: every test fixes ``is_root`` (and passes the spawner
mode explicitly where it is not what is under test).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tornado.web import HTTPError
from traitlets.config import Config

from scope3lib import paths
from scope3lib.hub import config as hub_config
from scope3lib.hub import machine
from scope3lib.hub.auth import API_SERVICE, DASHBOARD_SERVICE
from scope3lib.hub.settings import HubFile, HubSecrets, HubSettings
from scope3lib.hub.spawner import Scope3LocalProcessSpawner, system_username

ADMIN_URL = "postgresql://scope3_admin:admin-pw-0123@127.0.0.1:5432/scope3"
RW_URL = "postgresql://t_acme_rw:rw-pw-4567@127.0.0.1:5432/scope3"
RO_URL = "postgresql://t_acme_ro:ro-pw-89ab@127.0.0.1:5432/scope3"
COOKIE_SECRET = "0f" * 32
PROXY_TOKEN = "p" * 32


@pytest.fixture(autouse=True)
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_config, "is_root", lambda: False)


def settings(tmp_path: Path, **hub: Any) -> HubSettings:
    fields: dict[str, Any] = {"tenant": "acme", "port": 18010, "hub_port": 18011, "proxy_api_port": 18012,
                              "dashboard_port": 18013}
    fields.update(hub)
    return HubSettings(
        hub=HubFile.model_validate(fields),
        secrets=HubSecrets(cookie_secret=COOKIE_SECRET, proxy_auth_token=PROXY_TOKEN),
        database_url=RW_URL,
        database_url_readonly=RO_URL,
        tenant_dir=tmp_path / "tenants" / "acme",
    )


def configured(tmp_path: Path, mode: str = "simple", **hub: Any) -> Config:
    return hub_config.apply(Config(), settings(tmp_path, **hub), ADMIN_URL, mode=mode)


def services(c: Config) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in c.JupyterHub.services}


def user(name: str = "ann", *, admin: bool = False, roles: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(name=name, admin=admin, roles=[SimpleNamespace(name=r) for r in roles])


def test_ports_and_base_url(tmp_path: Path) -> None:
    c = configured(tmp_path, base_url="/acme", bind_ip="0.0.0.0")
    assert c.JupyterHub.ip == "0.0.0.0"
    assert c.JupyterHub.port == 18010
    assert c.JupyterHub.base_url == "/acme/"
    assert (c.JupyterHub.hub_ip, c.JupyterHub.hub_port) == ("127.0.0.1", 18011)
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:18012"
    assert services(c)[DASHBOARD_SERVICE]["url"] == "http://127.0.0.1:18013"
    assert configured(tmp_path, base_url="/acme/").JupyterHub.base_url == "/acme/"
    assert configured(tmp_path).JupyterHub.base_url == "/"


def test_secrets_and_state_files(tmp_path: Path) -> None:
    c = configured(tmp_path)
    state = tmp_path / "tenants" / "acme" / "hub"
    assert c.JupyterHub.cookie_secret == bytes.fromhex(COOKIE_SECRET)
    assert c.ConfigurableHTTPProxy.auth_token == PROXY_TOKEN
    assert c.JupyterHub.db_url == f"sqlite:///{state / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.pid_file == str(state / "jupyterhub.pid")
    assert c.ConfigurableHTTPProxy.pid_file == str(state / "proxy.pid")
    assert c.JupyterHub.cleanup_servers is True and c.JupyterHub.cleanup_proxy is True


def test_proxy_waits_for_a_dashboard_render(tmp_path: Path) -> None:
    command = configured(tmp_path).ConfigurableHTTPProxy.command
    assert command[0] == machine.proxy_command()
    assert command[1:] == ["--timeout=120000", "--proxy-timeout=120000"]


def test_authenticator_alone_holds_the_admin_url(tmp_path: Path) -> None:
    c = configured(tmp_path, checkpoint_every_s=0)
    assert c.JupyterHub.authenticator_class == "scope3lib.hub.auth.Scope3Authenticator"
    assert c.Scope3Authenticator.tenant == "acme"
    assert c.Scope3Authenticator.database_url == ADMIN_URL
    assert c.Authenticator.manage_roles is True and c.Authenticator.allow_all is True
    assert c.Authenticator.refresh_pre_spawn is True
    assert c.JupyterHub.load_roles == [{"name": "user", "scopes": ["read:users:name!user", "read:users:groups!user"]}]
    elsewhere = {name: section for name, section in c.items() if name != "Scope3Authenticator"}
    assert "admin-pw-0123" not in repr(elsewhere) and "scope3_admin" not in repr(elsewhere)


def test_only_the_operators_ledger_service_shares_the_admin_url(tmp_path: Path) -> None:
    """Signing checkpoints needs the admin role and the tenant's key: a service of the hub's own user (no
    system user of the tenant's), beside which no tenant code runs."""
    for mode in ("local", "simple"):
        found = services(configured(tmp_path, mode=mode, checkpoint_every_s=600))
        ledger = found.pop(hub_config.LEDGER_SERVICE)
        assert ledger["command"][-3:] == ["checkpoint", "acme", "--every=600"] and "user" not in ledger
        assert ledger["environment"]["SCOPE3_DATABASE_URL"] == ADMIN_URL
        assert "admin-pw-0123" not in repr(found)  # dashboard and reports: never
    assert hub_config.LEDGER_SERVICE not in services(configured(tmp_path, checkpoint_every_s=0))


def test_spawner_environment_is_the_tenant_read_write_url(tmp_path: Path) -> None:
    c = configured(tmp_path)
    assert c.Spawner.env_keep == ["PATH", "LANG", "LC_ALL", "TZ"]
    assert c.Spawner.environment == {"SCOPE3_TENANT_DATABASE_URL": RW_URL, "SCOPE3_TENANT": "acme",
                                     "SCOPE3_API_URL": "http://127.0.0.1:18014"}
    assert c.Spawner.default_url == "/lab"
    assert (c.Spawner.start_timeout, c.Spawner.http_timeout) == (120, 120)


def test_dashboard_gets_the_read_only_url(tmp_path: Path) -> None:
    dashboard = services(configured(tmp_path, dashboard_pool_size=3, dashboard_cell_timeout_s=45))[DASHBOARD_SERVICE]
    assert dashboard["environment"] == {"SCOPE3_TENANT_DATABASE_URL": RO_URL, "SCOPE3_TENANT": "acme"}
    assert "rw-pw-4567" not in repr(dashboard) and "admin-pw-0123" not in repr(dashboard)
    assert dashboard["command"][0] == sys.executable
    assert str(paths.notebooks() / "dashboards" / "executive.ipynb") in dashboard["command"]
    assert "--port=18013" in dashboard["command"]
    assert "--VoilaConfiguration.default_pool_size=3" in dashboard["command"]
    assert "--VoilaExecutor.timeout=45" in dashboard["command"]
    assert dashboard["oauth_no_confirm"] is True and dashboard["display"] is True


def test_scheduler_service_uses_the_read_write_url(tmp_path: Path) -> None:
    reports = services(configured(tmp_path))[hub_config.REPORTS_SERVICE]
    assert reports["command"] == [sys.executable, "-m", "scope3lib", "report", "scheduler", "acme",
                                  "--rollup-every=300"]
    assert reports["environment"] == {"SCOPE3_TENANT_DATABASE_URL": RW_URL, "SCOPE3_TENANT": "acme",
                                      "SCOPE3_DATA_DIR": str(tmp_path)}


def test_api_service_gets_both_tenant_urls_and_never_the_admin_url(tmp_path: Path) -> None:
    api = services(configured(tmp_path, checkpoint_every_s=600))[API_SERVICE]
    assert api["environment"] == {"SCOPE3_TENANT_DATABASE_URL": RW_URL, "SCOPE3_TENANT_DATABASE_URL_READONLY": RO_URL,
                                  "SCOPE3_TENANT": "acme", "SCOPE3_DATA_DIR": str(tmp_path)}
    assert "admin-pw-0123" not in repr(api) and "scope3_admin" not in repr(api)
    assert api["url"] == "http://127.0.0.1:18014" and api["command"][-1] == "--port=18014"
    assert services(configured(tmp_path, api_port=19999))[API_SERVICE]["url"] == "http://127.0.0.1:19999"
    assert API_SERVICE not in services(configured(tmp_path, api=False))


def test_hub_roles_grant_the_api_scopes(tmp_path: Path) -> None:
    from scope3lib.hub.auth import MANAGED_ROLES

    c = configured(tmp_path)
    assert set(c.JupyterHub.custom_scopes) == {"custom:scope3:read", "custom:scope3:write", "custom:scope3:admin"}
    granted = {r["name"]: {s for s in r["scopes"] if s.startswith("custom:")} for r in MANAGED_ROLES}
    assert granted == {"tenant-admin": {"custom:scope3:read", "custom:scope3:write", "custom:scope3:admin"},
                       "analyst": {"custom:scope3:read", "custom:scope3:write"}, "viewer": {"custom:scope3:read"}}


def test_scheduler_switched_off(tmp_path: Path) -> None:
    assert list(services(configured(tmp_path, scheduler=False, api=False, checkpoint_every_s=0))) == [
        DASHBOARD_SERVICE]


def test_services_run_as_their_own_system_users_in_local_mode(tmp_path: Path) -> None:
    local = services(configured(tmp_path, mode="local", checkpoint_every_s=0))
    assert {name: s["user"] for name, s in local.items()} == {
        DASHBOARD_SERVICE: system_username("acme", DASHBOARD_SERVICE),
        hub_config.REPORTS_SERVICE: system_username("acme", hub_config.REPORTS_SERVICE),
        API_SERVICE: system_username("acme", hub_config.REPORTS_SERVICE),  # it serves the files reports writes
    }
    assert all("user" not in s for s in services(configured(tmp_path, mode="simple")).values())
    assert services(configured(tmp_path, mode="local", rollup_every_s=60))[hub_config.REPORTS_SERVICE][
        "command"][-1] == "--rollup-every=60"


def test_viewers_land_on_the_dashboard(tmp_path: Path) -> None:
    default_url = configured(tmp_path, base_url="/acme").JupyterHub.default_url
    assert default_url(SimpleNamespace(current_user=user())) == "/acme/services/dashboard/"
    assert default_url(SimpleNamespace(current_user=user(roles=("user",)))) == "/acme/services/dashboard/"
    assert default_url(SimpleNamespace(current_user=user(roles=("analyst",)))) == "/acme/hub/spawn"
    assert default_url(SimpleNamespace(current_user=user(admin=True))) == "/acme/hub/spawn"
    assert default_url(SimpleNamespace(current_user=None)) == "/acme/hub/spawn"


def test_local_mode_spawns_per_tenant_system_users(tmp_path: Path) -> None:
    c = configured(tmp_path, mode="local")
    assert c.JupyterHub.spawner_class is Scope3LocalProcessSpawner
    assert c.Scope3LocalProcessSpawner.tenant == "acme"
    assert "args" not in c.Spawner


def test_simple_mode_warns_and_keeps_homes_in_the_tenant_directory(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=hub_config.__name__):
        c = configured(tmp_path, mode="simple")
    assert "OS-level isolation between analysts is OFF" in caplog.text
    assert c.JupyterHub.spawner_class == "simple"
    assert c.SimpleLocalProcessSpawner.home_dir_template == str(tmp_path / "tenants" / "acme" / "home" / "{username}")
    assert "args" not in c.Spawner


def test_simple_mode_as_root_allows_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_config, "is_root", lambda: True)
    assert configured(tmp_path, mode="simple").Spawner.args == ["--allow-root"]


def test_viewers_get_no_server(tmp_path: Path) -> None:
    hook = configured(tmp_path, mode="local").Spawner.pre_spawn_hook
    with pytest.raises(HTTPError) as err:
        hook(SimpleNamespace(user=user("vic")))
    assert err.value.status_code == 403


def test_analyst_home_gets_the_analyst_notebooks_once(tmp_path: Path) -> None:
    hook = configured(tmp_path, mode="simple").Spawner.pre_spawn_hook
    home = tmp_path / "tenants" / "acme" / "home" / "ann"
    hook(SimpleNamespace(user=user("ann", roles=("analyst",))))
    expected = sorted(p.name for p in (paths.notebooks() / "analyst").glob("*.ipynb"))
    assert expected and sorted(p.name for p in home.iterdir()) == expected
    (home / expected[0]).write_text("edited")
    hook(SimpleNamespace(user=user("ann", roles=("analyst",))))
    assert (home / expected[0]).read_text() == "edited"


@pytest.mark.parametrize("spawner", ["local", "simple"])
def test_spawner_mode_named_in_the_settings(tmp_path: Path, spawner: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for root in (False, True):
        monkeypatch.setattr(hub_config, "is_root", lambda root=root: root)
        assert hub_config.spawner_mode(settings(tmp_path, spawner=spawner)) == spawner


def test_spawner_mode_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(tmp_path)
    assert hub_config.spawner_mode(s) == "simple"
    monkeypatch.setattr(hub_config, "is_root", lambda: True)
    assert hub_config.spawner_mode(s) == "local"
    # The embedded server's socket directory, which other users cannot enter: their servers could not connect.
    private = tmp_path / "pgsocket"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    s = s.model_copy(update={"database_url": f"postgresql://t_acme_rw:pw@/scope3?host={private}"})
    assert hub_config.spawner_mode(s) == "simple"
    private.chmod(0o711)
    assert hub_config.spawner_mode(s) == "local"


def test_apply_decides_the_mode_when_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(tmp_path)
    assert hub_config.apply(Config(), s, ADMIN_URL).JupyterHub.spawner_class == "simple"
    monkeypatch.setattr(hub_config, "is_root", lambda: True)
    assert hub_config.apply(Config(), s, ADMIN_URL).JupyterHub.spawner_class is Scope3LocalProcessSpawner


def test_each_update_sets_only_its_own_sections(tmp_path: Path) -> None:
    s = settings(tmp_path)
    sections = {
        hub_config.update_network: {"JupyterHub"},
        hub_config.update_state: {"JupyterHub"},
        hub_config.update_proxy: {"ConfigurableHTTPProxy"},
        hub_config.update_auth: {"JupyterHub", "Scope3Authenticator", "Authenticator"},
        hub_config.update_default_url: {"JupyterHub"},
    }
    for update, expected in sections.items():
        c = Config()
        if update is hub_config.update_auth:
            hub_config.update_auth(c, s, ADMIN_URL)
        else:
            update(c, s)
        assert set(c) == expected, update.__name__
    c = Config()
    hub_config.update_spawner(c, s, "local")
    assert set(c) == {"Spawner", "JupyterHub", "Scope3LocalProcessSpawner"}
    assert set(c.JupyterHub) == {"spawner_class"}
    c = Config()
    hub_config.update_services(c, s, "local")
    assert set(c) == {"JupyterHub"} and set(c.JupyterHub) == {"services"}

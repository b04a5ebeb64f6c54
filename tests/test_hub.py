"""Tenant hubs for real: JupyterHub, spawned JupyterLab servers, the Voila dashboard, over HTTP and websockets."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine
from traitlets.config import Config

from scope3lib.errors import ConfigurationError
from scope3lib.hub import config as hub_config
from scope3lib.hub import forkserver
from scope3lib.hub import settings as hub_settings
from scope3lib.hub.spawner import ensure_system_user, system_username
from scope3lib.meters.broker import free_port
from tests.helpers import SCOPE3, TenantFactory, run_cli, scope3_env, wait_until
from tests.hub_client import HubClient, Kernel, kernel_id_in_page, page_html

pytestmark = [pytest.mark.db, pytest.mark.slow]

PASSWORD = "correct-horse-9"


class Hub:
    def __init__(self, slug: str, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.slug, self.proc, self.port, self.log = slug, proc, port, log
        self.url = f"http://127.0.0.1:{port}"

    def client(self) -> HubClient:
        return HubClient(self.url)


HUB_A_CELL_TIMEOUT_S = 15
CULL_IDLE_S = 15
POLL_S = 0.5  # how often to ask a hub (or the browser) whether it is there yet


def _free_ports(data_dir: Path, slug: str, **extra: Any) -> None:
    path = hub_settings.tenant_dir(data_dir, slug) / hub_settings.HUB_FILE
    raw = yaml.safe_load(path.read_text())
    raw.update(port=free_port(), hub_port=free_port(), proxy_api_port=free_port(), dashboard_port=free_port(),
               api_port=free_port(), **extra)
    path.write_text(yaml.safe_dump(raw))


def _start(database_url: str, data_dir: Path, slug: str, tmp: Path) -> Hub:
    log = tmp / f"{slug}-hub.log"
    env = scope3_env(database_url, data_dir)
    # --grant-access: wherever the suite runs from, the tenant's system users must reach this checkout.
    proc = subprocess.Popen([*SCOPE3, "hub", "start", slug, "--grant-access"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    port = hub_settings.load(data_dir, slug).hub.port
    hub = Hub(slug, proc, port, log)

    def up() -> bool:
        assert proc.poll() is None, f"hub {slug} exited: {log.read_text()[-3000:]}"
        try:
            import requests

            return requests.get(hub.url + "/hub/health", timeout=2).ok and \
                requests.get(hub.url + "/services/dashboard/", timeout=5, allow_redirects=False).status_code == 302
        except requests.RequestException:
            return False

    wait_until(up, 120, f"hub {slug} and its dashboard", interval=POLL_S)
    return hub


def _stop(hub: Hub) -> None:
    hub.proc.send_signal(signal.SIGTERM)
    try:
        hub.proc.wait(60)
    except subprocess.TimeoutExpired:
        hub.proc.kill()


@pytest.fixture(scope="module")
def hubs(make_module_tenant: TenantFactory, database_url: str, data_dir: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Hub]]:
    tmp = tmp_path_factory.mktemp("hubs")
    for slug, suppliers in (("hub-a", 40), ("hub-b", 30)):  # demo data, an owner, an analyst and a viewer
        make_module_tenant(slug, suppliers=suppliers, seed=len(slug), devices=2, password=PASSWORD,
                           users={f"{slug}-own": "owner", f"{slug}-ana": "member", f"{slug}-vic": "viewer"})
    # This machine's PostgreSQL may trust local connections (CI's does): the development setting lets the
    # hubs run their servers as system users anyway; test_hub_refuses_a_database_without_passwords shows
    # what happens without it. A short cell timeout, so that the pool kernel's wait for its viewer outlasts
    # it during the module; a short cull window, for test_abandoned_dashboard_pages_are_culled_and_capped.
    dev = {"allow_passwordless_database": True}
    _free_ports(data_dir, "hub-a", dashboard_cell_timeout_s=HUB_A_CELL_TIMEOUT_S, dashboard_cull_idle_s=CULL_IDLE_S,
                dashboard_cull_interval_s=2, dashboard_max_pages=4, dashboard_max_pages_per_viewer=2, **dev)
    _free_ports(data_dir, "hub-b", dashboard_pool_size=0, scheduler=False, **dev)
    started: dict[str, Hub] = {}
    try:
        for slug in ("hub-a", "hub-b"):
            started[slug] = _start(database_url, data_dir, slug, tmp)
        time.sleep(5)  # let the dashboard's preheated kernels run the notebook
        yield started
    finally:
        for hub in started.values():
            _stop(hub)


def _spawn(c: HubClient, user: str) -> None:
    r = c.api("POST", f"/hub/api/users/{user}/server")
    assert r.status_code in (201, 202), r.text
    wait_until(lambda: c.api("GET", f"/hub/api/users/{user}").json()["servers"].get("", {}).get("ready"), 180,
               f"{user}'s server", interval=POLL_S)


def _ensure_running(c: HubClient, user: str) -> None:
    if not c.api("GET", f"/hub/api/users/{user}").json()["servers"].get("", {}).get("ready"):
        _spawn(c, user)


def test_analyst_runs_code_that_sees_only_their_tenant(hubs: dict[str, Hub], data_dir: Path) -> None:
    hub = hubs["hub-a"]
    c = hub.client()
    r = c.login("hub-a-ana", PASSWORD)
    assert r.status_code == 200, r.text[:500]
    _spawn(c, "hub-a-ana")
    token = c.api("POST", "/hub/api/users/hub-a-ana/tokens", json={"note": "test"}).json()["token"]
    auth = {"Authorization": f"token {token}"}
    kernel_id = c.s.post(f"{hub.url}/user/hub-a-ana/api/kernels", headers=auth, json={"name": "python3"},
                         timeout=120).json()["id"]
    k = Kernel(f"ws://127.0.0.1:{hub.port}/user/hub-a-ana/api/kernels/{kernel_id}/channels", header=auth)
    try:
        out = k.execute(
            "import os, pwd, pandas as pd, scope3lib\n"
            "e = scope3lib.connect()\n"
            "print(pd.read_sql('SELECT slug FROM tenants', e)['slug'].tolist())\n"
            "print(int(pd.read_sql('SELECT count(*) AS n FROM suppliers', e)['n'][0]))\n"
            "print(sorted(k for k in os.environ if k.startswith('SCOPE3_')))\n"
            "print(pwd.getpwuid(os.getuid()).pw_name)\n"  # the OS user (getpass reads $USER)
            "print(int(pd.read_sql(\"SELECT count(*) AS n FROM suppliers s JOIN tenants t ON t.id = s.tenant_id "
            "WHERE t.slug = 'hub-b'\", e)['n'][0]))\n"
        ).splitlines()
    finally:
        k.close()
    assert out[0] == "['hub-a']"
    assert out[1] == "40"
    assert out[2] == "['SCOPE3_API_URL', 'SCOPE3_TENANT', 'SCOPE3_TENANT_DATABASE_URL']"  # nothing else of the hub's
    # The OS user the server runs as: the tenant's system user with the local spawner, else the hub's own.
    local = hub_config.spawner_mode(hub_settings.load(data_dir, "hub-a")) == "local"
    assert out[3] == (system_username("hub-a", "hub-a-ana") if local else pwd.getpwuid(os.getuid()).pw_name)
    assert out[4] == "0"  # tenant B's suppliers: invisible whatever the SQL


def test_viewer_login_lands_on_the_dashboard(hubs: dict[str, Hub]) -> None:
    for hub, user in ((hubs["hub-a"], "hub-a-vic"), (hubs["hub-b"], "hub-b-vic")):
        r = hub.client().login_only(user, PASSWORD)
        assert r.status_code == 302 and r.headers["location"] == "/services/dashboard/", r.headers


def _page_kernel(hub: Hub, c: HubClient, page: str) -> Kernel:
    """The kernel websocket of a dashboard page, as the page's own script opens it."""
    return Kernel(f"ws://127.0.0.1:{hub.port}/services/dashboard/api/kernels/{kernel_id_in_page(page)}/channels",
                  cookie=c.cookie_header())


def _widget_states(k: Kernel) -> list[dict[str, Any]]:
    """The state of every widget of the page (what the browser renders), asked of its kernel."""
    info = k.replies(k.send("comm_info_request", {"target_name": "jupyter.widget"}), "comm_info_reply")
    comms = list(info[-1]["content"]["comms"])
    assert comms, "the dashboard has no widgets"
    states: list[dict[str, Any]] = []
    for comm_id in comms:
        reply = k.replies(k.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_state"}}),
                          "comm_msg", timeout=20)
        states += [m["content"]["data"].get("state", {}) for m in reply if m["header"]["msg_type"] == "comm_msg"]
    return states


def test_viewer_lands_on_the_dashboard_with_real_figures(hubs: dict[str, Hub]) -> None:
    hub = hubs["hub-a"]
    c = hub.client()
    r = c.login("hub-a-vic", PASSWORD)
    assert r.status_code == 200 and r.url == f"{hub.url}/services/dashboard/", r.url
    assert "import scope3lib" not in r.text  # sources are stripped
    k = _page_kernel(hub, c, r.text)
    # The page's kernel was forked by the service's zygote (scope3lib.hub.forkserver), not started from scratch.
    proc = _kernel_process(hub, kernel_id_in_page(r.text))
    assert proc.name() == forkserver.KERNEL_NAME and "scope3lib.hub.forkserver" in _command(proc.parent())
    try:
        # The first view is in the page itself, drawn before any widget: the controls are widgets.
        states = _widget_states(k)
        assert {"SelectionRangeSliderModel", "DropdownModel", "TextModel"} <= {s.get("_model_name") for s in states}
        html = page_html(r.text)
        assert "Total emissions" in html and "t CO2e" in html
        # Every chart is inline SVG drawn in the kernel (the browser runs no plotly), titled as the figure is.
        charts = re.findall(r"<svg class='s3-chart'.*?</svg>", html, re.S)
        assert len(charts) >= 5 and all("<g class='marks'>" in c for c in charts)
        titles = " ".join(re.findall(r"<text class='chart-title'[^>]*>([^<]*)</text>", html))
        assert "By GHG Protocol category" in titles and "Top 10 suppliers" in titles

        # The page's kernel takes widget messages only: code sent by a viewer is dropped.
        marker = Path(f"/tmp/scope3-viewer-code-{uuid.uuid4().hex}")
        msg_id = k.send("execute_request", {"code": f"open({str(marker)!r}, 'w').write('x')", "silent": False})
        assert k.replies(msg_id, "execute_reply", timeout=5) == []
        assert not marker.exists()
    finally:
        k.close()


def test_viewer_gets_no_server_lab_or_apis(hubs: dict[str, Hub]) -> None:
    hub = hubs["hub-a"]
    c = hub.client()
    assert c.login_only("hub-a-vic", PASSWORD).status_code == 302
    assert c.api("POST", "/hub/api/users/hub-a-vic/server").status_code == 403
    assert c.s.get(hub.url + "/hub/spawn", timeout=30).status_code == 403
    for path in ("lab", "api/kernels", "api/contents", "api/terminals", "api/sessions", "tree"):
        assert c.s.get(f"{hub.url}/services/dashboard/{path}", timeout=30).status_code == 403, path
    assert c.s.post(f"{hub.url}/services/dashboard/api/kernels", timeout=30,
                    headers={"X-XSRFToken": c.xsrf()}).status_code == 403
    own_lab = c.s.get(f"{hub.url}/user/hub-a-vic/lab", timeout=30)
    assert own_lab.status_code in (403, 404) and "JupyterLab" not in own_lab.text
    # Someone else's running server (the analyst's) is closed to a viewer.
    analyst = hub.client()
    analyst.login_only("hub-a-ana", PASSWORD)
    if not analyst.api("GET", "/hub/api/users/hub-a-ana").json()["servers"].get("", {}).get("ready"):
        _spawn(analyst, "hub-a-ana")
    theirs = c.s.get(f"{hub.url}/user/hub-a-ana/api/kernels", timeout=30)
    assert theirs.status_code == 403


def test_a_user_of_one_tenant_cannot_log_into_another(hubs: dict[str, Hub]) -> None:
    assert hubs["hub-b"].client().login("hub-a-ana", PASSWORD).url.endswith("/hub/login?next=")
    assert hubs["hub-b"].client().login("hub-a-ana", PASSWORD).status_code == 403
    assert hubs["hub-b"].client().login("hub-b-ana", "wrong password").status_code == 403
    r = hubs["hub-b"].client().login_only("hub-b-vic", PASSWORD)
    assert r.status_code == 302 and r.headers["location"] == "/services/dashboard/"


def test_a_viewer_long_after_the_pool_kernel_started_gets_the_whole_dashboard(hubs: dict[str, Hub],
                                                                                engine: Engine) -> None:
    # The pool kernel waits for its viewer in a cell without timeout; before, that wait hit the cell
    # timeout and the next viewer got a page with no dashboard in it.
    # It also reads the data for that viewer, not when it was preheated: a supplier renamed while the
    # pool kernel waits shows under its new name.
    hub = hubs["hub-a"]
    time.sleep(10)  # the pool kernel refilled after the previous test's view gets to its wait
    with engine.begin() as conn:
        top = conn.execute(sa.text(
            "SELECT s.id, s.name FROM suppliers s JOIN tenants t ON t.id = s.tenant_id "
            "JOIN emission_entries e ON e.supplier_id = s.id WHERE t.slug = 'hub-a' "
            "GROUP BY s.id, s.name ORDER BY sum(e.kg_co2e) DESC LIMIT 1")).one()
        conn.execute(sa.text("UPDATE suppliers SET name = 'Renamed While Waiting Ltd' WHERE id = :i"), {"i": top.id})
    try:
        time.sleep(HUB_A_CELL_TIMEOUT_S + 5)
        c = hub.client()
        r = c.login("hub-a-vic", PASSWORD)
        assert r.status_code == 200 and r.url == f"{hub.url}/services/dashboard/", r.url
        assert "timed out" not in r.text and "application/vnd.jupyter.widget-view+json" in r.text
        shown = page_html(r.text)  # the first view: prepared ahead of the viewer only for unchanged data
        assert "Renamed While Waiting Ltd" in shown and top.name not in shown
        log = hub.log.read_text()
        assert "Timeout waiting for execute reply" not in log and "Failed to connect" not in log
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE suppliers SET name = :n WHERE id = :i"), {"n": top.name, "i": top.id})


def test_dashboard_renders_in_chromium(hubs: dict[str, Hub], tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    opts.page_load_strategy = "none"  # the page references CDN fonts this closed network never answers
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1400,5200", f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.get(hubs["hub-a"].url + "/hub/login")
        wait_until(lambda: driver.find_elements(By.ID, "username_input"), 30, "the login form", interval=POLL_S)
        driver.find_element(By.ID, "username_input").send_keys("hub-a-vic")
        driver.find_element(By.ID, "password_input").send_keys(PASSWORD)
        driver.find_element(By.ID, "login_submit").click()
        def charts_shown() -> bool:
            return bool(len(driver.find_elements(By.CSS_SELECTOR, "svg.s3-chart > g.marks")) >= 5
                        and driver.find_elements(By.CSS_SELECTOR, ".kpi-value"))

        wait_until(charts_shown, 60, "the dashboard's charts", interval=POLL_S)
        total = driver.find_elements(By.CSS_SELECTOR, ".kpi-value")[0].text
        assert total.endswith("t CO2e")
        # Tables read the same in the plain first view as in widgets: words left, numbers right (JupyterLab's rules
        # for rendered HTML would right-align every cell).
        aligned = driver.execute_script(
            "const c = s => getComputedStyle(document.querySelector(s)).textAlign;"
            "return [c('table.s3 td:not(.num)'), c('table.s3 td.num'), c('table.s3 th:not(.num)')]")
        assert aligned == ["left", "right", "left"], aligned
        # The first view is drawn before the controls (widgets) are: they follow once the kernel is connected.
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "select"), 60, "the controls", interval=POLL_S)
        Select(driver.find_element(By.CSS_SELECTOR, "select")).select_by_index(2)  # one category

        def total_changed() -> bool:
            try:  # the tiles are redrawn while we look
                return driver.find_elements(By.CSS_SELECTOR, ".kpi-value")[0].text not in ("", total)
            except (StaleElementReferenceException, IndexError):
                return False

        wait_until(total_changed, 30, "the headline figures to follow the category filter", interval=POLL_S)

        def one_category_charted() -> bool:
            try:  # the charts are redrawn after the tiles: one bar left in "By GHG Protocol category", and the
                # first view's chart (plain HTML) hidden by the redrawn selection
                shown = [chart for chart in driver.find_elements(By.CSS_SELECTOR, "svg.s3-chart")
                         if chart.is_displayed() and any(t.text.startswith("By GHG Protocol category") for t in
                                                         chart.find_elements(By.CSS_SELECTOR, "text.chart-title"))]
                return len(shown) == 1 and len(shown[0].find_elements(By.CSS_SELECTOR, "g.marks rect.bar")) == 1
            except StaleElementReferenceException:
                return False

        wait_until(one_category_charted, 30, "the charts to follow the category filter", interval=POLL_S)
        driver.execute_script("window.scrollTo(0, 0)")
        shot = tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        driver.quit()


def test_config_schema_refuses_a_bad_tenant_file(data_dir: Path, make_tenant: TenantFactory) -> None:
    make_tenant("hub-schema", name="Schema", plan="free")
    path = hub_settings.tenant_dir(data_dir, "hub-schema") / hub_settings.HUB_FILE
    good = path.read_text()
    for bad, message in (
        (good + "spawnr: local\n", "unknown key 'spawnr'"),
        (good.replace("port: ", "port: '8000' #", 1), "'port'"),
        (good + "dashboard_pool_size: many\n", "'dashboard_pool_size'"),
        ("- just\n- a list\n", "must be a mapping"),
    ):
        path.write_text(bad)
        with pytest.raises(ConfigurationError, match=message) as err:
            hub_settings.load(data_dir, "hub-schema")
        assert str(path) in str(err.value)
    path.write_text(good)
    r = run_cli("postgresql://unused@127.0.0.1:1/x", data_dir, "hub", "settings", "hub-schema")
    assert r.returncode == 0 and '"***"' in r.stdout


def test_apply_sets_a_bare_config(data_dir: Path, make_tenant: TenantFactory) -> None:
    make_tenant("hub-config", name="Config", plan="free")
    s = hub_settings.load(data_dir, "hub-config")
    c = hub_config.apply(Config(), s, "postgresql://admin:secret@127.0.0.1/db")
    assert c.JupyterHub.port == s.hub.port and c.Scope3Authenticator.tenant == "hub-config"
    assert c.Spawner.env_keep == ["PATH", "LANG", "LC_ALL", "TZ"]
    assert c.Spawner.environment == {"SCOPE3_TENANT_DATABASE_URL": s.database_url, "SCOPE3_TENANT": "hub-config",
                                     "SCOPE3_API_URL": f"http://127.0.0.1:{hub_config.api_port(s)}"}
    dashboard = next(sv for sv in c.JupyterHub.services if sv["name"] == "dashboard")
    assert dashboard["environment"]["SCOPE3_TENANT_DATABASE_URL"] == s.database_url_readonly
    assert "secret" not in repr(dashboard) and "secret" not in repr(c.Spawner.environment)
    assert c.JupyterHub.load_roles == [{"name": "user", "scopes": ["read:users:name!user", "read:users:groups!user"]}]
    assert sys.executable in dashboard["command"]


# --- a hostile analyst, owner and viewer; abandoned pages; a database without passwords ---------------


_PROBE_PATHS = """
import os
def probe(path, listing):
    try:
        os.listdir(path) if listing else open(path, 'rb').read(1)
        return 'open'
    except PermissionError:
        return 'denied'
    except FileNotFoundError:
        return 'missing'
"""


def test_an_analyst_reads_nothing_of_another_tenants_files(hubs: dict[str, Hub], data_dir: Path) -> None:
    """Tenant A's analyst, in their own kernel, against every path of tenant B: homes (with B's saved notebooks),
    the tenant's folder and secrets, the hub's state, the dashboard user's home, report outputs, models."""
    if hub_config.spawner_mode(hub_settings.load(data_dir, "hub-a")) != "local":
        # Servers run as the hub's own user (the embedded database keeps its socket private): no OS boundary
        # to attack, and the hub says so at every start.
        assert "OS-level isolation between analysts is OFF" in hubs["hub-a"].log.read_text()
        return
    b = hubs["hub-b"].client()
    assert b.login_only("hub-b-ana", PASSWORD).status_code == 302
    _ensure_running(b, "hub-b-ana")  # B's analyst gets a home with notebooks
    b_home = Path(pwd.getpwnam(system_username("hub-b", "hub-b-ana")).pw_dir)
    b_dashboard = Path(pwd.getpwnam(system_username("hub-b", "dashboard")).pw_dir)
    b_dir = hub_settings.tenant_dir(data_dir, "hub-b")
    targets = {
        str(b_home): True, str(b_home / "getting_started.ipynb"): False, str(b_dashboard): True,
        str(b_dir.parent): True, str(b_dir): True, str(b_dir / "hub.yaml"): False, str(b_dir / "secrets.json"): False,
        str(b_dir / "hub_secrets.json"): False, str(b_dir / "hub"): True,
        str(b_dir / "hub" / "jupyterhub.sqlite"): False, str(b_dir / "reports"): True, str(b_dir / "models"): True,
    }
    hub = hubs["hub-a"]
    c = hub.client()
    assert c.login_only("hub-a-ana", PASSWORD).status_code == 302
    _ensure_running(c, "hub-a-ana")
    token = c.api("POST", "/hub/api/users/hub-a-ana/tokens", json={"note": "probe"}).json()["token"]
    auth = {"Authorization": f"token {token}"}
    kernel_id = c.s.post(f"{hub.url}/user/hub-a-ana/api/kernels", headers=auth, json={"name": "python3"},
                         timeout=120).json()["id"]
    k = Kernel(f"ws://127.0.0.1:{hub.port}/user/hub-a-ana/api/kernels/{kernel_id}/channels", header=auth)
    try:
        code = _PROBE_PATHS + f"import json\nprint(json.dumps({{p: probe(p, l) for p, l in {targets!r}.items()}}))\n" \
            + "print(probe(os.path.expanduser('~'), True))"
        seen_b, own = k.execute(code).splitlines()
    finally:
        k.close()
    assert own == "open"  # the analyst's own home
    assert json.loads(seen_b) == dict.fromkeys(targets, "denied")


def test_an_owner_administers_their_hub_and_nothing_else(hubs: dict[str, Hub]) -> None:
    a, b = hubs["hub-a"], hubs["hub-b"]
    owner = a.client()
    assert owner.login_only("hub-a-own", PASSWORD).status_code == 302
    admin = owner.s.get(f"{a.url}/hub/admin", timeout=30)
    assert admin.status_code == 200 and "admin" in admin.text.lower()
    names = {u["name"] for u in owner.api("GET", "/hub/api/users").json()}
    assert {"hub-a-own"} <= names <= {"hub-a-own", "hub-a-ana", "hub-a-vic"} and not any("hub-b" in n for n in names)
    assert owner.api("GET", "/hub/api/users/hub-a-ana").status_code == 200
    # Starting and stopping the tenant's servers, yes; entering an analyst's server, never.
    assert owner.s.get(f"{a.url}/user/hub-a-ana/api/kernels", timeout=30).status_code in (403, 404)
    assert owner.api("GET", "/hub/api/proxy").status_code == 403
    # Another tenant's hub does not know them.
    assert b.client().login_only("hub-a-own", PASSWORD).status_code != 302
    for user in ("hub-a-ana", "hub-a-vic"):
        c = a.client()
        c.login_only(user, PASSWORD)
        assert c.s.get(f"{a.url}/hub/admin", timeout=30).status_code == 403, user
        assert c.api("GET", "/hub/api/users").status_code == 403, user


def _dashboard_voila(hub: Hub) -> psutil.Process:
    voila = [p for p in psutil.Process(hub.proc.pid).children(recursive=True)
             if "scope3lib.hub.dashboard" in _command(p)]
    assert len(voila) == 1, voila
    return voila[0]


def _command(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # gone, or a zombie not reaped yet (a culled kernel): not a live kernel
        return ""


def _is_kernel(p: psutil.Process) -> bool:
    """A live kernel process: a plain one (ipykernel's launcher) or one forked by the zygote."""
    try:
        return p.status() != psutil.STATUS_ZOMBIE and (p.name() == forkserver.KERNEL_NAME
                                                       or "ipykernel_launcher" in _command(p))
    except psutil.Error:
        return False


def _dashboard_kernels(hub: Hub) -> int:
    """Kernels the hub's dashboard service holds (pool and pages), counted as processes."""
    return sum(1 for p in _dashboard_voila(hub).children(recursive=True) if _is_kernel(p))


def _kernel_process(hub: Hub, kernel_id: str) -> psutil.Process:
    """The process of a dashboard kernel: the one bound to the Unix sockets named after it (transport ipc)."""
    for p in _dashboard_voila(hub).children(recursive=True):
        if _is_kernel(p) and any(kernel_id in str(c.laddr) for c in p.net_connections(kind="unix")):
            return p
    raise AssertionError(f"no process for kernel {kernel_id}")


def test_abandoned_dashboard_pages_are_culled_and_capped(hubs: dict[str, Hub]) -> None:
    """50 page views that never open their websocket (a plain GET, a browser closed hard): a viewer holds at
    most 2 page kernels, the hub at most 4, the others get a page saying so, and every abandoned kernel is
    shut down within the cull window, back to the preheated pool."""
    hub = hubs["hub-a"]
    wait_until(lambda: _dashboard_kernels(hub) == 1, CULL_IDLE_S + 60, "earlier pages to be culled", interval=1)
    clients = {}
    for user in ("hub-a-vic", "hub-a-own", "hub-a-ana"):
        clients[user] = hub.client()
        assert clients[user].login_only(user, PASSWORD).status_code == 302
    statuses: dict[str, list[int]] = {u: [] for u in clients}
    for i in range(50):
        user = ("hub-a-vic", "hub-a-vic", "hub-a-own", "hub-a-ana")[i % 4]
        r = clients[user].s.get(f"{hub.url}/services/dashboard/", stream=True, timeout=120)
        HubClient._read(r)  # the whole page (or the refusal), then the connection is dropped
        statuses[user].append(r.status_code)
        if r.status_code in (429, 503):
            assert r.headers["Retry-After"] == "60" and "The dashboard is busy" in r.text
    served = {u: s.count(200) for u, s in statuses.items()}
    assert served["hub-a-vic"] == 2 and 429 in statuses["hub-a-vic"], statuses  # per viewer
    assert sum(served.values()) == 4 and 503 in statuses["hub-a-ana"], statuses  # per hub
    kernels = [p for p in _dashboard_voila(hub).children(recursive=True) if _is_kernel(p)]
    assert 1 <= len(kernels) <= 1 + 4
    assert all(p.name() == forkserver.KERNEL_NAME for p in kernels)  # forked, yet culled as plain ones were
    wait_until(lambda: _dashboard_kernels(hub) == 1, CULL_IDLE_S + 30, "abandoned pages to be culled", interval=1)
    again = clients["hub-a-vic"].s.get(f"{hub.url}/services/dashboard/", stream=True, timeout=120)
    assert HubClient._read(again).status_code == 200


def test_hub_refuses_a_database_without_passwords(make_tenant: TenantFactory, database_url: str,
                                                   data_dir: Path) -> None:
    """Where local users may log in without a password (this machine's PostgreSQL trusts 127.0.0.1, as its
    facts say), a hub whose servers run as local users must not start, and must name the line to change."""
    from scope3lib.hub import machine

    tenant = make_tenant()
    _free_ports(data_dir, tenant.slug)
    settings = hub_settings.load(data_dir, tenant.slug)
    if hub_config.spawner_mode(settings) != "local":  # the embedded database: its socket is private
        assert settings.database_url.startswith("postgresql://") and "host=/" in settings.database_url
        return
    probe = ensure_system_user(system_username(tenant.slug, "dashboard"))
    if not machine.passwordless_login(database_url, probe):
        machine.check_database_requires_passwords(settings, database_url, probe)  # passwords asked: no refusal
        return
    r = subprocess.run([*SCOPE3, "hub", "start", tenant.slug, "--grant-access"], env=scope3_env(database_url, data_dir),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error: PostgreSQL lets local users log in as") and "without a password" in line
    assert "pg_hba.conf line" in line and "scram-sha-256" in line and "allow_passwordless_database" in line

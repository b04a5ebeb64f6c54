"""What the tests share: the CLI in a subprocess, tenants with data, waiting, meter readings, brokers.

Fixtures live in ``conftest.py`` (``make_tenant`` and its module and session variants are thin wrappers
of :class:`TenantFactory`); everything a fixture or a test calls lives here, so that no test file writes
its own copy and none imports from ``conftest``.

Tenants are created and filled through the library's own functions (``tenancy.create_tenant``,
``demo.load``, ``tenancy.add_user``, ``devices.add_device``), never by SQL the library would not run.
The exceptions are readings and rejects, which only the ingest service writes: :func:`write_readings`
(and test_isolation for its one reject) run the statements it runs.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import db, demo, tenancy
from scope3lib.accounting.calculation import INPUT_COLUMNS
from scope3lib.demo import DemoData, DemoProfile
from scope3lib.demo.synthetic import demo_data, synthetic_suppliers
from scope3lib.hub import settings as hub_settings
from scope3lib.meters import devices
from scope3lib.meters.broker import (
    INGEST_ACCOUNT,
    MosquittoFiles,
    MqttParams,
    free_port,
    port_open,
    write_broker_config,
)
from scope3lib.meters.devices import DeviceCredentials
from scope3lib.tenancy import TenantCredentials

if TYPE_CHECKING:
    from click.testing import Result

    from ingest_service import IngestService

__all__ = [
    "INGEST", "PASSWORD", "REPO", "SCOPE3", "ApiServer", "Mosquitto", "SecureMosquitto", "TenantFactory",
    "TenantFixture",
    "activity_frame", "activity_row", "count_readings", "inventory_data", "invoke_cli",
    "mosquitto_bin", "new_slug", "rfc3339", "run_cli", "scope3_env", "start_ingest_service",
    "wait_until", "write_readings",
]

REPO = Path(__file__).resolve().parents[1]
SCOPE3 = [sys.executable, "-m", "scope3lib"]
INGEST = [sys.executable, "-m", "ingest_service"]
PASSWORD = "password-123"  # for users the tests add (the platform wants 8 characters or more)

T = TypeVar("T")


# --- the CLI and its environment -------------------------------------------------------------------


def scope3_env(database_url: str | None, data_dir: Path, **extra: str) -> dict[str, str]:
    """This process's environment without any ``SCOPE3_`` setting, then the admin URL (unless None), the
    data directory and ``extra``: what a command run by an operator sees, and nothing of the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPE3_")}
    if database_url is not None:
        env["SCOPE3_DATABASE_URL"] = database_url
    env.update(SCOPE3_DATA_DIR=str(data_dir), **extra)
    return env


def run_cli(database_url: str, data_dir: Path, *args: str, input: str | None = None,
            env: Mapping[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``scope3 ARGS`` in its own process against ``database_url``; ``env`` adds settings (``SCOPE3_...``)."""
    return subprocess.run([*SCOPE3, *args], input=input, capture_output=True, text=True, timeout=timeout,
                          env=scope3_env(database_url, data_dir, **(env or {})))


def invoke_cli(database_url: str, data_dir: Path, *args: str) -> Result:
    """The same commands in this process (click's runner): no interpreter start-up, for tests that run many."""
    from click.testing import CliRunner

    from scope3lib.cli import main

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SCOPE3_")}
    env.update(SCOPE3_DATABASE_URL=database_url, SCOPE3_DATA_DIR=str(data_dir))
    return CliRunner().invoke(main, list(args), env=env)


# --- waiting ---------------------------------------------------------------------------------------


def wait_until(check: Callable[[], T], timeout: float = 15, what: str = "the condition",
               interval: float = 0.1) -> T:
    """Call ``check`` until it returns something true and return that; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def rfc3339(t: dt.datetime, timespec: str = "auto") -> str:
    """A UTC time as meters send it: ``2026-01-01T00:00:00Z``."""
    return t.isoformat(timespec=timespec).replace("+00:00", "Z")


# --- rows ------------------------------------------------------------------------------------------


def activity_row(**values: object) -> dict[str, object]:
    """One activity row as an import file holds it: every input column, blank unless given."""
    return {**dict.fromkeys(INPUT_COLUMNS, ""), **values}


def activity_frame(rows: Iterable[Mapping[str, object]]) -> pd.DataFrame:
    """Activity rows as ``inventory.import_activity`` and ``scope3 calc`` take them (blanks filled in)."""
    return pd.DataFrame([activity_row(**r) for r in rows])


def inventory_data(suppliers: Sequence[Mapping[str, object]], entries: Sequence[Mapping[str, object]],
                   meters: Sequence[Mapping[str, object]] | None = None) -> DemoData:
    """A hand-written inventory in the form ``demo.load`` writes into a tenant.

    ``suppliers``: columns of ``suppliers`` (name, naics_code, country, region, annual_spend, ...);
    ``entries``: columns of ``emission_entries`` with ``supplier`` naming one of them (or None);
    ``meters``: device_key, supplier (or None), grid_region, category. ``demo.load`` writes at least one
    meter, so without ``meters`` the tenant gets ``meter-001`` on the first supplier.
    """
    if meters is None:
        first = suppliers[0]
        meters = [{"device_key": "meter-001", "supplier": first["name"],
                   "grid_region": first.get("region") or "CAMX", "category": 1}]
    if not meters:
        raise ValueError("demo.load writes at least one meter")
    return DemoData(suppliers=pd.DataFrame(list(suppliers)), entries=pd.DataFrame(list(entries)),
                    devices=pd.DataFrame(list(meters)), truth=pd.DataFrame())


def write_readings(engine: Engine, slug: str, device: str, rows: Iterable[tuple[dt.datetime, float]]) -> None:
    """Store meter readings (time, kWh) as the ingest service does (admin connection)."""
    with engine.begin() as c:
        dev_id, tid = c.execute(sa.text(
            "SELECT d.id, d.tenant_id FROM devices d JOIN tenants t ON t.id = d.tenant_id "
            "WHERE t.slug = :s AND d.device_key = :k"), {"s": slug, "k": device}).one()
        c.execute(sa.text("INSERT INTO readings (device_id, ts, tenant_id, kwh) VALUES (:d, :ts, :t, :kwh)"),
                  [{"d": dev_id, "ts": ts, "t": tid, "kwh": kwh} for ts, kwh in rows])


def count_readings(engine: Engine, device: str | None = None, *, slug: str | None = None) -> int:
    """Readings stored for a meter (by its key), or for every meter of tenant ``slug``."""
    if (device is None) == (slug is None):
        raise ValueError("count the readings of a device or of a tenant")
    sql = ("SELECT count(*) FROM readings r JOIN devices d ON d.id = r.device_id WHERE d.device_key = :k"
           if device is not None else
           "SELECT count(*) FROM readings r JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = :s")
    with engine.connect() as c:
        return int(c.scalar(sa.text(sql), {"k": device, "s": slug}) or 0)


# --- tenants ---------------------------------------------------------------------------------------


def new_slug(prefix: str = "t") -> str:
    """A tenant slug no other test uses."""
    return f"{prefix}{secrets.token_hex(4)}"


@dataclass
class TenantFixture:
    """A tenant made for a test: its credentials, engines on its own two roles, and what was put in it.

    ``engine`` logs in with the tenant's read-write role and ``readonly`` with its read-only role (row-level
    security limits both to the tenant); the factory disposes them at teardown. The credentials' fields
    (``slug``, ``database_url``, ...) are attributes of the fixture too.
    """

    credentials: TenantCredentials
    tenant_id: int
    engine: Engine
    readonly: Engine
    admin: Engine = field(repr=False)
    data_dir: Path = field(repr=False)
    data: DemoData | None = None  # what was loaded, with its ground truth
    supplier_ids: dict[str, int] = field(default_factory=dict)  # by name
    entry_ids: list[int] = field(default_factory=list)  # the entries loaded, in id order
    device_ids: dict[str, int] = field(default_factory=dict)  # by device key
    meters: dict[str, DeviceCredentials] = field(default_factory=dict)  # added with add_device, by key
    users: dict[str, str] = field(default_factory=dict)  # username -> role

    @property
    def slug(self) -> str:
        return self.credentials.slug

    @property
    def name(self) -> str:
        return self.credentials.name

    @property
    def plan(self) -> str:
        return self.credentials.plan

    @property
    def database_url(self) -> str:
        return self.credentials.database_url

    @property
    def database_url_readonly(self) -> str:
        return self.credentials.database_url_readonly

    @property
    def role(self) -> str:
        return self.credentials.role

    @property
    def role_readonly(self) -> str:
        return self.credentials.role_readonly

    def load(self, data: DemoData) -> DemoData:
        """Write suppliers, their entries and meters with ``demo.load`` (the tenant must have no supplier)."""
        with self.admin.connect() as c:
            last = int(c.scalar(sa.text("SELECT coalesce(max(id), 0) FROM emission_entries WHERE tenant_id = :t"),
                                {"t": self.tenant_id}) or 0)
        demo.load(self.admin, self.slug, data)
        with self.admin.connect() as c:
            t = {"t": self.tenant_id}
            self.supplier_ids = dict(c.execute(sa.text("SELECT name, id FROM suppliers WHERE tenant_id = :t"), t).all())
            self.device_ids = dict(c.execute(sa.text("SELECT device_key, id FROM devices WHERE tenant_id = :t"),
                                             t).all())
            self.entry_ids += c.scalars(sa.text("SELECT id FROM emission_entries WHERE tenant_id = :t AND id > :i "
                                                "ORDER BY id"), {**t, "i": last}).all()
        self.data = data
        return data

    def load_demo(self, *, suppliers: int | None = None, devices: int | None = None, seed: int | None = None,
                  profile: DemoProfile | None = None, synthetic: bool = False) -> DemoData:
        """Load generated data: ``demo.generate`` (``profile``, or ``suppliers`` with ``seed`` and ``devices``;
        None keeps the profile's own), or with ``synthetic`` the suppliers of ``demo.synthetic``, whose truth
        an estimator can learn (one meter)."""
        if synthetic:
            if profile is not None or devices is not None or not suppliers:
                raise ValueError("synthetic data takes suppliers and seed only")
            return self.load(demo_data(synthetic_suppliers(suppliers, seed=seed or 0)))
        if profile is None:
            if not suppliers:
                raise ValueError("give the number of suppliers or a demo profile")
            profile = DemoProfile(self.slug, self.name, self.plan, seed=seed or 0, suppliers=suppliers)
        changes = {"suppliers": suppliers, "devices": devices, "seed": seed}
        profile = replace(profile, slug=self.slug, **{k: v for k, v in changes.items() if v is not None})
        if profile.devices < 1:
            raise ValueError("demo.load writes at least one meter: devices must be 1 or more")
        return self.load(demo.generate(profile))

    def add_device(self, key: str | None = None, region: str = "CAMX", *, prefix: str = "m",
                   **kwargs: Any) -> DeviceCredentials:
        """Register a meter with ``devices.add_device`` (a fresh key unless given) and keep its credentials."""
        creds = devices.add_device(self.admin, self.slug, key or f"{prefix}-{secrets.token_hex(3)}", region,
                                   **kwargs)
        self.meters[creds.device] = creds
        with self.admin.connect() as c:
            self.device_ids[creds.device] = int(c.scalar(sa.text(
                "SELECT id FROM devices WHERE tenant_id = :t AND device_key = :k"),
                {"t": self.tenant_id, "k": creds.device}))
        return creds

    def add_user(self, username: str, role: str = "member", password: str = PASSWORD) -> str:
        """Make ``username`` a member of the tenant with ``tenancy.add_user``."""
        tenancy.add_user(self.admin, self.slug, username, role, password)
        self.users[username] = role
        return username

    def close(self) -> None:
        self.engine.dispose()
        self.readonly.dispose()


class TenantFactory:
    """Makes tenants with data (``factory(...)``) and disposes their engines on ``close``.

    The fixtures ``make_tenant``, ``make_module_tenant`` and ``make_session_tenant`` are one each per test,
    module and session; a test with a database of its own makes a factory for it directly.
    """

    def __init__(self, engine: Engine, data_dir: Path) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.made: list[TenantFixture] = []

    def __call__(self, slug: str | None = None, *, name: str | None = None, plan: str = "enterprise",
                 suppliers: int = 0, devices: int | None = None, seed: int | None = None,
                 demo_profile: DemoProfile | None = None, synthetic: bool = False, data: DemoData | None = None,
                 meters: int | Sequence[str] = 0, meter_region: str = "CAMX",
                 users: Mapping[str, str] | None = None, password: str = PASSWORD) -> TenantFixture:
        """A new tenant (a fresh slug unless given; name ``slug.title()``), then, in this order:

        * data, one of: ``data`` as given; ``demo_profile`` (its slug replaced, ``suppliers``, ``devices``
          and ``seed`` overriding its own); ``suppliers`` generated with ``seed`` (``devices`` meters, 8 if
          None), or with ``synthetic`` by ``demo.synthetic`` (one meter). Nothing when none is given;
        * ``meters``: that many meters with fresh keys, or these keys, registered in ``meter_region``;
        * ``users``: username -> role, all with ``password``.
        """
        if sum((data is not None, demo_profile is not None or bool(suppliers))) > 1:
            raise ValueError("give data or what to generate, not both")
        slug = slug or new_slug()
        creds = tenancy.create_tenant(self.engine, self.data_dir, slug, name or slug.title(), plan)
        hub_settings.ensure(self.engine, self.data_dir, slug)  # as `scope3 tenant create` does
        with self.engine.connect() as c:
            tid = tenancy.tenant_id(c, slug)
        tenant = TenantFixture(credentials=creds, tenant_id=tid, engine=db.create_engine(creds.database_url),
                               readonly=db.create_engine(creds.database_url_readonly), admin=self.engine,
                               data_dir=self.data_dir)
        self.made.append(tenant)
        if data is not None:
            tenant.load(data)
        elif demo_profile is not None or suppliers:
            tenant.load_demo(suppliers=suppliers or None, devices=devices, seed=seed, profile=demo_profile,
                             synthetic=synthetic)
        elif devices or synthetic:
            raise ValueError("devices and synthetic come with generated suppliers")
        keys = [None] * meters if isinstance(meters, int) else list(meters)
        for key in keys:
            tenant.add_device(key, meter_region)
        for username, role in (users or {}).items():
            tenant.add_user(username, role, password)
        return tenant

    def close(self) -> None:
        for tenant in self.made:
            tenant.close()

    def __enter__(self) -> TenantFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- ingest and brokers ----------------------------------------------------------------------------


def start_ingest_service(ingest_url: str, params: MqttParams, *, client_id: str | None = None,
                         prefix: str = "ingest", **kwargs: Any) -> IngestService:
    """An ingest service in this process, connected and subscribed; the caller stops it."""
    from ingest_service import IngestService

    svc = IngestService(ingest_url, params, client_id=client_id or f"{prefix}-{secrets.token_hex(4)}", **kwargs)
    svc.start()
    try:
        assert svc.wait_connected(10)
    except BaseException:
        svc.stop(timeout=5)
        raise
    time.sleep(0.3)  # let the SUBACK arrive before anything is published
    return svc


def mosquitto_bin() -> str:
    """The Mosquitto binary, or "" where it is not installed."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin") or ""


def mosquitto_config(port: int, data: Path, extra: str = "") -> str:
    return f"""\
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {data}/
autosave_interval 1
# Never drop QoS 1 messages for a subscriber that falls behind (docs/design.md, measured facts);
# bound memory by bytes instead.
max_queued_messages 0
max_queued_bytes 268435456
max_inflight_messages 0
log_dest stderr
log_type error
log_type warning
{extra}"""


class Mosquitto:
    """Mosquitto on a free port, anonymous, with persistence, in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        (workdir / "data").mkdir(exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(mosquitto_config(self.port, workdir / "data"))

    @property
    def params(self) -> MqttParams:
        return MqttParams(host="127.0.0.1", port=self.port, protocol=5)

    def start(self) -> None:
        log = open(self.workdir / "mosquitto.log", "ab")  # noqa: SIM115 - kept open for the process
        self.proc = subprocess.Popen([mosquitto_bin(), "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {(self.workdir / 'mosquitto.log').read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class SecureMosquitto(Mosquitto):
    """Mosquitto as production runs it: the configuration, password file and ACL of `scope3 broker config`.

    Anonymous access is off; ``params`` log in as the ingest service; ``files`` is what provisioning
    takes (``broker=``) to rewrite the accounts and reload this broker.
    """

    def __init__(self, workdir: Path, engine: Engine) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc = None
        # user: Mosquitto started as root drops to this account, which must read the test's files.
        result = write_broker_config(engine, workdir, port=self.port, user=getpass.getuser(),
                                     max_queued_bytes=256 << 20, rotate_ingest=True)
        assert result.ingest_url is not None
        self.conf = result.files.conf
        self.files: MosquittoFiles = result.files
        self.ingest_password = result.ingest_url.split("@")[0].rsplit(":", 1)[1]

    @property
    def params(self) -> MqttParams:
        return MqttParams("127.0.0.1", self.port, INGEST_ACCOUNT, self.ingest_password, protocol=5)

    def kill(self) -> None:
        """Stop at once (SIGKILL): what persistence saved is all that survives."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


# --- the integration API ---------------------------------------------------------------------------


class ApiServer:
    """A tenant's API (``scope3lib.api``) served by uvicorn over real HTTP in a thread of this process."""

    def __init__(self, tenant: TenantFixture, *, prefix: str = "", pact_allow_http: bool = False) -> None:
        import uvicorn

        from scope3lib.api.app import ApiConfig, create_app

        config = ApiConfig(tenant.slug, tenant.database_url, tenant.database_url_readonly, tenant.data_dir, prefix,
                           pact_allow_http=pact_allow_http)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}{prefix}"
        self.app = create_app(config)
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     access_log=False))
        self._thread = threading.Thread(target=self._server.run, name=f"api-{tenant.slug}", daemon=True)

    def start(self) -> ApiServer:
        self._thread.start()
        wait_until(lambda: self._server.started, 15, "the API to start")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

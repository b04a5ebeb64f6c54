"""Fixtures that start real services: PostgreSQL and Mosquitto.

The database under test is ``SCOPE3_TEST_DATABASE_URL`` (an admin URL; CI points it at the local
PostgreSQL) or, when unset, an embedded PostgreSQL started in a temporary directory. Either way the
tests run in a database of their own, created here and dropped with its roles afterwards.
Mosquitto is started on a free port with a configuration written here; where the ``mosquitto``
binary is missing, the embedded amqtt broker stands in so the suite still runs against a real broker.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from scope3lib import db, schema, tenancy
from scope3lib.meters.broker import (
    INGEST_ACCOUNT,
    EmbeddedBroker,
    MosquittoFiles,
    MqttParams,
    free_port,
    port_open,
    write_broker_config,
)
from scope3lib.tenancy import TenantCredentials

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def server_admin_url() -> Iterator[str]:
    """Admin URL of a PostgreSQL server (not yet of the test database)."""
    url = os.environ.get("SCOPE3_TEST_DATABASE_URL")
    if url:
        yield db.libpq_url(url)
        return
    # Not under pytest's tmp_path: pytest makes those 0700 for root, and the embedded server runs
    # as its own system user when the tests run as root.
    where = Path(tempfile.mkdtemp(prefix="scope3-test-pg-"))
    yield db.embedded_postgres(where)


def _create_database(server_admin_url: str) -> tuple[str, str]:
    name = f"s3t_{secrets.token_hex(4)}"
    with db.create_engine(server_admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return name, db.libpq_url(make_url(db.sqlalchemy_url(server_admin_url)).set(database=name))


def _drop_database(server_admin_url: str, name: str) -> None:
    prefix = schema.prefix_for_database(name)
    with db.create_engine(server_admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        roles = conn.scalars(sa.text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                             {"p": prefix + "_"}).all()
        for role in roles:
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


@pytest.fixture(scope="session")
def database_url(server_admin_url: str) -> Iterator[str]:
    """Admin URL of a freshly migrated database for this test session."""
    name, url = _create_database(server_admin_url)
    engine = db.create_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    yield url
    _drop_database(server_admin_url, name)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    e = db.create_engine(database_url)
    yield e
    e.dispose()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


def _tenant(engine: Engine, data_dir: Path, slug: str, plan: str = "enterprise") -> TenantCredentials:
    return tenancy.create_tenant(engine, data_dir, slug, slug.title(), plan)


@pytest.fixture(scope="session")
def tenant_a(engine: Engine, data_dir: Path) -> TenantCredentials:
    return _tenant(engine, data_dir, "alpha")


@pytest.fixture(scope="session")
def tenant_b(engine: Engine, data_dir: Path) -> TenantCredentials:
    return _tenant(engine, data_dir, "beta")


@pytest.fixture
def new_slug() -> str:
    return f"t{secrets.token_hex(4)}"


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
        self.proc = subprocess.Popen([_mosquitto_bin(), "-c", str(self.conf)], stdout=log, stderr=log)
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


def _mosquitto_bin() -> str:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin") or ""


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttParams]:
    """A real MQTT broker for the session: Mosquitto, or embedded amqtt if Mosquitto is not installed."""
    if _mosquitto_bin():
        m = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
        m.start()
        yield m.params
        m.stop()
    else:  # pragma: no cover - CI installs mosquitto
        print("mosquitto not installed: using the embedded amqtt broker")
        b = EmbeddedBroker().start()
        yield b.params
        b.stop()


@pytest.fixture(scope="session")
def ingest_url(engine: Engine, data_dir: Path) -> str:
    return tenancy.ingest_database_url(engine, data_dir)


def scope3_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPE3_")}
    env.update(SCOPE3_DATABASE_URL=database_url, SCOPE3_DATA_DIR=str(data_dir), **extra)
    return env


SCOPE3 = [sys.executable, "-m", "scope3lib"]


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


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[SecureMosquitto]:
    """A real Mosquitto with per-device accounts and ACL from the test database, anonymous access off."""
    if not _mosquitto_bin():
        raise RuntimeError("the secure_broker fixture needs Mosquitto 2.0+: apt-get install mosquitto")
    m = SecureMosquitto(tmp_path_factory.mktemp("mosquitto-secure"), engine)
    m.start()
    yield m
    m.stop()


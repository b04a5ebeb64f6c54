"""Fixtures that start real services (PostgreSQL and Mosquitto) and make tenants with data.

The database under test is ``SCOPE3_TEST_DATABASE_URL`` (an admin URL; CI points it at the local
PostgreSQL) or, when unset, an embedded PostgreSQL started in a temporary directory. Either way the
tests run in a database of their own, created here and dropped with its roles afterwards.
Mosquitto is started on a free port with a configuration written here; where the ``mosquitto``
binary is missing, the embedded amqtt broker stands in so the suite still runs against a real broker.
Tenants come from one factory, ``make_tenant`` (per test; ``make_module_tenant`` and
``make_session_tenant`` where tests share one); what the fixtures and tests call is in ``helpers.py``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from scope3lib import db, schema, tenancy
from scope3lib.meters.broker import EmbeddedBroker, MqttParams
from tests import helpers
from tests.helpers import Mosquitto, SecureMosquitto, TenantFactory, TenantFixture, mosquitto_bin


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
def data_dir() -> Path:
    """The platform's data directory for the session. Not under pytest's tmp_path, which it makes 0700 for
    root: a tenant's reports service, running as its own system user, must pass through to its folder."""
    d = Path(tempfile.mkdtemp(prefix="scope3-test-data-"))
    d.chmod(0o711)
    return d


@pytest.fixture
def make_tenant(engine: Engine, data_dir: Path) -> Iterator[TenantFactory]:
    """``make_tenant(slug=None, *, plan="enterprise", suppliers=0, devices=None, seed=None, demo_profile=None,
    synthetic=False, data=None, meters=0, users=None, ...) -> TenantFixture``: a new tenant for this test,
    filled through the library (see ``helpers.TenantFactory``); its engines are disposed after the test."""
    with TenantFactory(engine, data_dir) as factory:
        yield factory


@pytest.fixture(scope="module")
def make_module_tenant(engine: Engine, data_dir: Path) -> Iterator[TenantFactory]:
    """``make_tenant`` for the module-scoped fixtures of a test module that share a tenant."""
    with TenantFactory(engine, data_dir) as factory:
        yield factory


@pytest.fixture(scope="session")
def make_session_tenant(engine: Engine, data_dir: Path) -> Iterator[TenantFactory]:
    """``make_tenant`` for tenants the whole session shares (``tenant_a``, ``tenant_b``)."""
    with TenantFactory(engine, data_dir) as factory:
        yield factory


@pytest.fixture(scope="session")
def tenant_a(make_session_tenant: TenantFactory) -> TenantFixture:
    """Tenant ``alpha``, empty when created; tests of the whole session add meters and readings to it."""
    return make_session_tenant("alpha")


@pytest.fixture(scope="session")
def tenant_b(make_session_tenant: TenantFactory) -> TenantFixture:
    """Tenant ``beta``: the other tenant, for isolation."""
    return make_session_tenant("beta")


@pytest.fixture
def new_slug() -> str:
    return helpers.new_slug()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MqttParams]:
    """A real MQTT broker for the session: Mosquitto, or embedded amqtt if Mosquitto is not installed."""
    if mosquitto_bin():
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


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[SecureMosquitto]:
    """A real Mosquitto with per-device accounts and ACL from the test database, anonymous access off."""
    if not mosquitto_bin():
        raise RuntimeError("the secure_broker fixture needs Mosquitto 2.0+: apt-get install mosquitto")
    m = SecureMosquitto(tmp_path_factory.mktemp("mosquitto-secure"), engine)
    m.start()
    yield m
    m.stop()


"""The data model: SQLAlchemy 2 typed models of every table.

Every tenant-owned table carries ``tenant_id``; row-level security (see ``tenancy.py`` and the
migrations) limits each tenant role to its own rows. Schema changes go through Alembic migrations
in ``scope3lib/migrations``; these models mirror them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .categories import DataSource, Method


class Plan(StrEnum):
    FREE = "free"
    STARTER = "starter"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class Role(StrEnum):
    """A user's role in a tenant: owner and admin run the hub, member analyses, viewer reads dashboards."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


def _check_in(column: str, values: type[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Installation(Base):
    """One row: facts about this platform database that SQL and Python both need."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    # Prefix of every PostgreSQL role of this database (role names are cluster-wide); see schema.py.
    role_prefix: Mapped[str] = mapped_column(String(20))


class Tenant(Base):
    __tablename__ = "tenants"
    __table_args__ = (CheckConstraint(_check_in("plan", Plan), name="plan"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    plan: Mapped[str] = mapped_column(String(16), default=Plan.FREE.value)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TenantRole(Base):
    """The PostgreSQL login roles of a tenant. Row-level security derives the tenant from this map."""

    __tablename__ = "tenant_roles"
    __table_args__ = (CheckConstraint("access IN ('rw', 'ro')", name="access"),)

    role_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    access: Mapped[str] = mapped_column(String(2))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # argon2id (argon2-cffi); never granted to tenant roles.
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(_check_in("role", Role), name="role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))


class Supplier(Base):
    __tablename__ = "suppliers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_suppliers_tenant_name"),
        # Target of the composite foreign keys that keep references inside one tenant.
        UniqueConstraint("tenant_id", "id", name="uq_suppliers_tenant_id_id"),
        CheckConstraint("annual_spend IS NULL OR annual_spend >= 0", name="spend_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    naics_code: Mapped[str | None] = mapped_column(String(6))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    region: Mapped[str | None] = mapped_column(Text)  # e.g. an eGRID subregion or a state
    annual_spend: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    spend_currency: Mapped[str | None] = mapped_column(String(3))  # ISO 4217
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EmissionEntry(Base):
    """One line of the inventory: activity or spend, the factor applied, and the result in kg CO2e."""

    __tablename__ = "emission_entries"
    __table_args__ = (
        CheckConstraint("category BETWEEN 1 AND 15", name="category"),
        CheckConstraint(_check_in("method", Method), name="method"),
        CheckConstraint(_check_in("data_source", DataSource), name="data_source"),
        CheckConstraint("data_quality BETWEEN 1 AND 5", name="data_quality"),
        CheckConstraint("period_end >= period_start", name="period"),
        Index("ix_emission_entries_tenant_period", "tenant_id", "period_start"),
        Index("ix_emission_entries_supplier", "supplier_id"),
        Index("ix_emission_entries_tenant_id_id", "tenant_id", "id"),  # the API's cursor order (migration 0008)
        # Composite keys: foreign keys are checked without row-level security, so a plain
        # supplier_id could point at (and pin) another tenant's supplier.
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_emission_entries_supplier", ondelete="RESTRICT"),
        ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"],
                             name="fk_emission_entries_device", ondelete="RESTRICT"),
        # One meter entry per device and day, so the daily rollup upserts (migration 0003).
        Index("uq_emission_entries_device_day", "tenant_id", "device_id", "period_start", unique=True,
              postgresql_where=text("data_source = 'iot' AND device_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    category: Mapped[int] = mapped_column(SmallInteger)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(24))
    supplier_id: Mapped[int | None] = mapped_column(BigInteger)
    device_id: Mapped[int | None] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(Text)
    activity_quantity: Mapped[float | None] = mapped_column(Double)
    activity_unit: Mapped[str | None] = mapped_column(Text)
    spend: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    spend_currency: Mapped[str | None] = mapped_column(String(3))
    spend_year: Mapped[int | None] = mapped_column(SmallInteger)
    # The factor reference: dataset, its version and the factor's key within it.
    factor_source: Mapped[str | None] = mapped_column(Text)
    factor_version: Mapped[str | None] = mapped_column(Text)
    factor_key: Mapped[str | None] = mapped_column(Text)
    factor_value: Mapped[float | None] = mapped_column(Double)  # kg CO2e per factor unit, as applied
    factor_unit: Mapped[str | None] = mapped_column(Text)
    kg_co2e: Mapped[float] = mapped_column(Double)
    data_source: Mapped[str] = mapped_column(String(8))
    data_quality: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "device_key", name="uq_devices_tenant_key"),
        UniqueConstraint("tenant_id", "id", name="uq_devices_tenant_id_id"),
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_devices_supplier", ondelete="SET NULL (supplier_id)"),
        CheckConstraint("category BETWEEN 1 AND 15", name="category"),
        CheckConstraint("expected_interval_s > 0", name="interval"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    device_key: Mapped[str] = mapped_column(String(64))
    supplier_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_region: Mapped[str] = mapped_column(Text)
    # GHG Protocol category the device's energy is reported under (1: a supplier's site by default).
    category: Mapped[int] = mapped_column(SmallInteger, default=1)
    expected_interval_s: Mapped[int] = mapped_column(default=60)
    # The MQTT credential, hashed in Mosquitto's PBKDF2-SHA512 format so the broker's password
    # file can be written from this table; never granted to tenant roles.
    credential_hash: Mapped[str] = mapped_column(Text)
    last_seen: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the device was removed but kept for its emission entries (migration 0003).
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reading(Base):
    __tablename__ = "readings"
    __table_args__ = (
        CheckConstraint("kwh >= 0", name="kwh_nonnegative"),
        Index("ix_readings_tenant_ts", "tenant_id", "ts"),
        ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"],
                             name="fk_readings_device", ondelete="CASCADE"),
    )

    device_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    # No foreign key of its own (migration 0003): fk_readings_device already pins the tenant.
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    kwh: Mapped[float] = mapped_column(Double)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reject(Base):
    """A meter message the ingest service refused, kept with its raw payload and the reason."""

    __tablename__ = "rejects"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    topic: Mapped[str] = mapped_column(Text)
    # Set when the topic names a known tenant, so that tenant can see its own rejects.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(Text)


# Tables whose rows belong to one tenant; each has row-level security (migration 0001).
TENANT_TABLES = ("suppliers", "emission_entries", "devices", "readings", "rejects", "memberships")


# --- Factor library and reporting periods (migration 0002) -----------------------------------------


class StoredFactorDataset(Base):
    """One release of a factor set (official import or the built-in curated subset). Public reference data."""

    __tablename__ = "factor_datasets"
    __table_args__ = (UniqueConstraint("source", "version", name="uq_factor_datasets_source_version"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(Text)  # "epa-useeio", "desnz", "egrid", "ember"
    version: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    publisher: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)
    citation: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))  # of the official file; None for the built-in set
    builtin: Mapped[bool] = mapped_column(default=False)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Factor(Base):
    """kg CO2e per unit of activity (kWh, tonne.km, USD_2022...) in one dataset."""

    __tablename__ = "factors"
    __table_args__ = (
        UniqueConstraint("dataset_id", "factor_key", "region", "year", name="uq_factors_dataset_key_region_year"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("factor_datasets.id", ondelete="CASCADE"))
    factor_key: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text)
    year: Mapped[int] = mapped_column(SmallInteger)
    kg_co2e_per_unit: Mapped[float] = mapped_column(Double)
    kg_co2_per_unit: Mapped[float | None] = mapped_column(Double)
    kg_ch4_per_unit: Mapped[float | None] = mapped_column(Double)
    kg_n2o_per_unit: Mapped[float | None] = mapped_column(Double)
    gwp: Mapped[str] = mapped_column(Text)
    scope: Mapped[int | None] = mapped_column(SmallInteger)
    category_hint: Mapped[int | None] = mapped_column(SmallInteger)
    citation: Mapped[str | None] = mapped_column(Text)  # per-factor citation of built-in values


class Period(Base):
    """A tenant's reporting period; closing it freezes its emission entries (trigger in migration 0002)."""

    __tablename__ = "periods"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("period_end >= period_start", name="dates"),
        UniqueConstraint("tenant_id", "label", name="uq_periods_tenant_label"),
        UniqueConstraint("tenant_id", "id", name="uq_periods_tenant_id_id"),
        Index("ix_periods_tenant_start", "tenant_id", "period_start"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(Text)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    is_base_year: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(8), default="open")
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PeriodRecalculation(Base):
    """Audit row of an explicit recalculation of a closed period with a new factor dataset."""

    __tablename__ = "period_recalculations"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "period_id"], ["periods.tenant_id", "periods.id"],
                             name="fk_period_recalculations_period", ondelete="CASCADE"),
        Index("ix_period_recalculations_period", "period_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(BigInteger)
    period_id: Mapped[int] = mapped_column(BigInteger)
    txid: Mapped[int] = mapped_column(BigInteger)
    factor_source: Mapped[str] = mapped_column(Text)
    factor_version: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    report: Mapped[dict[str, object]] = mapped_column(JSONB)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- Broker service accounts (migration 0003) ------------------------------------------------------


class BrokerAccount(Base):
    """An MQTT account of a platform service (the ingest service), hashed in Mosquitto's ``$7$`` format."""

    __tablename__ = "broker_accounts"
    __table_args__ = (CheckConstraint("role IN ('ingest')", name="role"),)

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    credential_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- Tamper-evident ledger (migration 0004) --------------------------------------------------------
# Written only by PostgreSQL: the ledger_append trigger appends leaves, the admin stores keys and
# checkpoints; triggers refuse UPDATE, DELETE and TRUNCATE of all four for every role.


class LedgerHead(Base):
    """How many leaves a tenant's log holds; locked by each append so indices stay gap-free."""

    __tablename__ = "ledger_heads"
    __table_args__ = (CheckConstraint("size >= 0", name="size"),)

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class LedgerLeaf(Base):
    """One change to an emission entry; its bytes are ``ledger_leaf_data(...)`` (see scope3lib.ledger.leaf_data)."""

    __tablename__ = "ledger_leaves"
    __table_args__ = (
        CheckConstraint("leaf_index >= 0", name="leaf_index"),
        CheckConstraint("event IN ('create', 'correct', 'recalculate', 'delete')", name="event"),
        CheckConstraint("octet_length(leaf_hash) = 32", name="leaf_hash"),
        Index("ix_ledger_leaves_entry", "tenant_id", "entry_id", "leaf_index"),
    )

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    leaf_index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(Text)  # the PostgreSQL login role (session_user)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    entry: Mapped[str] = mapped_column(Text)  # canonical JSON of the entry after the change (before, for a delete)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256(0x00 || leaf bytes), as appended


class LedgerKey(Base):
    """A tenant's checkpoint-signing public key (Ed25519); the private key is a file, never in the database."""

    __tablename__ = "ledger_keys"
    __table_args__ = (CheckConstraint("octet_length(public_key) = 32", name="public_key"),)

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(8), primary_key=True)  # C2SP signed-note key ID, hex
    key_name: Mapped[str] = mapped_column(Text)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LedgerCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of a tenant's log."""

    __tablename__ = "ledger_checkpoints"
    __table_args__ = (
        CheckConstraint("tree_size >= 0", name="tree_size"),
        ForeignKeyConstraint(["tenant_id", "key_id"], ["ledger_keys.tenant_id", "ledger_keys.key_id"],
                             name="fk_ledger_checkpoints_key"),
        Index("ix_ledger_checkpoints_tenant", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    signed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)


LEDGER_TABLES = ("ledger_heads", "ledger_leaves", "ledger_keys", "ledger_checkpoints")


class ReportRun(Base):
    """One papermill run of a report for a tenant (scheduled or manual), with where its outputs went."""

    __tablename__ = "report_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("trigger IN ('schedule', 'manual')", name="trigger"),
        Index("ix_report_runs_tenant_report", "tenant_id", "report", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    report: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16))
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    attempt: Mapped[int] = mapped_column(SmallInteger)
    parameters: Mapped[dict[str, object]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    failed_cell: Mapped[int | None] = mapped_column()
    output_ipynb: Mapped[str | None] = mapped_column(Text)
    output_html: Mapped[str | None] = mapped_column(Text)


class Scenario(Base):
    """A tenant's saved reduction scenario: the inputs of :func:`scope3lib.scenarios.run`, re-runnable by name."""

    __tablename__ = "scenarios"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_scenarios_tenant_name"),
        CheckConstraint("target_year > base_year", name="years"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    base_year: Mapped[int] = mapped_column(SmallInteger)
    target_year: Mapped[int] = mapped_column(SmallInteger)
    growth: Mapped[float] = mapped_column(Double)  # compound business growth per year, 0.03 = 3%
    discount_rate: Mapped[float] = mapped_column(Double)  # per year, for the NPV of each lever
    levers: Mapped[list[dict[str, object]]] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- The integration API (migration 0008) ---------------------------------------------------------


class ApiKey(Base):
    """A tenant's API key for machines: shown once, stored as the SHA-256 of its secret with a visible prefix."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("scope IN ('read', 'write', 'ingest')", name="scope"),
        # An ingest key is a device key: it writes the readings of one device and nothing else.
        CheckConstraint("(scope = 'ingest') = (device_id IS NOT NULL)", name="device"),
        CheckConstraint("octet_length(secret_hash) = 32", name="secret_hash"),
        UniqueConstraint("prefix"),
        # A name is one live key; a revoked (or rotated) key keeps its name in the listing.
        Index("uq_api_keys_tenant_name", "tenant_id", "name", unique=True, postgresql_where=text("revoked_at IS NULL")),
        ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"],
                             name="fk_api_keys_device", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(String(16))  # the key's first characters, shown in listings and logs
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256 of the whole key
    scope: Mapped[str] = mapped_column(String(8))
    device_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ApiRequest(Base):
    """One request to a tenant's API: who (key prefix or hub user), route, status and time; pruned by age."""

    __tablename__ = "api_requests"
    __table_args__ = (Index("ix_api_requests_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    principal: Mapped[str] = mapped_column(Text)  # "key:<prefix>", "user:<name>" or "anonymous"
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(Text)  # the route template, e.g. /suppliers/{supplier_id}
    status: Mapped[int] = mapped_column(SmallInteger)
    duration_ms: Mapped[float] = mapped_column(Double)


class Job(Base):
    """Work the API started in the background (a prediction, a scenario run, a report), with its outcome."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_jobs_tenant", "tenant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[dict[str, object]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)

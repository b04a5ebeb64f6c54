"""The data model: SQLAlchemy 2 typed models of every table.

Every tenant-owned table carries ``tenant_id``; row-level security (see ``tenancy.py`` and the
migrations) limits each tenant role to its own rows. Schema changes go through Alembic migrations
in ``scope3lib/migrations``; these models mirror them.
"""

from __future__ import annotations

import datetime as dt
import uuid
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
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
        ForeignKeyConstraint(["tenant_id", "merged_into"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_suppliers_merged_into", ondelete="RESTRICT"),
        *(Index(f"uq_suppliers_tenant_{c}", "tenant_id", c, unique=True, postgresql_where=text(f"{c} IS NOT NULL"))
          for c in ("lei", "duns", "vat_number")),
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
    # Identifiers and the record's life (migration 0007; scope3lib.suppliers.records writes them).
    lei: Mapped[str | None] = mapped_column(String(20))  # ISO 17442 Legal Entity Identifier
    duns: Mapped[str | None] = mapped_column(String(9))  # Dun & Bradstreet number
    vat_number: Mapped[str | None] = mapped_column(String(20))  # with its country prefix, e.g. DE123456789
    contact_email: Mapped[str | None] = mapped_column(Text)
    spend_year: Mapped[int | None] = mapped_column(SmallInteger)  # the year annual_spend is of
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    merged_into: Mapped[int | None] = mapped_column(BigInteger)  # the record this one was merged into
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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
    """One change to an emission entry, or one decision on a supplier submission (events approve and reject, whose
    ``entry_id`` is the submission's id); its bytes are ``ledger_leaf_data(...)`` (see scope3lib.ledger.leaf_data)."""

    __tablename__ = "ledger_leaves"
    __table_args__ = (
        CheckConstraint("leaf_index >= 0", name="leaf_index"),
        CheckConstraint("event IN ('create', 'correct', 'recalculate', 'delete', 'approve', 'reject')", name="event"),
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


# --- A company's own data: suppliers' history, spend extracts, rules, disclosures (migration 0007) ----------


def _tenant_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class SupplierAlias(Base):
    """Another name (or an ERP vendor number) that stands for a supplier: a merged record's name, a vendor
    name an analyst matched. ``alias_key`` is the normalised form matching compares."""

    __tablename__ = "supplier_aliases"
    __table_args__ = (
        CheckConstraint("kind IN ('name', 'vendor_id')", name="kind"),
        UniqueConstraint("tenant_id", "kind", "alias_key", name="uq_supplier_aliases_tenant_kind_key"),
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_supplier_aliases_supplier", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    supplier_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    alias: Mapped[str] = mapped_column(Text)
    alias_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SupplierChange(Base):
    """One change of a supplier record (create, update, merge, archive, restore, delete), appended by the
    ``supplier_history`` trigger; no role may change or delete it."""

    __tablename__ = "supplier_changes"
    __table_args__ = (Index("ix_supplier_changes_supplier", "tenant_id", "supplier_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    supplier_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(Text)  # the person (scope3.actor), else the login role
    role_name: Mapped[str] = mapped_column(Text)  # the PostgreSQL login role (session_user)
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    before: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, object] | None] = mapped_column(JSONB)


class SupplierDisclosure(Base):
    """What a supplier reported for one year: its scope 1 and 2 (and, when given, upstream) emissions in kg CO2e,
    its revenue, how it was verified and the document it comes from."""

    __tablename__ = "supplier_disclosures"
    __table_args__ = (
        CheckConstraint("scope1_kg >= 0 AND scope2_kg >= 0 AND (upstream_kg IS NULL OR upstream_kg >= 0)",
                        name="emissions"),
        CheckConstraint("revenue > 0", name="revenue"),
        CheckConstraint("verification IN ('none', 'limited', 'reasonable')", name="verification"),
        CheckConstraint("eeio_direct_share IS NULL OR eeio_direct_share BETWEEN 0 AND 1", name="direct_share"),
        UniqueConstraint("tenant_id", "supplier_id", "year", name="uq_supplier_disclosures_supplier_year"),
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_supplier_disclosures_supplier", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    supplier_id: Mapped[int] = mapped_column(BigInteger)
    year: Mapped[int] = mapped_column(SmallInteger)
    scope1_kg: Mapped[float] = mapped_column(Double)
    scope2_kg: Mapped[float] = mapped_column(Double)
    upstream_kg: Mapped[float | None] = mapped_column(Double)  # its own purchased goods (scope 3 upstream)
    revenue: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    verification: Mapped[str] = mapped_column(String(16))
    source_document: Mapped[str] = mapped_column(Text)
    eeio_direct_share: Mapped[float | None] = mapped_column(Double)
    recorded_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ColumnMapping(Base):
    """How one ERP's extract names its columns (field -> header), its decimal mark and date format, kept per
    tenant so next year's file imports unchanged."""

    __tablename__ = "column_mappings"
    __table_args__ = (
        CheckConstraint("decimal IN ('.', ',')", name="decimal"),
        UniqueConstraint("tenant_id", "name", name="uq_column_mappings_tenant_name"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    name: Mapped[str] = mapped_column(Text)
    columns: Mapped[dict[str, str]] = mapped_column(JSONB)
    decimal: Mapped[str] = mapped_column(String(1))
    date_format: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ClassificationRule(Base):
    """A tenant's rule putting spend lines into a GHG Protocol category and a NAICS sector."""

    __tablename__ = "classification_rules"
    __table_args__ = (
        CheckConstraint("kind IN ('commodity', 'gl_account', 'vendor', 'keyword')", name="kind"),
        CheckConstraint("category BETWEEN 1 AND 15", name="category"),
        UniqueConstraint("tenant_id", "kind", "pattern", name="uq_classification_rules_tenant_kind_pattern"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    kind: Mapped[str] = mapped_column(String(16))
    pattern: Mapped[str] = mapped_column(Text)
    category: Mapped[int] = mapped_column(SmallInteger)
    naics_code: Mapped[str] = mapped_column(String(6))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SpendImport(Base):
    """One ERP extract imported (its file's SHA-256 makes a second import of the same file a no-op)."""

    __tablename__ = "spend_imports"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_spend_imports_tenant_id_id"),
        UniqueConstraint("tenant_id", "sha256", name="uq_spend_imports_tenant_sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[str] = mapped_column(Text)
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    lines: Mapped[int] = mapped_column()
    replaces: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))  # earlier imports it corrects
    reason: Mapped[str | None] = mapped_column(Text)
    imported_by: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SpendGroup(Base):
    """The lines of one month, supplier (or vendor), category, sector and currency, priced as one entry."""

    __tablename__ = "spend_groups"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id", name="uq_spend_groups_tenant_id_id"),
        UniqueConstraint("tenant_id", "group_key", name="uq_spend_groups_tenant_key"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    group_key: Mapped[str] = mapped_column(Text)
    month: Mapped[dt.date] = mapped_column(Date)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # its emission entry (None while it has none)


class SpendLine(Base):
    """One line of an ERP extract as imported, with how it was matched and classified."""

    __tablename__ = "spend_lines"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "import_id"], ["spend_imports.tenant_id", "spend_imports.id"],
                             name="fk_spend_lines_import", ondelete="CASCADE"),
        ForeignKeyConstraint(["tenant_id", "group_id"], ["spend_groups.tenant_id", "spend_groups.id"],
                             name="fk_spend_lines_group", ondelete="SET NULL (group_id)"),
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_spend_lines_supplier", ondelete="SET NULL (supplier_id)"),
        Index("ix_spend_lines_tenant_date", "tenant_id", "posting_date"),
        Index("ix_spend_lines_group", "group_id"),
    )

    tenant_id: Mapped[int] = _tenant_fk()
    import_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)  # line of the file, the header being line 1
    line_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the line's values as read
    active: Mapped[bool] = mapped_column()  # False once a corrected extract replaced it
    vendor_id: Mapped[str | None] = mapped_column(Text)
    vendor_name: Mapped[str | None] = mapped_column(Text)
    vendor_key: Mapped[str] = mapped_column(Text)
    supplier_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3))
    posting_date: Mapped[dt.date] = mapped_column(Date)
    gl_account: Mapped[str | None] = mapped_column(Text)
    cost_centre: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    commodity_code: Mapped[str | None] = mapped_column(Text)
    category: Mapped[int | None] = mapped_column(SmallInteger)
    naics_code: Mapped[str | None] = mapped_column(String(6))
    classified_by: Mapped[str | None] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(BigInteger)
    product_id: Mapped[str | None] = mapped_column(Text)  # the purchase's product, as an approved PCF names it
    quantity: Mapped[float | None] = mapped_column(Double)  # how much of it, in ``unit``
    unit: Mapped[str | None] = mapped_column(Text)


COMPANY_DATA_TABLES = ("supplier_aliases", "supplier_changes", "supplier_disclosures", "column_mappings",
                       "classification_rules", "spend_imports", "spend_lines", "spend_groups")


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


class PactFootprint(Base):
    """A PACT v3 ProductFootprint the tenant publishes: the validated JSON and the values its list filters select
    on (lower-cased, as the filters compare). Written only by ``scope3lib.pact.store``."""

    __tablename__ = "pact_footprints"
    __table_args__ = (
        CheckConstraint("status IN ('Active', 'Deprecated')", name="status"),
        Index("ix_pact_footprints_order", "tenant_id", "seq"),
        Index("ix_pact_footprints_product_ids", "product_ids", postgresql_using="gin"),
        Index("ix_pact_footprints_company_ids", "company_ids", postgresql_using="gin"),
    )

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity())  # the order footprints were published in
    document: Mapped[dict[str, object]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(10))
    product_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    company_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    classifications: Mapped[list[str]] = mapped_column(ARRAY(Text))
    geography: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    valid_until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))  # the footprint's own `created`
    imported_by: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PactClient(Base):
    """A partner's OAuth 2 client credentials for the tenant's PACT host (the secret stored as its SHA-256), and
    where and how this host reaches the partner's own host for answers to its requests."""

    __tablename__ = "pact_clients"
    __table_args__ = (
        CheckConstraint("octet_length(secret_hash) = 32", name="secret_hash"),
        UniqueConstraint("client_id"),
        Index("uq_pact_clients_tenant_name", "tenant_id", "name", unique=True,
              postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(40))
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    partner_url: Mapped[str | None] = mapped_column(Text)  # the partner's PACT base URL
    partner_client_id: Mapped[str | None] = mapped_column(Text)
    partner_client_secret: Mapped[str | None] = mapped_column(Text)  # not readable by the read-only role
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PactToken(Base):
    """An access token issued by the PACT host's token endpoint (stored as its SHA-256), valid until it expires
    or its client is revoked."""

    __tablename__ = "pact_tokens"
    __table_args__ = (
        CheckConstraint("octet_length(token_hash) = 32", name="token_hash"),
        UniqueConstraint("token_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client: Mapped[int] = mapped_column(ForeignKey("pact_clients.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PactExchange(Base):
    """One PACT exchange in or out: a token issued or refused, a list or get served, an event received or sent."""

    __tablename__ = "pact_exchanges"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("status IN ('ok', 'refused', 'failed')", name="status"),
        Index("ix_pact_exchanges_tenant_at", "tenant_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    direction: Mapped[str] = mapped_column(String(3))
    partner: Mapped[str] = mapped_column(Text)  # a client_id, or the partner's URL
    action: Mapped[str] = mapped_column(String(16))  # token, list, get, event
    event_type: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    summary: Mapped[dict[str, object]] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)


# --- Supplier engagement (migration 0010) ---------------------------------------------------------


def _supplier_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                                name=f"fk_{table}_supplier", ondelete="CASCADE")


def _request_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id", "request_id"], ["data_requests.tenant_id", "data_requests.id"],
                                name=f"fk_{table}_request", ondelete="CASCADE")


class DataRequest(Base):
    """A request to a supplier for data: product footprints (``kind`` pcf, for ``product_ids``) or an annual
    disclosure (``kind`` disclosure, for ``year``), by PACT, an upload link or a spreadsheet template."""

    __tablename__ = "data_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('pcf', 'disclosure')", name="kind"),
        CheckConstraint("(kind = 'pcf') = (product_ids IS NOT NULL AND cardinality(product_ids) > 0)",
                        name="products"),
        CheckConstraint("(kind = 'disclosure') = (year IS NOT NULL)", name="year"),
        CheckConstraint("channel IN ('pact', 'upload', 'template')", name="channel"),
        CheckConstraint("(channel = 'pact') = (pact_client_id IS NOT NULL)", name="pact"),
        CheckConstraint("status IN ('sent', 'answered', 'overdue', 'rejected')", name="status"),
        CheckConstraint("reminders >= 0", name="reminders"),
        _supplier_fk("data_requests"),
        ForeignKeyConstraint(["pact_client_id"], ["pact_clients.id"], name="fk_data_requests_pact_client",
                             ondelete="RESTRICT"),
        UniqueConstraint("tenant_id", "id", name="uq_data_requests_tenant_id_id"),
        Index("ix_data_requests_tenant_status", "tenant_id", "status", "due_date"),
        Index("ix_data_requests_pact_event", "tenant_id", "pact_event_id", unique=True,
              postgresql_where=text("pact_event_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    supplier_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))
    product_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    year: Mapped[int | None] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(8))
    pact_client_id: Mapped[int | None] = mapped_column(BigInteger)  # the partner asked over PACT
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8))
    reminders: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    last_reminded_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Migration 0011: the RequestCreated event a PACT request was sent as (its answer's requestEventId), and
    # the reason a partner gave in its RequestRejected.
    pact_event_id: Mapped[str | None] = mapped_column(Text)
    rejected_reason: Mapped[str | None] = mapped_column(Text)


class UploadToken(Base):
    """A link's secret (SHA-256 only) that lets a supplier submit for one request, until it expires or its uses
    are spent, each upload at most ``max_bytes``."""

    __tablename__ = "upload_tokens"
    __table_args__ = (
        CheckConstraint("octet_length(token_hash) = 32", name="token_hash"),
        CheckConstraint("max_uses >= 1 AND uses >= 0 AND uses <= max_uses", name="uses"),
        CheckConstraint("max_bytes > 0", name="max_bytes"),
        _request_fk("upload_tokens"),
        UniqueConstraint("token_hash"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    request_id: Mapped[int] = mapped_column(BigInteger)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    max_uses: Mapped[int] = mapped_column(SmallInteger)
    uses: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    max_bytes: Mapped[int] = mapped_column()
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SupplierSubmission(Base):
    """What a supplier sent (footprints or a disclosure), pending until a second user of the tenant approves or
    rejects it; the database refuses a decision by the submitter and appends each decision to the ledger."""

    __tablename__ = "supplier_submissions"
    __table_args__ = (
        CheckConstraint("kind IN ('pcf', 'disclosure')", name="kind"),
        CheckConstraint("channel IN ('pact', 'upload', 'template')", name="channel"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("(status = 'pending') = (decided_by IS NULL AND decided_at IS NULL)", name="decided"),
        CheckConstraint("decided_by IS NULL OR lower(decided_by) <> lower(submitted_by)", name="four_eyes"),
        CheckConstraint("status <> 'rejected' OR length(trim(reason)) > 0", name="reason"),
        _supplier_fk("supplier_submissions"),
        _request_fk("supplier_submissions"),
        Index("ix_supplier_submissions_tenant_status", "tenant_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    tenant_id: Mapped[int] = _tenant_fk()
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    supplier_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(8), server_default=text("'pending'"))
    payload: Mapped[dict[str, object]] = mapped_column(JSONB)  # {"footprints": [...]} or {"disclosure": {...}}
    payload_sha256: Mapped[str] = mapped_column(String(64))
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)


ENGAGEMENT_TABLES = ("data_requests", "upload_tokens", "supplier_submissions")

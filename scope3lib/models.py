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
)
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
        # Composite keys: foreign keys are checked without row-level security, so a plain
        # supplier_id could point at (and pin) another tenant's supplier.
        ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                             name="fk_emission_entries_supplier", ondelete="RESTRICT"),
        ForeignKeyConstraint(["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"],
                             name="fk_emission_entries_device", ondelete="RESTRICT"),
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
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
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

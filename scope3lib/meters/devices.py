"""Smart meters: provisioning, MQTT credentials, and the topic contract.

Topic ``scope3/<tenant>/<device>/readings`` (docs/design.md, decision 5). Each device gets its own MQTT
username and password; the password is stored only as a hash in Mosquitto's own PBKDF2-SHA512
format (``$7$``), so the broker's password file can always be written from the database.

Given the production Mosquitto's files (``broker=``, see :class:`scope3lib.meters.broker.MosquittoFiles`),
adding, re-keying and removing a device rewrite the broker's password file and ACL and reload it at
once, so a removed device cannot connect any more.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import DuplicateDevice, InvalidArgument, UnknownDevice, UnknownSupplier
from ..factors import lookup
from ..models import Device, Supplier
from ..tenancy import check_limit, tenant_id
from .contract import readings_topic
from .credentials import mosquitto_hash, mqtt_username

if TYPE_CHECKING:
    from .broker import MosquittoFiles

DEVICE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
REGION_RE = re.compile(r"^[A-Za-z0-9_-]{2,16}$")

@dataclass(frozen=True)
class DeviceCredentials:
    tenant: str
    device: str
    topic: str
    mqtt_username: str
    mqtt_password: str
    grid_region: str
    category: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def add_device(
    engine: Engine,
    slug: str,
    device_key: str,
    region: str,
    *,
    supplier: str | None = None,
    category: int = 1,
    expected_interval_s: int = 60,
    broker: MosquittoFiles | None = None,
) -> DeviceCredentials:
    """Register a meter and issue its MQTT credentials (the password is shown only here).

    With ``broker``, the broker's password file and ACL are rewritten and Mosquitto reloaded.
    """
    _check_device_fields(device_key, region, category, expected_interval_s)
    password = secrets.token_urlsafe(18)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        check_region(conn, region)
        supplier_id = None if supplier is None else _supplier_id(conn, tid, slug, supplier)
        _refuse_existing_device(conn, tid, slug, device_key)
        check_limit(conn, slug, "devices", "SELECT count(*) FROM devices WHERE tenant_id = :t")
        conn.execute(
            sa.insert(Device).values(
                tenant_id=tid,
                device_key=device_key,
                supplier_id=supplier_id,
                grid_region=region.upper(),
                category=category,
                expected_interval_s=expected_interval_s,
                credential_hash=mosquitto_hash(password),
            )
        )
    if broker is not None:
        broker.sync(engine)
    return DeviceCredentials(
        tenant=slug,
        device=device_key,
        topic=readings_topic(slug, device_key),
        mqtt_username=mqtt_username(slug, device_key),
        mqtt_password=password,
        grid_region=region.upper(),
        category=category,
    )


def _check_device_fields(device_key: str, region: str, category: int, expected_interval_s: int) -> None:
    if not DEVICE_KEY_RE.match(device_key):
        raise InvalidArgument(
            f"invalid device id {device_key!r}: use 1-64 letters, digits, '_' and '-' (it becomes a topic level)"
        )
    _check_settings({"grid_region": region, "category": category, "expected_interval_s": expected_interval_s})


def _check_settings(values: Mapping[str, Any]) -> None:
    """The form of those of a meter's region, category and expected interval that ``values`` holds."""
    region = values.get("grid_region", "XX")
    if not REGION_RE.match(region):
        raise InvalidArgument(f"invalid grid region {region!r}: e.g. an eGRID subregion (CAMX) or a country (GB)")
    if not 1 <= values.get("category", 1) <= 15:
        raise InvalidArgument(f"category must be a GHG Protocol Scope 3 category 1-15, got {values['category']}")
    if values.get("expected_interval_s", 1) <= 0:
        raise InvalidArgument("expected interval must be a positive number of seconds")


def check_region(conn: Connection, region: str) -> None:
    """A meter's region must be one some stored grid dataset covers, or its readings could never be priced."""
    known = lookup.grid_regions(conn)
    if region.upper() not in known:
        raise InvalidArgument(
            f"unknown grid region {region!r}: no stored grid factor covers it, so its readings could not become "
            f"emissions; use one of {', '.join(known)} (eGRID subregions, or ISO country codes), or import a "
            "grid dataset that covers it (`scope3 factors import`)"
        )


def _supplier_id(conn: Connection, tid: int, slug: str, supplier: str) -> int:
    supplier_id = conn.scalar(sa.select(Supplier.id).where(Supplier.tenant_id == tid, Supplier.name == supplier))
    if supplier_id is None:
        raise UnknownSupplier(f"tenant {slug!r} has no supplier named {supplier!r}")
    return supplier_id


def _refuse_existing_device(conn: Connection, tid: int, slug: str, device_key: str) -> None:
    """Refuse a device id the tenant has, or had: a removed device's id stays taken."""
    exists = conn.execute(
        sa.select(Device.id, Device.revoked_at).where(Device.tenant_id == tid, Device.device_key == device_key)
    ).first()
    if exists is not None:
        hint = " (removed, kept for its emission entries: choose another id)" if exists.revoked_at else ""
        raise DuplicateDevice(f"device {device_key!r} already exists in tenant {slug!r}{hint}")


def issue_credentials(
    engine: Engine, slug: str, device_key: str, *, broker: MosquittoFiles | None = None
) -> DeviceCredentials:
    """Give an existing device a new MQTT password; with ``broker`` the old one stops working at once."""
    password = secrets.token_urlsafe(18)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        row = conn.execute(
            sa.update(Device)
            .where(Device.tenant_id == tid, Device.device_key == device_key, Device.revoked_at.is_(None))
            .values(credential_hash=mosquitto_hash(password))
            .returning(Device.grid_region, Device.category)
        ).first()
        if row is None:
            raise UnknownDevice(f"tenant {slug!r} has no (unrevoked) device {device_key!r}")
    if broker is not None:
        broker.sync(engine)
    return DeviceCredentials(
        tenant=slug, device=device_key, topic=readings_topic(slug, device_key),
        mqtt_username=mqtt_username(slug, device_key), mqtt_password=password,
        grid_region=row.grid_region, category=row.category,
    )


CHANGEABLE = ("grid_region", "supplier_id", "category", "expected_interval_s")


def change_device(engine: Engine, slug: str, device_key: str, changes: Mapping[str, Any]) -> None:
    """Change a live meter's region, supplier (by id; None for none), category or expected interval.

    Only the fields in ``changes`` change; the region is checked as when the meter was added, and stored in
    capitals. Its credentials and topic stay as they are, so the broker needs no reload.
    """
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise InvalidArgument(f"a device's {', '.join(unknown)} cannot be changed; only {', '.join(CHANGEABLE)}")
    values = dict(changes)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        _check_settings(values)
        if "grid_region" in values:
            check_region(conn, values["grid_region"])
            values["grid_region"] = values["grid_region"].upper()
        if values.get("supplier_id") is not None and conn.scalar(sa.select(Supplier.id).where(
                Supplier.tenant_id == tid, Supplier.id == values["supplier_id"])) is None:
            raise UnknownSupplier(f"tenant {slug!r} has no supplier {values['supplier_id']}")
        if values and conn.execute(sa.update(Device).where(
                Device.tenant_id == tid, Device.device_key == device_key, Device.revoked_at.is_(None))
                .values(**values)).rowcount == 0:
            raise UnknownDevice(f"tenant {slug!r} has no (unrevoked) device {device_key!r}")


def remove_device(engine: Engine, slug: str, device_key: str, *, broker: MosquittoFiles | None = None) -> bool:
    """Revoke a device and delete it with its readings; returns False when it is kept, revoked.

    A device whose readings already fed emission entries is kept (revoked, with its readings) so the
    inventory stays reproducible; either way its broker account is gone and, with ``broker``, Mosquitto
    is reloaded at once, disconnecting it. The ingest service refuses a revoked device's messages.
    """
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        device_id = conn.scalar(
            sa.update(Device)
            .where(Device.tenant_id == tid, Device.device_key == device_key)
            .values(revoked_at=sa.func.coalesce(Device.revoked_at, sa.func.now()))
            .returning(Device.id)
        )
        if device_id is None:
            raise UnknownDevice(f"tenant {slug!r} has no device {device_key!r}")
        in_inventory = conn.scalar(
            sa.text("SELECT EXISTS (SELECT 1 FROM emission_entries WHERE tenant_id = :t AND device_id = :d)"),
            {"t": tid, "d": device_id},
        )
        if not in_inventory:
            conn.execute(sa.delete(Device).where(Device.id == device_id))
    if broker is not None:
        broker.sync(engine)
    return not in_inventory


def list_devices(engine: Engine, slug: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        tid = tenant_id(conn, slug)
        rows = conn.execute(
            sa.text(
                """SELECT d.device_key AS device, d.grid_region, d.category, s.name AS supplier, d.last_seen,
                          d.revoked_at,
                          (SELECT count(*) FROM readings r WHERE r.device_id = d.id) AS readings
                   FROM devices d LEFT JOIN suppliers s ON s.id = d.supplier_id
                   WHERE d.tenant_id = :t ORDER BY d.device_key"""
            ),
            {"t": tid},
        ).mappings()
        return [dict(r) for r in rows]

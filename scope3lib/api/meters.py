"""Devices (list, read, register, change, remove, new credentials) and their readings (list).

Devices are registered, re-keyed and removed by :mod:`scope3lib.meters.devices`, the same functions as
``scope3 device``, here with the tenant's read-write role. The API cannot reload the production broker (that
needs the operator's files): a device's new MQTT password reaches Mosquitto at the operator's next
``scope3 broker config`` or device command (docs/api.md); HTTP ingest uses device keys, which work at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..meters import devices
from .auth import Reader, Writer
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

router = APIRouter(tags=["meters"])
Ctx = Annotated[ApiContext, Depends(context)]
DeviceKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The device's id (its topic level)")]


class Device(BaseModel):
    device: str
    supplier_id: int | None
    supplier: str | None
    grid_region: str
    category: int
    expected_interval_s: int
    last_seen: dt.datetime | None
    revoked_at: dt.datetime | None
    created_at: dt.datetime


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    grid_region: str = Field(pattern=r"^[A-Za-z0-9_-]{2,16}$", description="eGRID subregion or ISO country")
    supplier: str | None = Field(default=None, max_length=200, description="One of the tenant's suppliers, by name")
    category: int = Field(default=1, ge=1, le=15)
    expected_interval_s: int = Field(default=60, ge=1, le=86_400 * 31)


class DevicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grid_region: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{2,16}$")
    supplier_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    category: int | None = Field(default=None, ge=1, le=15)
    expected_interval_s: int | None = Field(default=None, ge=1, le=86_400 * 31)


class Credentials(BaseModel):
    device: str
    topic: str
    mqtt_username: str
    mqtt_password: str = Field(description="Shown only in this answer")
    grid_region: str
    category: int


class Reading(BaseModel):
    device: str
    ts: dt.datetime
    kwh: float
    received_at: dt.datetime


_SELECT = ("SELECT d.device_key AS device, d.supplier_id, s.name AS supplier, d.grid_region, d.category, "
           "d.expected_interval_s, d.last_seen, d.revoked_at, d.created_at, d.id "
           "FROM devices d LEFT JOIN suppliers s ON s.id = d.supplier_id")


def _one(ctx: ApiContext, key: str) -> dict[str, Any]:
    with ctx.read.connect() as conn:
        row = conn.execute(sa.text(f"{_SELECT} WHERE d.device_key = :k"), {"k": key}).mappings().first()
    if row is None:
        raise ApiProblem(404, "Not found", f"no device {key!r}", field="path.device")
    return dict(row)


@router.get("/devices", response_model=Page[Device], summary="The tenant's meters")
def list_devices(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                 cursor: Cursor = None) -> dict[str, Any]:
    after = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(f"{_SELECT} WHERE d.tenant_id = :t AND d.id > :a "
                                                      "ORDER BY d.id LIMIT :n"),
                                              {"t": ctx.tenant_id, "a": after[0] if after else 0, "n": limit + 1})
                .mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/devices/{device}", response_model=Device, summary="One meter")
def get_device(device: DeviceKey, ctx: Ctx, who: Reader) -> dict[str, Any]:
    return _one(ctx, device)


@router.post("/devices", response_model=Credentials, status_code=201,
             summary="Register a meter; its MQTT password is in this answer only")
def create_device(body: DeviceIn, ctx: Ctx, who: Writer) -> dict[str, Any]:
    creds = devices.add_device(ctx.write, ctx.slug, body.device, body.grid_region, supplier=body.supplier,
                               category=body.category, expected_interval_s=body.expected_interval_s)
    return creds.to_dict()


@router.patch("/devices/{device}", response_model=Device, summary="Change a meter's region, supplier, category")
def patch_device(device: DeviceKey, body: DevicePatch, ctx: Ctx, who: Writer) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()}
    for k in ("grid_region", "category", "expected_interval_s"):
        if k in changes and changes[k] is None:
            raise ApiProblem(422, "Invalid input", f"{k} cannot be null", field=f"body.{k}")
    devices.change_device(ctx.write, ctx.slug, device, changes)
    return _one(ctx, device)


@router.delete("/devices/{device}", status_code=204, summary="Remove a meter (kept, revoked, if its readings "
               "fed emission entries)")
def delete_device(device: DeviceKey, ctx: Ctx, who: Writer) -> Response:
    devices.remove_device(ctx.write, ctx.slug, device)
    return Response(status_code=204)


@router.post("/devices/{device}/credentials", response_model=Credentials,
             summary="Issue a meter new MQTT credentials (the old password stops at the broker's next reload)")
def rotate_credentials(device: DeviceKey, ctx: Ctx, who: Writer) -> dict[str, Any]:
    return devices.issue_credentials(ctx.write, ctx.slug, device).to_dict()


@router.get("/readings", response_model=Page[Reading], summary="Meter readings, newest first")
def list_readings(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                  cursor: Cursor = None, device: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
                  since: dt.datetime | None = None, until: dt.datetime | None = None) -> dict[str, Any]:
    """Ordered by time, newest first, then device (stable across pages)."""
    before = decode(cursor, (str, int))
    where = ["r.tenant_id = :t"]
    params: dict[str, Any] = {"t": ctx.tenant_id, "n": limit + 1}
    if before:
        try:
            params["bts"], params["bdev"] = dt.datetime.fromisoformat(before[0]), before[1]
        except ValueError:
            raise ApiProblem(422, "Invalid input", "cursor is not one this API issued", field="query.cursor") from None
        where.append("(r.ts, r.device_id) < (:bts, :bdev)")
    for cond, name, value in (("d.device_key = :dk", "dk", device), ("r.ts >= :since", "since", since),
                              ("r.ts < :until", "until", until)):
        if value is not None:
            where.append(cond)
            params[name] = value
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            "SELECT d.device_key AS device, r.device_id, r.ts, r.kwh, r.received_at FROM readings r "
            f"JOIN devices d ON d.id = r.device_id WHERE {' AND '.join(where)} "
            "ORDER BY r.ts DESC, r.device_id DESC LIMIT :n"), params).mappings()]
    return page(request, response, rows, limit, lambda r: [r["ts"].isoformat(), r["device_id"]])

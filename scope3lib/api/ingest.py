"""HTTP meter ingest for gateways that cannot speak MQTT: ``POST /iot/ingest/`` with a device key.

The payload is the MQTT contract's (``scope3lib.meters.contract``: one reading or ``{"readings": [...]}``),
parsed by the same function, and the batch is stored by the same function as the MQTT ingest's
(:func:`scope3lib.meters.ingest.write_messages`): readings with ``ON CONFLICT DO NOTHING``, a refused payload
in ``rejects`` with its reason. Delivery is at least once, as over MQTT: the answer (200) comes only after
the commit, so a gateway that gets no answer sends the same readings again and nothing is stored twice.
A device key (an API key of scope ``ingest``) writes for its one device only.
"""

from __future__ import annotations

import time
from typing import Annotated

import psycopg
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..errors import InvalidReading
from ..meters.contract import parse_payload, readings_topic
from ..meters.ingest import ParsedMessage, write_messages
from .auth import Ingester
from .context import ApiContext, context
from .problems import ApiProblem

router = APIRouter(tags=["meters"])
Ctx = Annotated[ApiContext, Depends(context)]
MAX_BYTES = 1_048_576  # as the MQTT ingest's default max_payload_bytes
_LAST_SEEN_EVERY_S = 5.0  # as the MQTT ingest: last_seen is written at most this often per device

_EXAMPLE = {"readings": [{"ts": "2026-11-26T10:15:00Z", "kwh": 1.25}, {"ts": "2026-11-26T10:16:00Z", "kwh": 1.5}]}


class IngestResult(BaseModel):
    device: str
    readings: int = Field(description="Readings in the payload")
    stored: int = Field(description="Readings stored now")
    duplicates: int = Field(description="Readings already stored (a resent payload), skipped")


def _device(ctx: ApiContext, device_id: int) -> tuple[str, bool]:
    with ctx.read.connect() as conn:
        row = conn.execute(sa.text("SELECT device_key, revoked_at IS NOT NULL AS revoked FROM devices WHERE id = :i"),
                           {"i": device_id}).first()
    if row is None:
        raise ApiProblem(403, "Not allowed", "this key's device no longer exists")
    return str(row.device_key), bool(row.revoked)


@router.post("/iot/ingest/", response_model=IngestResult, summary="Store a device's readings (device key)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "description": "One reading {ts, kwh} or {readings: [...]}, "
                            "as the MQTT contract (docs/meters.md#the-contract)"}, "example": _EXAMPLE}}}})
async def ingest(request: Request, ctx: Ctx, who: Ingester) -> IngestResult:
    body = await request.body()
    assert who.device_id is not None  # an ingest key always has its device (ck_api_keys_device)
    return await run_in_threadpool(_store, ctx, who.device_id, body)


def _store(ctx: ApiContext, device_id: int, body: bytes) -> IngestResult:
    device, revoked = _device(ctx, device_id)
    topic = readings_topic(ctx.slug, device)
    message = ParsedMessage(topic=topic, tenant=ctx.slug, device=device, readings=None, reason=None, payload=body)
    try:
        message.readings = parse_payload(body, device, max_bytes=MAX_BYTES)
        message.payload = None
    except InvalidReading as exc:
        message.reason = exc.reason
    now = time.monotonic()

    def resolve(tenant: str, key: str) -> tuple[int, int] | str:
        return f"device {key!r} of tenant {tenant!r} is revoked" if revoked else (device_id, ctx.tenant_id)

    def mark_seen(d: int) -> bool:
        if now - ctx.ingest_seen.get(d, 0.0) >= _LAST_SEEN_EVERY_S:
            ctx.ingest_seen[d] = now
            return True
        return False

    raw = ctx.write.raw_connection()
    try:
        conn: psycopg.Connection = raw.driver_connection  # type: ignore[assignment]
        written = write_messages(conn, [message], resolve, lambda tenant: ctx.tenant_id, mark_seen)
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    if written.reasons:
        raise ApiProblem(422, "Refused reading", f"{written.reasons[0]} (kept in rejects)", field="body")
    count = len(message.readings or [])
    return IngestResult(device=device, readings=count, stored=written.inserted, duplicates=count - written.inserted)

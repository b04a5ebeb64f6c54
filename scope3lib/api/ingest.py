"""HTTP meter ingest for gateways that cannot speak MQTT: ``POST /iot/ingest/`` with a device key.

The payload is the MQTT contract's (``scope3lib.meters.contract``: one reading or ``{"readings": [...]}``),
parsed by the same function, and stored by the same function as the MQTT ingest's
(:func:`scope3lib.meters.ingest.write_messages`): readings with ``ON CONFLICT DO NOTHING``, a refused payload
in ``rejects`` with its reason. Delivery is at least once, as over MQTT: the answer (200) comes only after
the commit, so a gateway that gets no answer sends the same readings again and nothing is stored twice.
A device key (an API key of scope ``ingest``) writes for its one device only.

Like the MQTT ingest, requests share commits: :class:`GroupWriter` writes every request that arrived while
the previous transaction was committing in one transaction, and answers each after that commit. There is
no waiting window, so a lone request is written at once; under load a commit carries many requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from ..db import libpq_url
from ..errors import InvalidReading
from ..meters.contract import parse_payload, readings_topic
from ..meters.ingest import STAGE_DDL, ParsedMessage, write_messages
from .auth import Ingester
from .context import ApiContext, context
from .problems import ApiProblem

log = logging.getLogger("scope3.api.ingest")
router = APIRouter(tags=["meters"])
Ctx = Annotated[ApiContext, Depends(context)]
MAX_BYTES = 1_048_576  # as the MQTT ingest's default max_payload_bytes
_LAST_SEEN_EVERY_S = 5.0  # as the MQTT ingest: last_seen is written at most this often per device
_MAX_BATCH_READINGS = 20_000  # one transaction's share, as the MQTT ingest's largest batch

_EXAMPLE = {"readings": [{"ts": "2026-11-26T10:15:00Z", "kwh": 1.25}, {"ts": "2026-11-26T10:16:00Z", "kwh": 1.5}]}


class IngestResult(BaseModel):
    device: str
    readings: int = Field(description="Readings in the payload")
    stored: int = Field(description="Readings stored now")
    duplicates: int = Field(description="Readings already stored (a resent payload), skipped")


_Item = tuple[ParsedMessage, int, bool, "Future[tuple[int, str | None]]"]


class GroupWriter:
    """One writer thread and connection of the tenant's read-write role; ``submit`` a parsed message and get a
    future of (readings stored, reject reason or None), resolved after the commit that holds it."""

    def __init__(self, engine: Engine, tenant_id: int) -> None:
        self.engine, self.tenant_id = engine, tenant_id
        self._queue: deque[_Item] = deque()
        self._wake = threading.Condition()
        self._stop = False
        self._seen: dict[int, float] = {}
        self._thread = threading.Thread(target=self._run, name="api-ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, message: ParsedMessage, device_id: int, revoked: bool) -> Future[tuple[int, str | None]]:
        """Queue ``message``; it is written even if its request is cancelled meanwhile (at least once)."""
        future: Future[tuple[int, str | None]] = Future()
        with self._wake:
            self._queue.append((message, device_id, revoked, future))
            self._wake.notify()
        return future

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def _take(self) -> list[_Item]:
        with self._wake:
            while not self._queue and not self._stop:
                self._wake.wait()
            batch: list[_Item] = []
            n = 0
            while self._queue and n < _MAX_BATCH_READINGS:
                item = self._queue.popleft()
                batch.append(item)
                n += len(item[0].readings or ())
            return batch

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        while True:
            batch = self._take()
            if not batch:
                break
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(libpq_url(self.engine.url), autocommit=False, connect_timeout=10)
                    conn.execute(STAGE_DDL)
                    conn.commit()
                results = self._write(conn, batch)
            except BaseException as exc:  # every request of the batch fails; the gateway sends it again
                log.warning("HTTP ingest batch not written (%s)", str(exc).splitlines()[0] if str(exc) else exc)
                if conn is not None:
                    conn.close()
                conn = None
                for *_, future in batch:
                    if not future.cancelled():  # a request whose client went away is cancelled
                        future.set_exception(exc)
                continue
            for (*_, future), result in zip(batch, results, strict=True):
                if not future.cancelled():
                    future.set_result(result)
        if conn is not None:
            conn.close()

    def _write(self, conn: psycopg.Connection, batch: list[_Item]) -> list[tuple[int, str | None]]:
        ids = {m.device: (device_id, revoked) for m, device_id, revoked, _ in batch}
        now = time.monotonic()

        def resolve(tenant: str, device: str) -> tuple[int, int] | str:
            device_id, revoked = ids[device]
            return f"device {device!r} of tenant {tenant!r} is revoked" if revoked else (device_id, self.tenant_id)

        def mark_seen(d: int) -> bool:
            if now - self._seen.get(d, 0.0) >= _LAST_SEEN_EVERY_S:
                self._seen[d] = now
                return True
            return False

        messages = [m for m, *_ in batch]
        written = write_messages(conn, messages, resolve, lambda tenant: self.tenant_id, mark_seen, returning=True)
        stored = written.stored or set()
        results = []
        for m, device_id, _, _ in batch:  # a reading two requests of the batch share is counted for the first
            mine = {(device_id, ts) for ts, _ in m.readings or ()} & stored if m.reason is None else set()
            stored -= mine
            results.append((len(mine), m.reason))
        return results


def _parse(device: str, topic: str, body: bytes, slug: str) -> ParsedMessage:
    message = ParsedMessage(topic=topic, tenant=slug, device=device, readings=None, reason=None, payload=body)
    try:
        message.readings = parse_payload(body, device, max_bytes=MAX_BYTES)
        message.payload = None
    except InvalidReading as exc:
        message.reason = exc.reason
    return message


@router.post("/iot/ingest/", response_model=IngestResult, summary="Store a device's readings (device key)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "description": "One reading {ts, kwh} or {readings: [...]}, "
                            "as the MQTT contract (docs/meters.md#the-contract)"}, "example": _EXAMPLE}}}})
async def ingest(request: Request, ctx: Ctx, who: Ingester) -> Any:
    body = await request.body()
    # An ingest key always has its device (ck_api_keys_device; a removed device takes its keys with it).
    assert who.device_id is not None and who.device is not None
    device = who.device
    message = await run_in_threadpool(_parse, device, readings_topic(ctx.slug, device), body, ctx.slug)
    stored, reason = await asyncio.wrap_future(ctx.ingest.submit(message, who.device_id, who.device_revoked))
    if reason is not None:
        raise ApiProblem(422, "Refused reading", f"{reason} (kept in rejects)", field="body")
    count = len(message.readings or [])
    return IngestResult(device=device, readings=count, stored=stored, duplicates=count - stored)

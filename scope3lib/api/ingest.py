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
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from ..db import libpq_url
from ..errors import InvalidReading
from ..meters.contract import parse_payload, readings_topic
from ..meters.ingest import STAGE_DDL, LastSeen, ParsedMessage, write_messages
from . import keys
from .auth import Credential, Principal, Scope, admit, holding, identify, key_principal
from .context import ApiContext, context
from .problems import ApiProblem
from .ratelimit import RateLimiter

log = logging.getLogger("scope3.api.ingest")
router = APIRouter(tags=["meters"])
Ctx = Annotated[ApiContext, Depends(context)]
MAX_BYTES = 1_048_576  # as the MQTT ingest's default max_payload_bytes
#: Writer threads, each with its connection: while one batch waits for its commit to reach the disk, the next
#: is checked, parsed and written (docs/benchmarks.md, API).
WRITERS = 2
# One transaction's share of requests, by size: about 20,000 readings, the MQTT ingest's largest batch.
_MAX_BATCH_BYTES = 1_000_000

_EXAMPLE = {"readings": [{"ts": "2026-11-26T10:15:00Z", "kwh": 1.25}, {"ts": "2026-11-26T10:16:00Z", "kwh": 1.5}]}


class IngestResult(BaseModel):
    device: str
    readings: int = Field(description="Readings in the payload")
    stored: int = Field(description="Readings stored now")
    duplicates: int = Field(description="Readings already stored (a resent payload), skipped")


@dataclass
class _Request:
    """One request's share of a batch: what it sent, and once written, what it was answered."""

    credential: str
    body: bytes
    future: Future[Received]
    who: Principal | None = None
    message: ParsedMessage | None = None


@dataclass(frozen=True)
class Received:
    """How one request was answered: its caller (None when the key is unknown), and what it stored or the
    problem that refused it (a key, scope or rate refused; a payload refused and kept in rejects)."""

    who: Principal | None
    result: IngestResult | None = None
    problem: ApiProblem | None = None


class GroupWriter:
    """One writer thread and connection of the tenant's read-write role; ``submit`` a request's credential and
    body and get a future of how it was answered, resolved after the commit that holds it.

    The keys of a whole batch are checked in one query, in the transaction that writes their readings, so a
    key revoked a moment ago writes nothing; a key's device is known only then, so the payloads are parsed
    here too (:func:`scope3lib.meters.contract.parse_payload`, as the MQTT ingest does).
    """

    def __init__(self, engine: Engine, tenant_id: int, slug: str, limiter: RateLimiter) -> None:
        self.engine, self.tenant_id, self.slug, self.limiter = engine, tenant_id, slug, limiter
        self._queue: deque[_Request] = deque()
        self._wake = threading.Condition()
        self._stop = False
        self._seen = LastSeen()
        self._threads = [threading.Thread(target=self._run, name=f"api-ingest-writer-{i}", daemon=True)
                         for i in range(WRITERS)]
        for thread in self._threads:
            thread.start()

    def submit(self, credential: str, body: bytes) -> Future[Received]:
        """Queue a request; it is written even if it is cancelled meanwhile (at least once)."""
        future: Future[Received] = Future()
        with self._wake:
            self._queue.append(_Request(credential, body, future))
            self._wake.notify()
        return future

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def _take(self) -> list[_Request]:
        with self._wake:
            while not self._queue and not self._stop:
                self._wake.wait()
            batch: list[_Request] = []
            size = 0
            while self._queue and size < _MAX_BATCH_BYTES:
                item = self._queue.popleft()
                batch.append(item)
                size += len(item.body)
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
                self._write(conn, batch)
            except BaseException as exc:  # every request of the batch fails; the gateway sends it again
                log.warning("HTTP ingest batch not written (%s)", str(exc).splitlines()[0] if str(exc) else exc)
                self._seen.forget()
                if conn is not None:
                    conn.close()
                conn = None
                for r in batch:
                    if not r.future.done():  # a request whose client went away is cancelled
                        r.future.set_exception(exc)
        if conn is not None:
            conn.close()

    def _admit(self, cur: psycopg.Cursor[Any], batch: list[_Request]) -> list[_Request]:
        """The requests whose key is live and may ingest now, parsed; the others answered with their problem."""
        records = keys.verify_many(cur, {r.credential for r in batch})
        admitted = []
        for r in batch:
            try:
                r.who = key_principal(records[r.credential])
                admit(self.limiter, r.who, Scope.INGEST)
            except ApiProblem as problem:
                if not r.future.done():
                    r.future.set_result(Received(r.who, problem=problem))
                continue
            # An ingest key always has its device (ck_api_keys_device; a removed device takes its keys with it).
            assert r.who.device is not None
            r.message = _parse(r.who.device, readings_topic(self.slug, r.who.device), r.body, self.slug)
            admitted.append(r)
        return admitted

    def _write(self, conn: psycopg.Connection, batch: list[_Request]) -> None:
        with conn.cursor() as cur:
            admitted = self._admit(cur, batch)
        devices = {r.who.device: r.who for r in admitted if r.who is not None}

        def resolve(tenant: str, device: str) -> tuple[int, int] | str:
            who = devices[device]
            assert who.device_id is not None
            return f"device {device!r} of tenant {tenant!r} is revoked" if who.device_revoked \
                else (who.device_id, self.tenant_id)

        messages = [r.message for r in admitted if r.message is not None]
        written = write_messages(conn, messages, resolve, lambda tenant: self.tenant_id, self._seen.marker(),
                                 returning=True)  # commits, also when nothing was admitted (the key check)
        stored = written.stored or set()
        for r in admitted:  # a reading two requests of the batch share is counted for the first
            assert r.who is not None and r.message is not None
            m = r.message
            mine = {(r.who.device_id, ts) for ts, _ in m.readings or ()} & stored if m.reason is None else set()
            stored -= mine
            if r.future.done():
                continue
            if m.reason is not None:
                problem = ApiProblem(422, "Refused reading", f"{m.reason} (kept in rejects)", field="body")
                r.future.set_result(Received(r.who, problem=problem))
            else:
                n = len(m.readings or ())
                r.future.set_result(Received(r.who, IngestResult(device=r.message.device or "", readings=n,
                                                                 stored=len(mine), duplicates=n - len(mine))))


def _parse(device: str, topic: str, body: bytes, slug: str) -> ParsedMessage:
    message = ParsedMessage(topic=topic, tenant=slug, device=device, readings=None, reason=None, payload=body)
    try:
        message.readings = parse_payload(body, device, max_bytes=MAX_BYTES)
        message.payload = None
    except InvalidReading as exc:
        message.reason = exc.reason
    return message


async def receive(ctx: ApiContext, credential: str, body: bytes) -> Received:
    """Store a request's readings for the device of its key; answered once committed."""
    if not credential.startswith("s3k_"):  # a hub token: the hub's roles grant no ingest scope
        who = await run_in_threadpool(identify, ctx, credential)
        try:
            holding(who, Scope.INGEST)
        except ApiProblem as problem:
            return Received(who, problem=problem)
    return await asyncio.wrap_future(ctx.ingest.submit(credential, body))


@router.post("/iot/ingest/", response_model=IngestResult, summary="Store a device's readings (device key)",
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "description": "One reading {ts, kwh} or {readings: [...]}, "
                            "as the MQTT contract (docs/meters.md#the-contract)"}, "example": _EXAMPLE}}}})
async def ingest(request: Request, ctx: Ctx, credential: Credential) -> Any:
    # Requests with an API key are answered by scope3lib.api.hotpath before they get here; this route is
    # their declaration (OpenAPI), and answers the rest (a hub token, no credential) through the same code.
    got = await receive(ctx, credential, await request.body())  # at most MAX_BYTES (api.bodylimit)
    request.state.principal = got.who
    if got.problem is not None:
        raise got.problem
    return got.result

"""Storing meter messages: the one code path of both ways in, the MQTT ingest service and the API's HTTP ingest.

A message arrives parsed (:func:`scope3lib.meters.contract.parse_payload`) or with the reason it was
refused; :func:`write_messages` writes a batch of them in one transaction: the readings through a temporary
stage (``COPY`` cannot write a table with row-level security) and ``INSERT ... ON CONFLICT DO NOTHING``,
so a replayed message stores nothing twice; every refused message, or one whose device cannot be
accepted, into ``rejects`` with its reason; and the devices' ``last_seen``. The caller acknowledges the
messages (PUBACK, or an HTTP 2xx) only after this returns, which is what makes delivery at least once.

The MQTT ingest calls it with the ingest role and resolves (tenant, device) across tenants; the API calls
it with the tenant's read-write role, where row-level security confines every row to that tenant.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

#: Run once on each connection that writes readings (a session's temporary table, emptied at commit).
STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
    "(device_id bigint, ts timestamptz, tenant_id bigint, kwh float8) ON COMMIT DELETE ROWS"
)

#: devices.last_seen is written at most this often per device: one UPDATE per device per batch would cost
#: more than the readings themselves at full speed. Status checks tolerate this staleness.
LAST_SEEN_EVERY_S = 5.0

Reading = tuple[dt.datetime, float]
#: (tenant slug, device key) -> (device id, tenant id), or the reason the device cannot be accepted.
Resolver = Callable[[str, str], "tuple[int, int] | str"]


class Message(Protocol):
    """A received message: its topic and payload, and either its readings or the reason it was refused."""

    topic: str
    tenant: str | None
    device: str | None
    readings: list[Reading] | None
    reason: str | None
    payload: bytes | None  # the raw payload, kept for a reject (None once parsed)


@dataclass
class ParsedMessage:
    """A :class:`Message` of the HTTP ingest (the MQTT ingest has its own, with broker bookkeeping)."""

    topic: str
    tenant: str | None
    device: str | None
    readings: list[Reading] | None
    reason: str | None
    payload: bytes | None


class LastSeen:
    """When each device's ``last_seen`` was last written, for :func:`write_messages`' ``mark_seen``."""

    def __init__(self, every_s: float = LAST_SEEN_EVERY_S) -> None:
        self.every_s = every_s
        self._written: dict[int, float] = {}

    def marker(self) -> Callable[[int], bool]:
        """``mark_seen`` for one batch: true for a device not written within ``every_s``, once."""
        now, written, every_s = time.monotonic(), self._written, self.every_s

        def mark_seen(device_id: int) -> bool:
            if now - written.get(device_id, 0.0) >= every_s:
                written[device_id] = now
                return True
            return False

        return mark_seen

    def forget(self) -> None:
        """After a batch was refused: its marks were never written."""
        self._written.clear()


@dataclass(frozen=True)
class Written:
    """What one committed batch wrote."""

    inserted: int  # rows inserted
    offered: int  # rows offered (the rest were already stored: replays)
    reasons: list[str]  # of its rejects
    stored: set[tuple[int, dt.datetime]] | None = None  # (device id, ts) of the rows inserted, when asked for


def write_messages(conn: psycopg.Connection, batch: Sequence[Message], resolve: Resolver,
                   tenant_id_of: Callable[[str | None], int | None],
                   mark_seen: Callable[[int], bool], *, returning: bool = False) -> Written:
    """Write ``batch`` in one transaction and commit it.

    ``resolve`` maps a message's (tenant, device) to ids or a reason; a message it refuses gets that
    reason. ``tenant_id_of`` gives the tenant a reject is filed under (None: unknown). ``mark_seen(device
    id)`` says whether to update that device's ``last_seen`` in this batch (callers limit how often).
    With ``returning``, ``Written.stored`` holds the keys of the rows inserted (the HTTP ingest tells each
    request what it stored).
    """
    rows: list[tuple[int, dt.datetime, int, float]] = []
    seen: list[int] = []
    rejects: list[tuple[str, int | None, bytes, str]] = []
    for m in batch:
        if m.reason is None and m.readings is not None and m.tenant and m.device:
            resolved = resolve(m.tenant, m.device)
            if not isinstance(resolved, str):
                device_id, tenant_id = resolved
                if mark_seen(device_id):
                    seen.append(device_id)
                rows.extend([(device_id, ts, tenant_id, kwh) for ts, kwh in m.readings])
                continue
            m.reason = resolved
        assert m.reason is not None
        payload = m.payload if m.payload is not None else readings_json(m.readings)
        rejects.append((m.topic, tenant_id_of(m.tenant), payload, m.reason))
    inserted = 0
    stored: set[tuple[int, dt.datetime]] = set()
    with conn.cursor() as cur:
        if rows:
            _copy(cur, "readings_stage", rows)
            cur.execute(
                "INSERT INTO readings (device_id, ts, tenant_id, kwh) "
                "SELECT device_id, ts, tenant_id, kwh FROM readings_stage ON CONFLICT DO NOTHING"
                + (" RETURNING device_id, ts" if returning else "")
            )
            inserted = cur.rowcount
            if returning:
                stored = {(int(d), ts) for d, ts in cur.fetchall()}
            if seen:
                cur.execute("UPDATE devices SET last_seen = now() WHERE id = ANY(%s)", (sorted(seen),))
        if rejects:
            cur.executemany(
                "INSERT INTO rejects (topic, tenant_id, payload, reason) VALUES (%s, %s, %s, %s)", rejects
            )
    conn.commit()
    return Written(inserted, len(rows), [r[3] for r in rejects], stored if returning else None)


def _copy(cur: psycopg.Cursor, table: str, rows: list[tuple[int, dt.datetime, int, float]]) -> None:
    with cur.copy(f"COPY {table} (device_id, ts, tenant_id, kwh) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(["int8", "timestamptz", "int8", "float8"])
        write_row = cp.write_row
        for r in rows:
            write_row(r)


def readings_json(readings: list[Reading] | None) -> bytes:
    """Re-serialise parsed readings for a reject (the raw payload of valid messages is not kept)."""
    items = [{"ts": ts.isoformat(), "kwh": kwh} for ts, kwh in readings or []]
    return json.dumps({"readings": items}).encode()

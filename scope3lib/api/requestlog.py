"""Every request, logged: key prefix or hub user, method, route, status and time, in ``api_requests``.

The log is written by a background thread once a second, in one transaction with the keys' ``last_used_at``,
so a request pays nothing for it; rows older than the retention are pruned once an hour, which keeps the
table bounded. Each request is also one line of the service's own log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .. import db

log = logging.getLogger("scope3.api.requests")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RequestLog:
    def __init__(self, engine: Engine, tenant_id: int, retention_days: int, flush_s: float = 1.0) -> None:
        self.engine, self.tenant_id, self.retention_days, self.flush_s = engine, tenant_id, retention_days, flush_s
        # (at, principal, method, route, status, ms); bounded should the database be away
        self._rows: deque[tuple[dt.datetime, str, str, str, int, float]] = deque(maxlen=100_000)
        self._used: dict[int, dt.datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0

    def record(self, principal: str, key_id: int | None, method: str, route: str, status: int, ms: float) -> None:
        at = dt.datetime.now(dt.UTC)
        self._rows.append((at, principal, method, route, status, ms))
        if key_id is not None:
            self._used[key_id] = at
        log.info("%s %s %s %d %.1fms", principal, method, route, status, ms)

    def flush(self) -> None:
        rows = [self._rows.popleft() for _ in range(len(self._rows))]
        used, self._used = self._used, {}
        prune = time.monotonic() - self._pruned > 3600
        if not rows and not used and not prune:
            return
        try:
            self._write(rows, used, prune)
        except BaseException:
            self._rows.extendleft(reversed(rows))  # kept for the next flush (the oldest go first when full)
            self._used = {**used, **self._used}
            raise

    def _write(self, rows: list[tuple[dt.datetime, str, str, str, int, float]], used: dict[int, dt.datetime],
               prune: bool) -> None:
        # One statement per table, whatever the number of rows: a second's requests are thousands under load,
        # and a row at a time through SQLAlchemy cost a tenth of the API's CPU (docs/benchmarks.md, API).
        with db.raw_cursor(self.engine) as cur:
            if rows:  # one JSON text: orjson writes thousands of rows in microseconds, psycopg's arrays in ms
                cur.execute("INSERT INTO api_requests (tenant_id, at, principal, method, route, status, duration_ms) "
                            "SELECT %s, (r->>0)::timestamptz, r->>1, r->>2, r->>3, (r->>4)::int, (r->>5)::float8 "
                            "FROM json_array_elements(%s::json) AS r", (self.tenant_id, orjson.dumps(rows).decode()))
            if used:
                cur.execute("UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.at) "
                            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS u(id, at) WHERE k.id = u.id",
                            (list(used), list(used.values())))
            if prune:
                cur.execute("DELETE FROM api_requests WHERE at < now() - make_interval(days => %s)",
                            (self.retention_days,))
                self._pruned = time.monotonic()
            cur.connection.commit()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except (sa.exc.SQLAlchemyError, psycopg.Error) as exc:  # the rows stay queued; the next flush retries
                log.warning("request log not written (%s); retrying", str(exc).splitlines()[0])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="api-request-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except (sa.exc.SQLAlchemyError, psycopg.Error):
            log.warning("request log: the last requests were not written")


class RequestLogMiddleware:
    """ASGI middleware: times each HTTP request and records it with the route template it matched."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], requests: RequestLog) -> None:
        self.app, self.requests = app, requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            who = (scope.get("state") or {}).get("principal")
            self.requests.record(who.label if who else "anonymous", who.key_id if who else None, scope["method"],
                                 route, status, (time.perf_counter() - started) * 1000)

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

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("scope3.api.requests")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class RequestLog:
    def __init__(self, engine: Engine, tenant_id: int, retention_days: int, flush_s: float = 1.0) -> None:
        self.engine, self.tenant_id, self.retention_days, self.flush_s = engine, tenant_id, retention_days, flush_s
        self._rows: deque[dict[str, Any]] = deque(maxlen=100_000)  # bounded should the database be away
        self._used: dict[int, dt.datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned = 0.0

    def record(self, principal: str, key_id: int | None, method: str, route: str, status: int, ms: float) -> None:
        at = dt.datetime.now(dt.UTC)
        self._rows.append({"t": self.tenant_id, "at": at, "p": principal, "m": method, "r": route, "s": status,
                           "d": ms})
        if key_id is not None:
            self._used[key_id] = at
        log.info("%s %s %s %d %.1fms", principal, method, route, status, ms)

    def flush(self) -> None:
        rows = [self._rows.popleft() for _ in range(len(self._rows))]
        used, self._used = self._used, {}
        prune = time.monotonic() - self._pruned > 3600
        if not rows and not used and not prune:
            return
        with self.engine.begin() as conn:
            if rows:
                conn.execute(sa.text("INSERT INTO api_requests (tenant_id, at, principal, method, route, status, "
                                     "duration_ms) VALUES (:t, :at, :p, :m, :r, :s, :d)"), rows)
            if used:
                conn.execute(sa.text("UPDATE api_keys SET last_used_at = greatest(last_used_at, :at) WHERE id = :i"),
                             [{"i": i, "at": at} for i, at in used.items()])
            if prune:
                conn.execute(sa.text("DELETE FROM api_requests WHERE at < now() - make_interval(days => :d)"),
                             {"d": self.retention_days})
                self._pruned = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except sa.exc.SQLAlchemyError as exc:  # the next flush retries; the rows stay queued only in memory
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
        except sa.exc.SQLAlchemyError:
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

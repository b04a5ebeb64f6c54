"""The two requests integrations make in loops, answered without the framework's routing: an ASGI middleware.

Listing emission entries (``GET /emission-entries``) and HTTP meter ingest (``POST /iot/ingest/``) with an
API key are most of an integration's traffic. FastAPI resolves each route's dependencies and parameters and
passes the response through its middleware, which on two shared cores cost as much CPU as the query itself
(docs/benchmarks.md, API). This middleware answers those two requests directly, with the same functions as
their declared routes: the query is validated by the route's own model (:class:`EntryFilter`), the caller
checked and admitted by :mod:`scope3lib.api.auth`, the page built by :func:`json_page`, the readings stored by
:func:`scope3lib.api.ingest.receive`, refusals answered as the same problems, every request logged.

Anything it does not recognise as well formed (another credential than an API key, a parameter the model
refuses, an unexpected failure) goes on to the declared route, which answers it, so each error message has
one home. The routes stay declared for the OpenAPI document.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import anyio.to_thread
from pydantic import ValidationError
from starlette.datastructures import URL

from .. import db, pages
from . import ingest
from .auth import Principal, Scope, admit, identify
from .context import ApiContext
from .inventory import EntryFilter
from .pagination import json_page
from .problems import ApiProblem, problem_response

AsgiScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[AsgiScope, Receive, Send], Awaitable[None]]

_JSON = (b"content-type", b"application/json")


class Declined(Exception):
    """The request is not one the hot path answers: the declared route will."""


def api_key(scope: AsgiScope) -> str | None:
    """The API key of ``Authorization: Bearer s3k_...``, else None."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            credential = credential.strip()
            return credential if scheme.lower() == "bearer" and credential.startswith("s3k_") else None
    return None


def _query(scope: AsgiScope) -> dict[str, str]:
    """The query string as FastAPI reads it for single-valued parameters; a repeated or blank one declines."""
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or "" in query.values():
        raise Declined
    return query


class HotPath:
    def __init__(self, app: App, ctx: ApiContext, prefix: str) -> None:
        self.app, self.ctx = app, ctx
        self.routes: dict[tuple[str, str], tuple[str, Callable[..., Awaitable[tuple[Principal | None, int]]]]] = {
            ("GET", f"{prefix}/emission-entries"): ("/emission-entries", self._list),
            ("POST", f"{prefix}/iot/ingest/"): ("/iot/ingest/", self._ingest),
        }
        self.prefix = prefix

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        hot = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        key = api_key(scope) if hot else None
        if hot is None or key is None:
            await self.app(scope, receive, send)
            return
        route, answer = hot
        started = time.perf_counter()
        try:
            who, status = await answer(scope, receive, send, key)
        except Declined as declined:
            await self.app(scope, _replay(declined.args[0]) if declined.args else receive, send)
            return
        self.ctx.requests.record(who.label if who else "anonymous", who.key_id if who else None, scope["method"],
                                 self.prefix + route, status, (time.perf_counter() - started) * 1000)

    async def _list(self, scope: AsgiScope, receive: Receive, send: Send, key: str) -> tuple[Principal | None, int]:
        ctx = self.ctx
        try:
            query = EntryFilter.model_validate(_query(scope))
            select, params = query.sql(ctx.tenant_id)
        except (ValidationError, ApiProblem) as exc:
            raise Declined from exc
        who: Principal | None = None

        def page() -> tuple[str, str | None]:
            nonlocal who
            with db.raw_cursor(ctx.read, autocommit=True) as cur:
                who = identify(ctx, key, cur)
                admit(ctx.limiter, who, Scope.READ)
                return json_page(cur, select, params, query.limit)

        try:
            body, cursor = await anyio.to_thread.run_sync(page)
        except ApiProblem as problem:
            return who, await _problem(problem, scope, receive, send)
        except Exception as exc:  # the declared route meets it again and answers it as its problem
            raise Declined from exc
        headers = [_JSON]
        if cursor is not None:
            link = pages.next_link(str(URL(scope=scope)), limit=query.limit, cursor=cursor)
            headers.append((b"link", link.encode("latin-1")))
        await _send(send, 200, body.encode(), headers)
        return who, 200

    async def _ingest(self, scope: AsgiScope, receive: Receive, send: Send, key: str) -> tuple[Principal | None, int]:
        body = await _body(receive)  # bounded by api.bodylimit, outside
        if body is None:  # the client went away before it finished sending: nothing to store or answer
            return None, 499
        try:
            got = await ingest.receive(self.ctx, key, body)
        except Exception as exc:
            raise Declined(body) from exc
        if got.problem is not None:
            return got.who, await _problem(got.problem, scope, receive, send)
        assert got.result is not None
        await _send(send, 200, got.result.model_dump_json().encode(), [_JSON])
        return got.who, 200


async def _body(receive: Receive) -> bytes | None:
    """The request's body; None when the client disconnected first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the declared route the body the hot path already read."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _problem(problem: ApiProblem, scope: AsgiScope, receive: Receive, send: Send) -> int:
    response = problem_response(problem.status, problem.title, problem.detail, problem.errors, problem.headers)
    await response(scope, receive, send)
    return problem.status

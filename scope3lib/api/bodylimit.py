"""How large a request may be: every body is bounded, and one too large is refused as a problem (413).

Without a bound one request could hold the service's memory. Most routes take JSON of a few MB at most
(10,000 activity rows or suppliers), so :data:`MAX_REQUEST_BYTES` applies to all of them; a route with a
limit of its own says so (a supplier's upload link streams up to 512 MiB, meter readings take 1 MiB). A body
announced larger by its ``Content-Length`` is refused before it is read; one that turns out larger is refused
when the limit is crossed, before the rest is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .problems import problem_response

AsgiScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[AsgiScope, Receive, Send], Awaitable[None]]

#: The largest request body a route takes unless it says otherwise.
MAX_REQUEST_BYTES = 16 * 1024 * 1024


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware bounding request bodies: ``limit`` bytes, or ``routes[prefix]`` for paths under it."""

    def __init__(self, app: App, limit: int = MAX_REQUEST_BYTES, routes: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.routes = app, limit, dict(routes or {})

    def limit_of(self, path: str) -> int:
        return next((n for prefix, n in self.routes.items() if path.startswith(prefix)), self.limit)

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        announced = next((v for k, v in scope["headers"] if k == b"content-length"), b"0")
        if announced.isdigit() and int(announced) > limit:
            await _refuse(limit, scope, receive, send)
            return
        received, started, over = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _TooLarge
            return message

        async def noting(message: Message) -> None:
            nonlocal started
            if over and not started:  # the route's own answer to a body it could not read (FastAPI: 400)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noting)
        except _TooLarge:
            if started:
                raise
        if over and not started:
            await _refuse(limit, scope, receive, send)


async def _refuse(limit: int, scope: AsgiScope, receive: Receive, send: Send) -> None:
    response = problem_response(413, "Payload too large", f"this request's body is larger than {limit:,} bytes, the "
                                "most this route takes: send the data in several requests")
    await response(scope, receive, send)

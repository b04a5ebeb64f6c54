"""The PACT v3 host of a tenant's API service: ``<api>/pact`` is the tenant's PACT base URL (docs/pact.md).

* ``GET  /pact/.well-known/openid-configuration``: where the token endpoint is.
* ``POST /pact/auth/token``: OAuth 2 client credentials (HTTP Basic, or ``client_id`` and ``client_secret`` in
  the form body) for a bearer token that expires (:mod:`scope3lib.pact.clients`).
* ``GET  /pact/3/footprints`` (filters, ``limit``, ``Link: <...>; rel="next"``), ``GET /pact/3/footprints/{id}``
  (:mod:`scope3lib.pact.store`), ``POST /pact/3/events`` (CloudEvents; a RequestCreated is answered later by a
  RequestFulfilled or RequestRejected POSTed to the partner's ``/3/events``; a RequestFulfilled or
  RequestRejected answering one of the tenant's data requests is landed by
  :func:`scope3lib.engagement.pact.answered`, as a pending submission or a rejected request).

Errors are the spec's Error objects (``{"code": ..., "message": ...}``), the token endpoint's the OAuth ones.
HTTPS only (spec section 5.2): a request that did not come over TLS is refused with 403 on every route, not
redirected (a redirect would already have sent the credentials in clear), unless ``SCOPE3_PACT_ALLOW_HTTP``
allows it for development. Every exchange is recorded in ``pact_exchanges``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from scope3lib.api.auth import Principal
from scope3lib.api.context import ApiContext, context
from scope3lib.engagement import pact as engagement_pact
from scope3lib.errors import EngagementError, PactError
from scope3lib.pact import clients, events, recipient, store
from scope3lib.pact.filters import FootprintFilter
from scope3lib.pact.pagination import paging
from scope3lib.pages import next_link

log = logging.getLogger("scope3.pact")

PREFIX = "/pact"
#: Seconds between the attempts to deliver an answer to a partner (exponential back-off), then it is given up.
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
SENDERS = 4
PENDING = 1000  # requests waiting for an answer; more are refused (500) until the senders catch up


@dataclass
class HostState:
    """The host's settings and its senders: daemon threads taking requests to answer from a bounded queue, so
    a partner that is down delays neither other answers much nor the service's shutdown (pending answers are
    lost when the service stops: the spec's 72 hours of retries need a queue that outlives the process)."""

    allow_http: bool
    retry_delays: tuple[float, ...] = RETRY_DELAYS
    pending: queue.Queue[Callable[[], None]] = field(default_factory=lambda: queue.Queue(PENDING))

    def start(self) -> None:
        for n in range(SENDERS):
            threading.Thread(target=self._send, name=f"pact-send-{n}", daemon=True).start()

    def _send(self) -> None:
        while True:
            task = self.pending.get()
            try:
                task()
            except Exception:  # a sender outlives any one answer (even one whose failure could not be recorded)
                log.exception("PACT sender: an answer failed")

    def submit(self, task: Callable[[], None]) -> None:
        try:
            self.pending.put_nowait(task)
        except queue.Full:
            raise HostBusy(f"{PENDING} requests are waiting for their answers; send this one again later") from None


class HostBusy(PactError):
    """Too many requests wait for their answers (500 InternalError: the spec has no code for "busy")."""

    code = "InternalError"
    http_status = 500


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


class PactRoute(APIRoute):
    """Refuses plain HTTP before anything else, and answers every error with the spec's Error object."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            state: HostState = request.app.state.pact
            if request.url.scheme != "https" and not state.allow_http:
                return _error(403, "AccessDenied", "PACT is served over HTTPS only (spec section 5.2): this request "
                              "came over plain HTTP and nothing of it was processed; use the host's https:// URL")
            try:
                return await handler(request)
            except PactError as error:
                headers = {"WWW-Authenticate": 'Bearer realm="pact"'} if error.http_status == 401 else None
                return JSONResponse(error.error_object(), status_code=error.http_status, headers=headers)
            except Exception:
                log.exception("PACT host failed on %s %s", request.method, request.url.path)
                return _error(500, "InternalError", "the host failed; its operator's log has the details")

        return route


class ErrorBody(BaseModel):
    """The PACT v3 Error object (spec section 4.13)."""

    code: str = Field(description="BadRequest, AccessDenied, TokenExpired, NotFound, InternalError or NotImplemented")
    message: str


#: What the PACT routes answer on errors (the spec's Error object, not the rest of the API's problem details).
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": title, "content": {"application/json": {}}}
    for status, title in ((400, "BadRequest"), (401, "Not authenticated (BadRequest or TokenExpired)"),
                          (403, "AccessDenied (also every request over plain HTTP)"), (404, "NotFound"),
                          (500, "InternalError"))
}

router = APIRouter(prefix=PREFIX, route_class=PactRoute, tags=["PACT v3"], responses=ERRORS)
Ctx = Annotated[ApiContext, Depends(context)]


def mount(app: FastAPI, prefix: str = "", *, allow_http: bool = False) -> None:
    """Serve the PACT host of ``app``'s tenant under ``<prefix>/pact``."""
    if allow_http:
        log.warning("SCOPE3_PACT_ALLOW_HTTP is set: the PACT host answers over plain HTTP, so client secrets and "
                    "tokens may cross the network in clear. For development only; never in production.")
    app.state.pact = HostState(allow_http)
    app.state.pact.start()
    app.include_router(router, prefix=prefix)


# ----------------------------------------------------------------------------------------------------------
# Authentication (spec section 5.5)


@router.get("/.well-known/openid-configuration", name="pact_discovery")
def discovery(request: Request) -> dict[str, Any]:
    """The OpenID Provider Configuration: where the token endpoint is (the host issues no ID tokens, so no
    ``jwks_uri``; clients read only ``token_endpoint``)."""
    token = str(request.url_for("pact_token"))
    return {"issuer": token.removesuffix("/auth/token"), "token_endpoint": token,
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"]}


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="pact"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _credentials(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return (client_id, secret) if sep else None
    if form.get("client_id") and form.get("client_secret"):
        return form["client_id"], form["client_secret"]
    return None


@router.post("/auth/token", name="pact_token")
async def token(request: Request, ctx: Ctx) -> JSONResponse:
    """OAuth 2 client credentials grant (RFC 6749 section 4.4)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return _oauth_error(400, "invalid_request", "send the form body grant_type=client_credentials as "
                            "application/x-www-form-urlencoded")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "this host grants client_credentials only")
    given = _credentials(request, form)
    if given is None:
        return _oauth_error(401, "invalid_client", "send the client's credentials as Authorization: Basic "
                            "base64(client_id:client_secret)")
    try:
        access, lasts = await run_in_threadpool(clients.issue_token, ctx.write, ctx.slug, *given)
    except clients.InvalidClient as refused:
        await run_in_threadpool(clients.record, ctx.write, ctx.tenant_id, "in", given[0][:100], "token", "refused",
                                http_status=401, error=str(refused))
        return _oauth_error(401, "invalid_client", str(refused))
    await run_in_threadpool(clients.record, ctx.write, ctx.tenant_id, "in", given[0], "token", "ok", http_status=200)
    return JSONResponse({"access_token": access, "token_type": "Bearer", "expires_in": lasts},
                        headers={"Cache-Control": "no-store"})


def caller(request: Request, ctx: Ctx) -> clients.Caller:
    """The client whose bearer token the request carries (401 with an Error object otherwise)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise clients.InvalidToken("send Authorization: Bearer <access token from the token endpoint>")
    found = clients.verify_token(ctx.write, ctx.tenant_id, value.strip())
    request.state.principal = Principal(label=f"pact:{found.client_id}", scopes=frozenset())
    return found


Client = Annotated[clients.Caller, Depends(caller)]


# ----------------------------------------------------------------------------------------------------------
# Footprints (spec sections 5.6 and 5.7)


@router.get("/3/footprints", name="pact_list")
def list_footprints(request: Request, ctx: Ctx, who: Client) -> JSONResponse:
    """The tenant's footprints the filters select, a page at a time."""
    params = request.query_params.multi_items()
    flt = FootprintFilter.from_query(params)
    limit, offset = paging(params)
    docs, following = store.list_footprints(ctx.read, ctx.slug, flt, limit=limit, offset=offset)
    headers = {"Link": next_link(str(request.url), offset=following)} if following is not None else None
    clients.record(ctx.write, ctx.tenant_id, "in", who.client_id, "list", "ok", url=str(request.url),
                   http_status=200, summary={"footprints": len(docs), "ids": [d["id"] for d in docs[:50]]})
    return JSONResponse({"data": docs}, headers=headers)


@router.get("/3/footprints/{footprint_id}", name="pact_get")
def get_footprint(footprint_id: str, ctx: Ctx, who: Client) -> JSONResponse:
    """One footprint by id; 404 NotFound for an id the tenant does not publish."""
    try:
        doc = store.get_footprint(ctx.read, ctx.slug, footprint_id)
    except PactError as missing:
        clients.record(ctx.write, ctx.tenant_id, "in", who.client_id, "get", "refused", http_status=404,
                       summary={"id": footprint_id}, error=str(missing))
        raise
    clients.record(ctx.write, ctx.tenant_id, "in", who.client_id, "get", "ok", http_status=200,
                   summary={"id": footprint_id})
    return JSONResponse({"data": doc})


# ----------------------------------------------------------------------------------------------------------
# Events (spec section 5.8)


@router.post("/3/events", name="pact_events")
async def receive_event(request: Request, ctx: Ctx, who: Client) -> Response:
    """A CloudEvent from a partner: 200 with an empty body when valid; a RequestCreated is answered later."""
    body = await request.body()
    try:
        event = events.parse_event(body, request.headers.get("content-type"))
    except PactError as refused:
        await run_in_threadpool(clients.record, ctx.write, ctx.tenant_id, "in", who.client_id, "event", "refused",
                                http_status=400, error=str(refused)[:2000])
        raise
    landed: dict[str, Any] = {}
    if isinstance(event, events.RequestCreatedEvent):
        state: HostState = request.app.state.pact
        ours, asked = str(request.url_for("pact_events")), event
        state.submit(lambda: _answer(ctx, state, who.client_id, asked, ours))
    elif isinstance(event, events.RequestFulfilledEvent | events.RequestRejectedEvent):
        try:  # an answer to one of this tenant's data requests lands as a pending submission (or a rejection)
            landed = await run_in_threadpool(engagement_pact.answered, ctx.write, who.client_id, event)
        except EngagementError as refused:
            await run_in_threadpool(clients.record, ctx.write, ctx.tenant_id, "in", who.client_id, "event",
                                    "refused", event_type=event.type, event_id=event.id, http_status=400,
                                    summary=_event_summary(event), error=str(refused)[:2000])
            raise PactError(f"event refused: {refused}") from None
    await run_in_threadpool(clients.record, ctx.write, ctx.tenant_id, "in", who.client_id, "event", "ok",
                            event_type=event.type, event_id=event.id, url=event.source, http_status=200,
                            summary={**_event_summary(event), **landed})
    return Response(status_code=200)


def _event_summary(event: events.PactEvent) -> dict[str, Any]:
    if isinstance(event, events.RequestCreatedEvent):
        return {"criteria": event.data.model_dump(mode="json", exclude_none=True)}
    if isinstance(event, events.RequestFulfilledEvent):
        return {"requestEventId": event.data.requestEventId, "pfIds": [fp.id for fp in event.data.pfs]}
    if isinstance(event, events.RequestRejectedEvent):
        return {"requestEventId": event.data.requestEventId, "error": event.data.error.model_dump(mode="json")}
    return {"pfIds": list(event.data.pfIds)}


def partner_base(registered: str | None, source: str) -> str | None:
    """Where a partner's answers go: its registered base URL, else the event's ``source`` (the conformance
    service sends its base URL; the spec's examples the events endpoint itself, ``//host/3/events``)."""
    base = registered or source
    if base.startswith("//"):
        base = "https:" + base
    if not base.startswith(("https://", "http://")):
        return None
    return base.rstrip("/").removesuffix("/3/events")


def _answer(ctx: ApiContext, state: HostState, client_id: str, event: events.RequestCreatedEvent, ours: str) -> None:
    """Fulfil or reject a request, and deliver the answer to the partner (in a sender thread)."""
    try:
        docs, _ = store.list_footprints(ctx.read, ctx.slug, event.data.to_filter())
        if docs:
            answer = events.new_event(events.REQUEST_FULFILLED, ours, {"requestEventId": event.id, "pfs": docs})
        else:
            answer = events.request_rejected(ours, event.id, "NotFound", "no footprint of this host matches the "
                                             "request's criteria")
        found = clients.partner(ctx.write, ctx.tenant_id, client_id)
        base = partner_base(found.base_url, event.source)
        if base is None or (base.startswith("http://") and not state.allow_http):
            raise _Undeliverable(f"no https:// address to answer to: the event's source is {event.source!r} and "
                                 f"client {client_id} has no partner URL (scope3 pact client create --partner-url)")
        deliver(ctx, state, found, base, answer)
    except Exception as error:
        log.warning("PACT request %s of %s not answered: %s", event.id, client_id, error)
        clients.record(ctx.write, ctx.tenant_id, "out", client_id, "event", "failed", event_id=event.id,
                       error=str(error)[:2000])


class _Undeliverable(PactError):
    """An answer this host cannot deliver to the partner."""


def _partner_token(http: httpx.Client, base: str, found: clients.Partner) -> str | None:
    if not found.partner_client_id or not found.partner_client_secret:
        return None
    got = http.post(recipient.token_endpoint(http, base), data={"grant_type": "client_credentials"},
                    auth=(found.partner_client_id, found.partner_client_secret))
    got.raise_for_status()
    return str(got.json()["access_token"])


def deliver(ctx: ApiContext, state: HostState, found: clients.Partner, base: str, answer: dict[str, Any]) -> None:
    """POST an event to ``<base>/3/events`` with a token from the partner, retrying with exponential back-off."""
    url, last = f"{base}/3/events", "not tried"
    for attempt, delay in enumerate((0.0, *state.retry_delays)):
        time.sleep(delay)
        status = None
        try:
            with httpx.Client(timeout=15) as http:
                bearer = _partner_token(http, base, found)
                headers = {"Content-Type": events.MEDIA_TYPE}
                if bearer:
                    headers["Authorization"] = f"Bearer {bearer}"
                sent = http.post(url, json=answer, headers=headers)
                status = sent.status_code
                if sent.is_success:
                    clients.record(ctx.write, ctx.tenant_id, "out", found.client_id, "event", "ok",
                                   event_type=answer["type"], event_id=answer["id"], url=url, http_status=status,
                                   summary={"requestEventId": answer["data"]["requestEventId"],
                                            "attempts": attempt + 1, "pfs": len(answer["data"].get("pfs", []))})
                    return
                last = f"HTTP {status}: {sent.text[:300]}"
                if 400 <= status < 500 and status not in (401, 408, 429):
                    break  # the partner refuses this event; sending it again changes nothing
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        log.info("PACT answer %s to %s: attempt %d failed (%s)", answer["id"], url, attempt + 1, last)
    clients.record(ctx.write, ctx.tenant_id, "out", found.client_id, "event", "failed", event_type=answer["type"],
                   event_id=answer["id"], url=url, http_status=status, error=last[:2000],
                   summary={"requestEventId": answer["data"]["requestEventId"]})

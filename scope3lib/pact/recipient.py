"""The recipient side of PACT v3: a tenant asking a partner's host for footprints (docs/pact.md).

A partner is a row of ``pact_clients`` whose partner fields say where its PACT host is and which credentials it
issued to this tenant (``scope3 pact client create ... --partner-url URL --partner-client-id ID`` or ``scope3
pact client partner``). :meth:`Recipient.for_client` reads them; then :meth:`~Recipient.list_footprints`
follows the ``Link`` pages to the end, :meth:`~Recipient.get_footprint` fetches one,
:meth:`~Recipient.request` sends a RequestCreated event whose answer the partner POSTs to this tenant's own
``/3/events``. Every footprint received is validated by :mod:`scope3lib.pact.model` (a partner's invalid
footprint is refused with its path, like an import), and every call is recorded in ``pact_exchanges``.

The token comes from the token endpoint of the partner's discovery document (else ``<base>/auth/token``) and is
kept until a minute before it expires; a 401 gets one new token and one more try, a transport error or a 5xx
a few more tries with back-off.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.engine import Engine

from scope3lib.errors import FootprintNotFound, PactError, Scope3Error
from scope3lib.pact import clients, events
from scope3lib.pact.filters import FootprintFilter
from scope3lib.pact.model import ProductFootprint, parse_footprint, parse_footprints
from scope3lib.tenancy import tenant_id

RETRY_DELAYS = (0.5, 2.0, 5.0)


class PartnerUnavailable(Scope3Error):
    """A partner's PACT host that cannot be reached or fails (after the retries)."""


class PartnerRefused(PactError):
    """A partner's host refused a call with an Error object (``code`` and its message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"the partner answered {status} {code}: {message}")
        self.http_status, self.code = status, code


def token_endpoint(http: httpx.Client, base_url: str) -> str:
    """A PACT host's token endpoint: the one its OpenID discovery document names, else the spec's
    ``<base>/auth/token``."""
    try:
        found = http.get(f"{base_url}/.well-known/openid-configuration")
        if found.status_code == 200:
            return str(found.json().get("token_endpoint") or f"{base_url}/auth/token")
    except (httpx.HTTPError, ValueError):
        pass  # no discovery document: the spec's default endpoint
    return f"{base_url}/auth/token"


@dataclass
class Recipient:
    """Calls to one partner's PACT host on behalf of one tenant (``engine``: a role that may record exchanges)."""

    engine: Engine
    tenant_id: int
    partner: str  # the partner's client_id in pact_clients, the name the exchange record knows it by
    base_url: str
    client_id: str
    client_secret: str
    verify: ssl.SSLContext | bool = True
    allow_http: bool = False
    _token: tuple[str, float] | None = field(default=None, repr=False)

    @classmethod
    def for_client(cls, engine: Engine, slug: str, client: str, **options: Any) -> Recipient:
        """The partner registered as client ``client`` (client_id or name) of tenant ``slug``."""
        with engine.connect() as conn:
            tid = tenant_id(conn, slug)
        found = clients.partner(engine, tid, client)
        if not (found.base_url and found.partner_client_id and found.partner_client_secret):
            raise PartnerUnavailable(f"client {client!r} of tenant {slug} has no partner URL and credentials: set "
                                     f"them with `scope3 pact client partner {slug} {client} --url ...`")
        return cls(engine, tid, found.client_id, found.base_url.rstrip("/"), found.partner_client_id,
                   found.partner_client_secret, **options)

    def __post_init__(self) -> None:
        if not self.base_url.startswith("https://") and not self.allow_http:
            raise PartnerUnavailable(f"{self.base_url} is not https://: PACT hosts are HTTPS only")

    # -- tokens and calls ---------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return httpx.Client(verify=self.verify, timeout=30)

    def token(self, http: httpx.Client, *, renew: bool = False) -> str:
        """A valid access token of the partner's host (kept until a minute before it expires)."""
        if self._token and not renew and self._token[1] > time.monotonic():
            return self._token[0]
        endpoint = token_endpoint(http, self.base_url)
        got = http.post(endpoint, data={"grant_type": "client_credentials"}, auth=(self.client_id, self.client_secret))
        if got.status_code != 200 or "access_token" not in got.text:
            self._record("token", "refused", endpoint, got.status_code, error=got.text[:500])
            raise PartnerRefused(got.status_code, "BadRequest", f"the token endpoint {endpoint} refused our "
                                 f"credentials: {got.text[:300]}")
        body = got.json()
        lasts = float(body.get("expires_in") or 3600)
        self._token = (str(body["access_token"]), time.monotonic() + max(lasts - 60, lasts / 2))
        return self._token[0]

    def _call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        last, headers = "not tried", dict(kwargs.pop("headers", {}))
        with self._http() as http:
            for delay in (0.0, *RETRY_DELAYS):
                time.sleep(delay)
                try:
                    sent = http.request(method, url, headers={**headers, "Authorization": f"Bearer {self.token(http)}"},
                                        **kwargs)
                    if sent.status_code == 401:  # expired or revoked meanwhile: one new token, one more try
                        renewed = self.token(http, renew=True)
                        sent = http.request(method, url, headers={**headers, "Authorization": f"Bearer {renewed}"},
                                            **kwargs)
                    if sent.status_code < 500:
                        return sent
                    last = f"HTTP {sent.status_code}: {sent.text[:300]}"
                except httpx.TransportError as error:
                    last = f"{type(error).__name__}: {error}"
        self._record("call", "failed", url, None, error=last)
        raise PartnerUnavailable(f"{method} {url} failed after {len(RETRY_DELAYS) + 1} tries: {last}")

    def _refused(self, action: str, sent: httpx.Response, summary: dict[str, Any] | None = None) -> PartnerRefused:
        try:
            body = sent.json()
            code, message = str(body.get("code", "BadRequest")), str(body.get("message", sent.text[:300]))
        except ValueError:
            code, message = "BadRequest", sent.text[:300]
        self._record(action, "refused", str(sent.url), sent.status_code, summary=summary, error=f"{code}: {message}")
        return PartnerRefused(sent.status_code, code, message)

    def _record(self, action: str, status: str, url: str | None, http_status: int | None, **details: Any) -> None:
        clients.record(self.engine, self.tenant_id, "out", self.partner, action, status, url=url,
                       http_status=http_status, **details)

    # -- the actions ----------------------------------------------------------------------------------------

    def list_footprints(self, criteria: FootprintFilter | None = None, *, limit: int | None = None,
                        max_pages: int = 1000) -> list[ProductFootprint]:
        """Every footprint the partner lists for ``criteria``, following its ``Link: rel="next"`` pages."""
        params: list[tuple[str, str]] = (criteria or FootprintFilter()).to_query()
        if limit is not None:
            params.append(("limit", str(limit)))
        url: str | None = str(httpx.URL(f"{self.base_url}/3/footprints", params=params))
        found: list[dict[str, Any]] = []
        pages = 0
        while url and pages < max_pages:
            sent = self._call("GET", url)
            if sent.status_code != 200:
                raise self._refused("list", sent)
            found += sent.json().get("data") or []
            pages += 1
            url = sent.links.get("next", {}).get("url")
        footprints = parse_footprints(found, source=f"{self.base_url}/3/footprints data")
        self._record("list", "ok", f"{self.base_url}/3/footprints", 200,
                     summary={"footprints": len(footprints), "pages": pages, "ids": [fp.id for fp in footprints[:50]]})
        return footprints

    def get_footprint(self, footprint_id: str) -> ProductFootprint:
        """One footprint of the partner; :class:`~scope3lib.errors.FootprintNotFound` when it has none by that id."""
        sent = self._call("GET", f"{self.base_url}/3/footprints/{footprint_id}")
        if sent.status_code == 404:
            self._refused("get", sent, {"id": footprint_id})
            raise FootprintNotFound(footprint_id)
        if sent.status_code != 200:
            raise self._refused("get", sent, {"id": footprint_id})
        footprint = parse_footprint(sent.json().get("data"), source=f"{self.base_url}/3/footprints/{footprint_id}")
        self._record("get", "ok", str(sent.url), 200, summary={"id": footprint_id})
        return footprint

    def request(self, criteria: FootprintFilter, our_events_url: str, comment: str | None = None,
                event_id: str | None = None) -> str:
        """Ask the partner for the footprints ``criteria`` select; its answer comes to ``our_events_url`` (this
        tenant's ``https://.../pact/3/events``). Returns the request event's id (the answer's requestEventId):
        ``event_id`` when given, for a caller that must know it before the answer can arrive."""
        event = events.request_created(our_events_url, criteria, comment, event_id)
        sent = self._call("POST", f"{self.base_url}/3/events", json=event,
                          headers={"Content-Type": events.MEDIA_TYPE})
        summary = {"criteria": event["data"]}
        if sent.status_code != 200:
            raise self._refused("event", sent, summary)
        clients.record(self.engine, self.tenant_id, "out", self.partner, "event", "ok", event_type=event["type"],
                       event_id=event["id"], url=f"{self.base_url}/3/events", http_status=200, summary=summary)
        return str(event["id"])

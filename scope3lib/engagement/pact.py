"""The PACT channel of data requests, end to end (docs/engagement.md, "The PACT channel").

Sending: :func:`send` asks each open request's partner (a ``pact_clients`` row with the partner's host URL and
the credentials it issued to this tenant) for the request's products by a ``RequestCreated`` event
(:class:`scope3lib.pact.recipient.Recipient`, which records the exchange), and keeps the event's id on the
request (``data_requests.pact_event_id``). The answer comes to this tenant's own ``<api>/pact/3/events``.

Receiving: the tenant's PACT host hands each ``RequestFulfilled`` and ``RequestRejected`` event to
:func:`answered`. An answer whose ``requestEventId`` is a request this tenant sent *to that same partner* lands:
footprints (already validated by :mod:`scope3lib.pact.model` when the event was parsed) become a *pending*
submission of the request's supplier (:func:`scope3lib.engagement.submissions.receive`, submitted by
``pact:<client_id>``, so any user of the tenant may approve it and the four-eyes rule holds for users); a
rejection marks the request ``rejected`` with the partner's reason. Any other ``requestEventId`` (unknown, or a
request sent to another partner) changes nothing: the host records it and answers 200, as the spec says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..config import Settings
from ..errors import EngagementError, Scope3Error
from ..pact import events
from ..pact.filters import FootprintFilter
from ..pact.recipient import Recipient
from . import requests, submissions


@dataclass(frozen=True)
class Delivery:
    """One request sent to its partner (``event_id``) or not (``error`` says why; sending again retries)."""

    request_id: int
    partner: str
    event_id: str | None = None
    error: str | None = None

    def sentence(self) -> str:
        if self.event_id:
            return f"request {self.request_id} sent to PACT partner {self.partner} (RequestCreated {self.event_id})"
        return (f"request {self.request_id} NOT sent to PACT partner {self.partner}: {self.error}; it stays open, "
                "send it again with `scope3 engage send SLUG REQUEST_ID`")


def events_url(url: str | None = None, settings: Settings | None = None) -> str:
    """This tenant's PACT events endpoint as partners reach it: ``<api>/pact/3/events`` (``url``, else
    ``engage_public_url``), https:// unless ``pact_allow_http`` (a partner answers nowhere else)."""
    s = settings or Settings()
    ours = f"{(url or requests.base_url(s)).rstrip('/')}/pact/3/events"
    if not ours.startswith("https://") and not s.pact_allow_http:
        raise EngagementError(f"the partner would answer to {ours}, which is not https://: set "
                              "SCOPE3_ENGAGE_PUBLIC_URL (or --url) to the API's https:// address as partners reach it")
    return ours


def pact_product_id(product_id: str) -> str:
    """A product id as a PACT ``productId`` (a URN): a bare GTIN, as purchase extracts carry it, becomes
    ``urn:gtin:...`` (the partner's footprints name it so); anything else is sent as given."""
    text = product_id.strip()
    return f"urn:gtin:{text}" if text.isdigit() and len(text) in (8, 12, 13, 14) else text


def _open(conn: Connection, request_id: int | None) -> list[Any]:
    """The PACT requests to send: the one asked for (unless answered), else every open one not yet sent."""
    if request_id is not None:
        row = conn.execute(sa.text(
            "SELECT r.id, r.channel, r.status, r.product_ids, r.due_date, c.client_id FROM data_requests r LEFT JOIN "
            "pact_clients c ON c.id = r.pact_client_id WHERE r.id = :r"), {"r": request_id}).first()
        if row is None:
            raise EngagementError(f"no data request {request_id} in this tenant (see `scope3 engage list SLUG`)")
        if row.channel != "pact":
            raise EngagementError(f"data request {request_id} goes by {row.channel}, not PACT: its link or template "
                                  "is sent with the message (`scope3 engage remind`)")
        if row.status == "answered":
            raise EngagementError(f"data request {request_id} is answered already: decide on its submission "
                                  "(`scope3 engage submissions SLUG`)")
        return [row]
    return list(conn.execute(sa.text(
        "SELECT r.id, r.product_ids, r.due_date, c.client_id FROM data_requests r JOIN pact_clients c ON "
        "c.id = r.pact_client_id WHERE r.channel = 'pact' AND r.status IN ('sent', 'overdue') AND "
        "r.pact_event_id IS NULL ORDER BY r.id")))


def send(engine: Engine, slug: str, request_id: int | None = None, *, url: str | None = None,
         **options: Any) -> list[Delivery]:
    """Send one PACT request (again: a new event, whose answer replaces the old one's) or every open one not yet
    sent, as ``RequestCreated`` events; ``options`` go to :class:`~scope3lib.pact.recipient.Recipient` (``verify``).
    A partner that cannot be reached leaves its request open and unsent; the others still go."""
    ours = events_url(url)
    with engine.connect() as conn:
        rows = _open(conn, request_id)
    out = []
    for row in rows:
        event_id = str(uuid4())
        # The event's id is on the request before the event leaves: the partner may answer at once.
        with engine.begin() as conn:
            was = conn.execute(sa.text("SELECT status AS st, pact_event_id AS pe, rejected_reason AS why FROM "
                                       "data_requests WHERE id = :r FOR UPDATE"), {"r": row.id}).one()
            conn.execute(sa.text("UPDATE data_requests SET pact_event_id = :e, rejected_reason = NULL, status = CASE "
                                 "WHEN status = 'rejected' THEN 'sent' ELSE status END WHERE id = :r"),
                         {"e": event_id, "r": row.id})
        try:
            partner = Recipient.for_client(engine, slug, str(row.client_id), **options)
            wanted = FootprintFilter(productId=tuple(pact_product_id(p) for p in row.product_ids))
            partner.request(wanted, ours, comment=f"data request {row.id}, due {row.due_date:%Y-%m-%d}",
                            event_id=event_id)
        except Scope3Error as failed:
            with engine.begin() as conn:  # not sent: the request is as it was
                conn.execute(sa.text("UPDATE data_requests SET pact_event_id = :pe, rejected_reason = :why, "
                                     "status = :st WHERE id = :r AND pact_event_id = :e"),
                             {**was._asdict(), "e": event_id, "r": row.id})
            out.append(Delivery(int(row.id), str(row.client_id), error=str(failed)))
            continue
        out.append(Delivery(int(row.id), str(row.client_id), event_id))
    return out


def answered(engine: Engine, client_id: str, event: events.PactEvent) -> dict[str, Any]:
    """Land a partner's answer (``client_id``: the client whose token sent it); returns what happened, for the
    exchange record: ``{"request_id": ..., "submission_id": ...}``, ``{"request_id": ..., "rejected": ...}`` or
    ``{"ignored": why}``. Raises :class:`~scope3lib.errors.EngagementError` for footprints the request refuses
    (none of its products), with nothing stored."""
    if not isinstance(event, events.RequestFulfilledEvent | events.RequestRejectedEvent):
        return {}
    asked = event.data.requestEventId
    with engine.begin() as conn:
        row = conn.execute(sa.text(
            "SELECT r.id, r.supplier_id, r.status FROM data_requests r JOIN pact_clients c ON c.id = r.pact_client_id "
            "WHERE r.pact_event_id = :e AND c.client_id = :c FOR UPDATE OF r"), {"e": asked, "c": client_id}).first()
        if row is None:
            return {"ignored": f"no data request of this tenant was sent to {client_id} as event {asked}"}
        if isinstance(event, events.RequestRejectedEvent):
            reason = f"{event.data.error.code}: {event.data.error.message}"
            conn.execute(sa.text("UPDATE data_requests SET status = 'rejected', rejected_reason = :why WHERE id = :r"),
                         {"why": reason[:2000], "r": row.id})
            return {"request_id": int(row.id), "rejected": reason[:500]}
        sub = submissions.receive(conn, int(row.id), int(row.supplier_id), footprints=list(event.data.pfs),
                                  channel="pact", submitted_by=f"pact:{client_id}",
                                  source=f"RequestFulfilled {event.id} data.pfs")
        return {"request_id": int(row.id), "submission_id": sub.id}

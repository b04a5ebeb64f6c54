"""Data requests to suppliers: what is asked, by which channel, by when, and where each one stands.

A request asks one supplier for product footprints (``products``: the product ids the company buys) or for
an annual disclosure (``year``: scope 1 and 2 emissions and revenue). Channels:

- ``pact``: the supplier runs a PACT host, registered as a partner (``scope3 pact client create`` with its
  URL); the PACT recipient sends it a ``RequestCreated`` event and its fulfilment is received by
  :func:`scope3lib.engagement.submissions.receive` (:func:`pact_requests` lists what to send);
- ``upload``: a tokenised link where the supplier posts JSON (PACT footprints or a disclosure) or the filled
  template; ``template``: the same link, with the spreadsheet template as what is sent.

Status: ``sent`` until something arrives (``answered``), ``overdue`` once the due date has passed without an
answer (:func:`mark_overdue`, also run by :func:`requests` and :func:`remind`), ``rejected`` when its
submission was rejected or the supplier's PACT host rejected the request (``rejected_reason``). Sending mail
is not the platform's: :func:`create` and :func:`remind` return the message and the link for the engagement
lead to send (a PACT request is sent by :mod:`scope3lib.engagement.pact`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..config import Settings
from ..errors import EngagementError
from ..suppliers import records
from . import uploads

KINDS = ("pcf", "disclosure")


@dataclass(frozen=True)
class Sent:
    """A request created or reminded: its id, the link (None for PACT) and the message to send."""

    request_id: int
    supplier: str
    contact_email: str | None
    channel: str
    upload_url: str | None
    expires_at: dt.datetime | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "supplier": self.supplier, "contact_email": self.contact_email,
                "channel": self.channel, "upload_url": self.upload_url,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None, "message": self.message}


def base_url(settings: Settings | None = None) -> str:
    """Where suppliers reach the tenant's API: ``engage_public_url``, else ``http://api_host:api_port``."""
    s = settings or Settings()
    return (s.engage_public_url or f"http://{s.api_host}:{s.api_port}").rstrip("/")


def _what(kind: str, products: list[str], year: int | None) -> str:
    if kind == "pcf":
        return "product carbon footprints (PACT v3) of " + ", ".join(products)
    return f"your {year} scope 1 and scope 2 emissions (kg CO2e) and revenue"


def message(supplier: str, kind: str, products: list[str], year: int | None, due: dt.date, url: str | None,
            reminder: int = 0, rejected: str | None = None) -> str:
    """The text to send the supplier's contact."""
    lines = [f"Dear {supplier},", ""]
    if reminder:
        lines.append(f"a reminder ({reminder}) of our request" + (" (the data you sent was not accepted: "
                                                                   f"{rejected})" if rejected else "") + ":")
    lines.append(f"we ask for {_what(kind, products, year)}, by {due:%d %B %Y}.")
    if url:
        lines += ["", f"Your link: {url}", f"It shows what is asked; the spreadsheet template is at {url}/template.",
                  "Send the filled template (.xlsx or CSV) or PACT v3 JSON (HTTP POST) to the link itself. The "
                  "link is yours alone: please do not forward it."]
    else:
        lines += ["", "Our PACT host has sent your PACT host the request; its fulfilment answers it."]
    lines += ["", "What you send is reviewed by two people before we use it. Thank you."]
    return "\n".join(lines)


def _supplier(conn: Connection, supplier: str | int) -> Any:
    return records.find(conn, supplier)


def _pact_client(conn: Connection, name: str) -> int:
    cid = conn.scalar(sa.text("SELECT id FROM pact_clients WHERE name = :n AND revoked_at IS NULL AND partner_url "
                              "IS NOT NULL"), {"n": name})
    if cid is None:
        raise EngagementError(f"no PACT partner {name!r} with a host URL: register it with `scope3 pact client create "
                              "SLUG NAME --partner-url URL`, or use the upload link (--channel upload)")
    return int(cid)


def create(engine: Engine, supplier: str | int, *, due: dt.date | str, products: list[str] | None = None,
           year: int | None = None, channel: str = "upload", pact_client: str | None = None,
           note: str | None = None, created_by: str | None = None, url: str | None = None,
           link_days: int | None = None, max_uses: int = 1, max_bytes: int | None = None) -> Sent:
    """Ask ``supplier`` (id, name or identifier) for footprints of ``products`` or its disclosure of ``year`` by
    ``due``; returns the message and, for the upload and template channels, the link (shown once)."""
    settings = Settings()
    products = [p.strip() for p in (products or []) if p.strip()]
    if bool(products) == (year is not None):
        raise EngagementError("ask for product footprints (--product ID, repeatable) or an annual disclosure "
                              "(--year YEAR), one of the two")
    if channel not in ("pact", "upload", "template"):
        raise EngagementError(f"channel {channel!r}: pact, upload or template")
    if (channel == "pact") != (pact_client is not None):
        raise EngagementError("the pact channel needs the supplier's PACT partner (--pact-client NAME), and only it")
    due_date = pd.Timestamp(due).date()
    if due_date < dt.date.today():
        raise EngagementError(f"due date {due_date} is in the past")
    kind = "pcf" if products else "disclosure"
    who = created_by or records.actor()
    with engine.begin() as conn:
        sup = _supplier(conn, supplier)
        client = _pact_client(conn, pact_client) if pact_client else None
        rid = int(conn.scalar(sa.text(
            "INSERT INTO data_requests (tenant_id, supplier_id, kind, product_ids, year, channel, pact_client_id, "
            "due_date, status, note, created_by) VALUES (tenant_of(current_user), :s, :k, :p, :y, :c, :pc, :d, "
            "'sent', :n, :by) RETURNING id"),
            {"s": sup["id"], "k": kind, "p": products or None, "y": year, "c": channel, "pc": client,
             "d": due_date, "n": note, "by": who}))
        link = None if channel == "pact" else uploads.issue(
            conn, rid, created_by=who, days=link_days or settings.engage_link_days,
            max_uses=max_uses, max_bytes=max_bytes or settings.engage_max_upload_bytes)
    full = link.url(url or base_url(settings)) if link else None
    return Sent(rid, str(sup["name"]), sup.get("contact_email"), channel, full, link.expires_at if link else None,
                message(str(sup["name"]), kind, products, year, due_date, full))


def mark_overdue(bind: Engine | Connection) -> int:
    """Requests still ``sent`` after their due date become ``overdue``; returns how many."""
    sql = sa.text("UPDATE data_requests SET status = 'overdue' WHERE status = 'sent' AND due_date < current_date")
    if isinstance(bind, Connection):
        return int(bind.execute(sql).rowcount or 0)
    with bind.begin() as conn:
        return int(conn.execute(sql).rowcount or 0)


def requests(engine: Engine, status: str | None = None) -> pd.DataFrame:
    """Every request with its supplier, what is asked, status, reminders and submissions (pending, approved,
    rejected), the newest first; overdue ones are marked first (the read-only role only reads)."""
    with contextlib.suppress(sa.exc.ProgrammingError):  # a read-only role: the stored status
        mark_overdue(engine)
    where = "WHERE r.status = :st" if status else ""
    return db.read_frame(engine, f"""
        SELECT r.id, s.name AS supplier, r.kind, array_to_string(r.product_ids, ', ') AS products, r.year, r.channel,
               r.due_date, r.status, r.rejected_reason, r.pact_event_id, r.reminders, r.last_reminded_at,
               r.created_by, r.created_at,
               count(b.id) FILTER (WHERE b.status = 'pending') AS pending,
               count(b.id) FILTER (WHERE b.status = 'approved') AS approved,
               count(b.id) FILTER (WHERE b.status = 'rejected') AS rejected
          FROM data_requests r JOIN suppliers s ON s.id = r.supplier_id
          LEFT JOIN supplier_submissions b ON b.request_id = r.id {where}
         GROUP BY r.id, s.name ORDER BY r.id DESC""", {"st": status})


def remind(engine: Engine, request_id: int | None = None, *, url: str | None = None,
           created_by: str | None = None) -> list[Sent]:
    """Reminders for one request, or for every overdue or rejected one: each gets a new link (the old one stops
    working), its reminder count and time; returns the messages to send."""
    settings = Settings()
    who = created_by or records.actor()
    out = []
    with engine.begin() as conn:
        mark_overdue(conn)
        where = "r.id = :r" if request_id is not None else "r.status IN ('overdue', 'rejected')"
        rows = conn.execute(sa.text(
            "SELECT r.id, r.kind, r.product_ids, r.year, r.due_date, r.channel, r.reminders, r.status, s.name, "
            "s.contact_email, COALESCE(r.rejected_reason, (SELECT b.reason FROM supplier_submissions b WHERE "
            "b.request_id = r.id AND b.status = 'rejected' ORDER BY b.id DESC LIMIT 1)) AS rejected "
            f"FROM data_requests r JOIN suppliers s ON s.id = r.supplier_id WHERE {where} ORDER BY r.id "
            "FOR UPDATE OF r"), {"r": request_id}).all()
        if request_id is not None and not rows:
            raise EngagementError(f"no data request {request_id} in this tenant (see `scope3 engage list SLUG`)")
        for r in rows:
            link = None if r.channel == "pact" else uploads.issue(
                conn, int(r.id), created_by=who, days=settings.engage_link_days,
                max_bytes=settings.engage_max_upload_bytes)
            # A reminder after a rejection asks again: the request is open (sent, or overdue when past due).
            conn.execute(sa.text(
                "UPDATE data_requests SET reminders = reminders + 1, last_reminded_at = now(), status = CASE WHEN "
                "status = 'rejected' THEN CASE WHEN due_date < current_date THEN 'overdue' ELSE 'sent' END "
                "ELSE status END WHERE id = :r"), {"r": r.id})
            full = link.url(url or base_url(settings)) if link else None
            text = message(str(r.name), str(r.kind), list(r.product_ids or []), r.year, r.due_date, full,
                           int(r.reminders) + 1, r.rejected if r.status == "rejected" else None)
            out.append(Sent(int(r.id), str(r.name), r.contact_email, str(r.channel), full,
                            link.expires_at if link else None, text))
    return out


def pact_requests(bind: Engine | Connection) -> pd.DataFrame:
    """The open requests of the PACT channel with their partner's host and the ``RequestCreated`` event they were
    sent as (``pact_event_id``, None until :func:`scope3lib.engagement.pact.send` delivered it; one event per
    request, its products as the ``productId`` criterion)."""
    return db.read_frame(bind, "SELECT r.id, r.supplier_id, r.product_ids, r.due_date, r.status, r.pact_event_id, "
                               "c.name AS partner, c.client_id, c.partner_url FROM data_requests r JOIN pact_clients c "
                               "ON c.id = r.pact_client_id "
                               "WHERE r.channel = 'pact' AND r.status IN ('sent', 'overdue') ORDER BY r.id")


def template_for(engine: Engine, request_id: int, fmt: str = "xlsx") -> bytes:
    """The spreadsheet template of a request (to attach to the message, or for the ``template`` channel)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT kind, product_ids, year FROM data_requests WHERE id = :r"),
                           {"r": request_id}).first()
    if row is None:
        raise EngagementError(f"no data request {request_id} in this tenant (see `scope3 engage list SLUG`)")
    return uploads.template(str(row.kind), list(row.product_ids or []), row.year, fmt)

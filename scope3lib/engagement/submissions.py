"""What suppliers send: received as *pending*, usable only once a second user of the tenant approves it.

:func:`receive` is the one way in, whatever the channel: the upload link and the filled spreadsheet template
(:mod:`.uploads`) call it, and so does the PACT recipient when a partner's ``RequestFulfilled`` event arrives
on the tenant's ``/3/events`` (``channel="pact"``, the footprints of the event's ``data.pfs``, ``submitted_by``
the partner). It validates everything first (product footprints as PACT v3, a disclosure as
:mod:`scope3lib.suppliers.disclosures` does) and stores the submission with the SHA-256 of its canonical JSON.

:func:`approve` and :func:`reject` decide, all in one transaction with what follows from the decision. The
database refuses a decision by the submitter (a CHECK, whatever SQL is sent) and a second decision, and
appends each decision to the tenant's ledger (``approve`` / ``reject`` leaves, migration 0010), so
:func:`prove` gives an auditor the decision's inclusion proof. An approved footprint re-prices the open
months of the supplier's purchases of its products (:mod:`.pricing`); an approved disclosure is recorded
through :func:`scope3lib.suppliers.disclosures.record_on`, which re-prices the supplier's spend.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting.periods import closed_periods
from ..errors import EngagementError, SelfApproval
from ..ledger.canonical import canonical_json
from ..pact.model import ProductFootprint, parse_footprints
from ..suppliers import disclosures, records, spend
from ..suppliers.pcf_pricing import Approved, product_keys
from ..suppliers.pcf_pricing import unpriced as unpriced_lines

if TYPE_CHECKING:  # the ledger's database half is imported only when a proof is asked for (the CLI's offline
    from ..ledger.log import ProofBundle  # audit must not load it)

Channel = Literal["pact", "upload", "template"]
#: The ledger events of a decision (scope3lib.ledger.log.DECISION_EVENTS), as SQL.
_DECISIONS = "'approve', 'reject'"
CHANNELS = ("pact", "upload", "template")


@dataclass(frozen=True)
class Submission:
    id: int
    request_id: int | None
    supplier_id: int
    kind: str
    channel: str
    status: str
    payload_sha256: str


@dataclass(frozen=True)
class Decision:
    """A decision taken: the submission, its new status, the ledger leaf that records it, and what it changed."""

    submission_id: int
    status: str
    decided_by: str
    leaf_index: int
    entries_created: int = 0
    entries_updated: int = 0
    entries_deleted: int = 0  # spend-based entries whose lines the footprints now price
    unpriced: tuple[str, ...] = ()  # purchases of the products that stay spend-based, and why

    def sentence(self) -> str:
        done = (f"; entries: {self.entries_created} created, {self.entries_updated} re-priced, "
                f"{self.entries_deleted} replaced" + "".join(f"\n  not priced: {u}" for u in self.unpriced)
                if self.status == "approved" else "")
        return (f"submission {self.submission_id} {self.status} by {self.decided_by} (ledger leaf "
                f"{self.leaf_index}){done}")


def _request(conn: Connection, request_id: int) -> Any:
    row = conn.execute(sa.text("SELECT id, supplier_id, kind, product_ids, year, status FROM data_requests "
                               "WHERE id = :r"), {"r": request_id}).first()
    if row is None:
        raise EngagementError(f"no data request {request_id} in this tenant (see `scope3 engage list SLUG`)")
    return row


def _check_products(footprints: list[ProductFootprint], asked: list[str], request_id: int) -> None:
    wanted = {k for p in asked for k in product_keys(p)}
    named = {k for fp in footprints for p in fp.productIds for k in product_keys(str(p))}
    if wanted and not wanted & named:
        raise EngagementError(f"none of the footprints names a product data request {request_id} asks for "
                              f"({', '.join(asked)}); send the footprints of those products")


def _payload(footprints: list[dict[str, Any]] | list[ProductFootprint] | None,
             disclosure: dict[str, Any] | None, source: str) -> tuple[str, dict[str, Any], list[ProductFootprint]]:
    if (footprints is None) == (disclosure is None):
        raise EngagementError("a submission holds either product footprints or a disclosure, not both or neither")
    if footprints is not None:
        items = [f.to_json() if isinstance(f, ProductFootprint) else f for f in footprints]
        if not items:
            raise EngagementError(f"{source}: no footprint in the submission")
        parsed = parse_footprints(items, source)
        return "pcf", {"footprints": [fp.to_json() for fp in parsed]}, parsed
    row = {k: ("" if v is None else str(v)) for k, v in dict(disclosure or {}).items()}
    problems = disclosures.check_rows(pd.DataFrame([{**row, "supplier": row.get("supplier") or "-"}]))
    if problems:
        raise EngagementError(f"{source}: the disclosure is refused: " + "; ".join(w for _, w in problems))
    return "disclosure", {"disclosure": row}, []


def receive(conn: Connection, request_id: int | None, supplier_id: int, *,
            footprints: list[dict[str, Any]] | list[ProductFootprint] | None = None,
            disclosure: dict[str, Any] | None = None, channel: Channel, submitted_by: str,
            source: str = "submission") -> Submission:
    """Store what a supplier sent as a *pending* submission, in the caller's transaction; nothing is used yet.

    ``footprints``: PACT v3 ProductFootprints (JSON objects or parsed), all valid or none taken
    (:class:`~scope3lib.errors.FootprintRefused` names each problem); ``disclosure``: one year's figures with
    the columns of :data:`scope3lib.suppliers.disclosures.COLUMNS` (``supplier`` is the submission's). A
    request, when given, must be this supplier's and of the same kind; it becomes ``answered``.
    ``submitted_by`` is who sent it (``supplier:<id> via upload link 7``, a partner's PACT client, a user who
    typed in a template): that person can never decide on it.
    """
    if channel not in CHANNELS:
        raise EngagementError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    if not submitted_by.strip():
        raise EngagementError("a submission needs the name of who sent it (submitted_by)")
    kind, payload, parsed = _payload(footprints, disclosure, source)
    if request_id is not None:
        req = _request(conn, request_id)
        if int(req.supplier_id) != int(supplier_id) or req.kind != kind:
            raise EngagementError(f"data request {request_id} asks supplier {req.supplier_id} for "
                                  f"{'footprints' if req.kind == 'pcf' else 'a disclosure'}; this submission is "
                                  f"{'footprints' if kind == 'pcf' else 'a disclosure'} of supplier {supplier_id}")
        if kind == "pcf":
            _check_products(parsed, list(req.product_ids or []), request_id)
    digest = hashlib.sha256(canonical_json(payload)).hexdigest()
    row = conn.execute(sa.text(
        "INSERT INTO supplier_submissions (tenant_id, request_id, supplier_id, kind, channel, payload, payload_sha256, "
        "submitted_by) VALUES (tenant_of(current_user), :r, :s, :k, :c, CAST(:p AS jsonb), :h, :by) "
        "RETURNING id, status"),
        {"r": request_id, "s": supplier_id, "k": kind, "c": channel, "p": canonical_json(payload).decode(),
         "h": digest, "by": submitted_by.strip()}).one()
    if request_id is not None:
        conn.execute(sa.text("UPDATE data_requests SET status = 'answered' WHERE id = :r"), {"r": request_id})
    return Submission(int(row.id), request_id, int(supplier_id), kind, channel, str(row.status), digest)


def _user(conn: Connection, name: str) -> str:
    """The tenant's user of that name (as stored), or refused: only the tenant's users decide."""
    found = conn.scalar(sa.text("SELECT u.username FROM users u JOIN memberships m ON m.user_id = u.id "
                                "WHERE m.tenant_id = tenant_of(current_user) AND lower(u.username) = lower(:n)"),
                        {"n": name.strip()})
    if found is None:
        raise EngagementError(f"{name!r} is not a user of this tenant: a submission is decided by one of the "
                              "tenant's users (`scope3 user add SLUG NAME`)")
    return str(found)


def _pending(conn: Connection, submission_id: int, who: str) -> Any:
    row = conn.execute(sa.text("SELECT id, request_id, supplier_id, kind, status, payload, submitted_by, decided_by "
                               "FROM supplier_submissions WHERE id = :i FOR UPDATE"), {"i": submission_id}).first()
    if row is None:
        raise EngagementError(f"no submission {submission_id} in this tenant (see `scope3 engage submissions SLUG`)")
    if row.status != "pending":
        raise EngagementError(f"submission {submission_id} was {row.status} by {row.decided_by} already: a decision "
                              "is final; ask the supplier for a new submission")
    if row.submitted_by.strip().lower() == who.lower():
        raise SelfApproval(f"{who} submitted submission {submission_id} and cannot decide on it: another user of "
                           "the tenant must approve or reject it")
    return row


def _decide(conn: Connection, row: Any, status: str, who: str, reason: str | None) -> int:
    try:
        with conn.begin_nested():
            conn.execute(sa.text("UPDATE supplier_submissions SET status = :s, decided_by = :d, decided_at = now(), "
                                 "reason = :why WHERE id = :i"), {"s": status, "d": who, "why": reason, "i": row.id})
    except sa.exc.IntegrityError as exc:
        if "four_eyes" in str(exc.orig):
            raise SelfApproval(f"{who} cannot decide on submission {row.id}, which they submitted") from None
        raise
    return int(conn.scalar(sa.text(
        "SELECT max(leaf_index) FROM ledger_leaves WHERE tenant_id = tenant_of(current_user) AND entry_id = :i "
        f"AND event IN ({_DECISIONS})"), {"i": row.id}))


def _open_product_months(conn: Connection, supplier_id: int) -> list[dt.date]:
    months = [m for (m,) in conn.execute(sa.text(
        "SELECT DISTINCT date_trunc('month', posting_date)::date FROM spend_lines WHERE active AND supplier_id = :s "
        "AND product_id IS NOT NULL AND quantity IS NOT NULL ORDER BY 1"), {"s": supplier_id})]
    closed = closed_periods(conn)
    return [m for m in months if not any(s <= m <= e for _, s, e in closed)]


def _unpriced(conn: Connection, row: Any) -> tuple[str, ...]:
    """The supplier's purchases of the approved products whose unit does not convert (they stay spend-based)."""
    lines = db.read_frame(conn, "SELECT import_id, line_no, supplier_id, product_id, quantity, unit FROM spend_lines "
                                "WHERE active AND supplier_id = :s AND product_id IS NOT NULL AND quantity IS NOT NULL "
                                "AND unit IS NOT NULL", {"s": row.supplier_id})
    approved = [Approved(int(row.id), int(row.supplier_id), fp) for fp in parse_footprints(row.payload["footprints"])]
    left = unpriced_lines(lines, approved)
    return tuple(f"extract {r.import_id} line {r.line_no} ({r.product_id}, {r.unit}): {r.reason}"
                 for r in left.head(20).itertuples())


def approve(engine: Engine, submission_id: int, *, decided_by: str | None = None,
            reason: str | None = None) -> Decision:
    """Approve a pending submission as ``decided_by`` (default: the person running this, see
    :func:`scope3lib.suppliers.records.actor`), a user of the tenant other than its submitter, and use it:
    footprints price the supplier's purchases of their products in the open months, a disclosure is recorded.
    All in one transaction with the ledger's record of the decision."""
    who = (decided_by or records.actor()).strip()
    with engine.begin() as conn:
        who = _user(conn, who)
        row = _pending(conn, submission_id, who)
        leaf = _decide(conn, row, "approved", who, reason)
        why = f"approved supplier submission {row.id} ({row.kind}) by {who}"
        created = updated = deleted = 0
        unpriced: tuple[str, ...] = ()
        if row.kind == "pcf":
            from ..ledger import log as ledger_log  # the ledger's database half loads only where entries change

            ledger_log.annotate(conn, "recalculate", why)
            created, updated, deleted, _ = spend.rebuild(conn, _open_product_months(conn, int(row.supplier_id)))
            unpriced = _unpriced(conn, row)
        else:
            disclosure = {**dict(row.payload["disclosure"]), "supplier": str(row.supplier_id)}
            disclosure.setdefault("source_document", f"supplier submission {row.id}")
            disclosures.record_on(conn, [disclosure], source=f"submission-{row.id}", replace=True)
    return Decision(int(row.id), "approved", who, leaf, created, updated, deleted, unpriced)


def reject(engine: Engine, submission_id: int, *, reason: str, decided_by: str | None = None) -> Decision:
    """Reject a pending submission with a reason (the supplier is told it; the ledger records it); its request
    becomes ``rejected``, and a reminder sends the supplier a new link."""
    if not (reason and reason.strip()):
        raise EngagementError("a rejection needs a reason (--reason): the supplier and the ledger are told why")
    who = (decided_by or records.actor()).strip()
    with engine.begin() as conn:
        who = _user(conn, who)
        row = _pending(conn, submission_id, who)
        leaf = _decide(conn, row, "rejected", who, reason.strip())
        if row.request_id is not None:
            conn.execute(sa.text("UPDATE data_requests SET status = 'rejected' WHERE id = :r"), {"r": row.request_id})
    return Decision(int(row.id), "rejected", who, leaf)


def submissions(bind: Engine | Connection, status: str | None = None) -> pd.DataFrame:
    """The tenant's submissions, newest first, with the supplier's name (without their payloads)."""
    where = "WHERE s.status = :st" if status else ""
    return db.read_frame(bind, "SELECT s.id, s.request_id, s.supplier_id, p.name AS supplier, s.kind, s.channel, "
                               "s.status, s.submitted_by, s.submitted_at, s.decided_by, s.decided_at, s.reason, "
                               "s.payload_sha256, CASE WHEN s.kind = 'pcf' THEN jsonb_array_length(s.payload -> "
                               "'footprints') END AS footprints FROM supplier_submissions s JOIN suppliers p ON "
                               f"p.id = s.supplier_id {where} ORDER BY s.id DESC", {"st": status})


def payload(bind: Engine | Connection, submission_id: int) -> dict[str, Any]:
    """What the supplier sent, as stored."""
    with _connect(bind) as conn:
        value = conn.scalar(sa.text("SELECT payload FROM supplier_submissions WHERE id = :i"), {"i": submission_id})
    if value is None:
        raise EngagementError(f"no submission {submission_id} in this tenant")
    return dict(value)


def _connect(bind: Engine | Connection) -> Any:
    return bind.connect() if isinstance(bind, Engine) else nullcontext(bind)


def prove(engine: Engine, slug: str, submission_id: int) -> ProofBundle:
    """The inclusion proof of a submission's decision in the latest signed checkpoint (the admin engine, as
    ``scope3 ledger prove``); checked offline with ``scope3 ledger audit``."""
    with engine.connect() as conn:
        tid = conn.scalar(sa.text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug})
        leaf = conn.scalar(sa.text(
            "SELECT max(leaf_index) FROM ledger_leaves WHERE tenant_id = :t AND entry_id = :i AND event IN "
            f"({_DECISIONS})"), {"t": tid, "i": submission_id})
    if leaf is None:
        raise EngagementError(f"submission {submission_id} of tenant {slug} has no decision in the ledger yet")
    from ..ledger import log as ledger_log

    return ledger_log.prove(engine, slug, submission_id, int(leaf))

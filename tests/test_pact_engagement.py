"""The PACT channel of supplier engagement end to end: two tenants of one platform, each with its API and PACT host
served by ``scope3 api serve --tls-cert --tls-key`` in its own process over real TLS. B publishes a footprint of
product P and registers A as its client; A registers B as a partner, links supplier S to it and buys P. A's data
request goes to B as a RequestCreated event, B answers asynchronously at A's /pact/3/events, the footprints land
pending, a second user of A approves them, A's primary-data share rises and the approval's ledger proof verifies.
A rejection marks the request rejected with B's reason; answers to requests A never sent to that partner change
nothing. Every step uses the commands docs/engagement.md lists, in that order."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scope3lib.accounting import inventory
from scope3lib.engagement import requests, submissions
from scope3lib.errors import SelfApproval
from scope3lib.ledger import log as ledger_log
from scope3lib.ledger.audit import audit_entry
from scope3lib.pact import clients, events
from scope3lib.suppliers import records, spend
from tests.helpers import TenantFactory, TenantFixture, invoke_cli, wait_until
from tests.test_engagement import GTIN, PURCHASES, SUPPLIERS, _primary_share
from tests.test_pact_host import PactService, _certificate
from tests.test_pact_model import footprint

pytestmark = pytest.mark.db

SUPPLIER = "Ethanol Works GmbH"
PRODUCT = f"urn:gtin:{GTIN}"  # how B's footprint names P; A's purchase lines carry the bare GTIN


@dataclass
class Linked:
    a: TenantFixture
    b: TenantFixture
    host_a: PactService
    host_b: PactService
    a_for_b: dict[str, str]  # the credentials A issued to B (B's host uses them to answer at A's /3/events)
    b_for_a: dict[str, str]  # the credentials B issued to A (A's recipient uses them to ask B)
    cli: tuple[str, Path]
    cert: Path  # both hosts' self-signed certificate, which every caller here trusts


def _cli(linked_cli: tuple[str, Path], *args: str) -> Any:
    r = invoke_cli(*linked_cli, *args)
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def linked(make_module_tenant: TenantFactory, tmp_path_factory: pytest.TempPathFactory, database_url: str,
           data_dir: Path) -> Iterator[Linked]:
    where = tmp_path_factory.mktemp("pact-engagement")
    cert, key = _certificate(where)
    a, b = make_module_tenant(), make_module_tenant()
    (where / "suppliers.csv").write_text(SUPPLIERS)
    records.import_suppliers(a.engine, where / "suppliers.csv")
    (where / "ap.csv").write_text(PURCHASES)  # purchases of P with quantity and unit columns
    spend.import_extract(a.engine, where / "ap.csv", date_format="%m/%d/%Y")
    a.add_user("ana")
    a.add_user("ben")
    host_a = PactService(a, cert, key, where / "a.log")
    host_b = PactService(b, cert, key, where / "b.log")
    cli = (database_url, data_dir)
    with pytest.MonkeyPatch.context() as env:
        # B publishes P's footprint and issues credentials to A.
        (where / "pcfs.json").write_text(json.dumps([footprint(companyName="Ethanol Works GmbH")]))
        _cli(cli, "pact", "footprints", "import", b.slug, str(where / "pcfs.json"))
        b_for_a = json.loads(_cli(cli, "pact", "client", "create", b.slug, "alpha buyer", "--json").output)
        # A registers B as a partner with B's URL and those credentials, and issues its own to B.
        env.setenv("B_SECRET", b_for_a["client_secret"])
        a_for_b = json.loads(_cli(cli, "pact", "client", "create", a.slug, "ethanol-works", "--partner-url",
                                  host_b.base, "--partner-client-id", b_for_a["client_id"],
                                  "--partner-client-secret-env", "B_SECRET", "--json").output)
        # B records where A's host is, so that its answers reach A.
        env.setenv("A_SECRET", a_for_b["client_secret"])
        _cli(cli, "pact", "client", "partner", b.slug, b_for_a["client_id"], "--url", host_a.base, "--client-id",
             a_for_b["client_id"], "--client-secret-env", "A_SECRET")
    yield Linked(a, b, host_a, host_b, a_for_b, b_for_a, cli, cert)
    host_a.stop()
    host_b.stop()


def _request(linked: Linked, product: str) -> dict[str, Any]:
    """``scope3 engage request A S --product P --channel pact``: created and sent to B at once."""
    due = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    r = _cli(linked.cli, "engage", "request", linked.a.slug, SUPPLIER, "--product", product, "--due", due,
             "--channel", "pact", "--pact-client", "ethanol-works", "--url", linked.host_a.base.removesuffix("/pact"),
             "--json")
    [sent] = json.loads(r.output)
    assert sent["channel"] == "pact" and sent["upload_url"] is None and sent["pact_error"] is None, sent
    return dict(sent)


def _listed(t: TenantFixture, request_id: int) -> dict[str, Any]:
    return dict(requests.requests(t.engine).set_index("id").loc[request_id].to_dict())


def test_a_footprint_asked_over_pact_lands_pending_and_a_second_users_approval_raises_the_primary_share(
        linked: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    a = linked.a
    monkeypatch.setenv("SSL_CERT_FILE", str(linked.cert))  # A's recipient (this process) trusts B's host
    before = _primary_share(a)
    sent = _request(linked, GTIN)  # the item number as the purchase lines carry it
    with a.engine.connect() as conn:
        event_id = conn.scalar(sa.text("SELECT pact_event_id FROM data_requests WHERE id = :r"),
                               {"r": sent["request_id"]})
    assert event_id == sent["pact_event_id"]

    def landed() -> Any:
        df = submissions.submissions(a.engine)
        return df.iloc[0].to_dict() if len(df) else None

    sub = wait_until(landed, 60, "B's fulfilment to land at A")  # B fetched a token from A's host, then POSTed
    assert sub["channel"] == "pact" and sub["status"] == "pending" and sub["request_id"] == sent["request_id"]
    assert sub["submitted_by"] == f"pact:{linked.a_for_b['client_id']}" and sub["footprints"] == 1
    assert _listed(a, sent["request_id"])["status"] == "answered"
    assert _primary_share(a) == pytest.approx(before)  # pending: nothing used yet
    with a.admin.connect() as conn:
        exchanged = conn.execute(sa.text(
            "SELECT direction, event_type, status, summary FROM pact_exchanges WHERE tenant_id = :t AND "
            "action = 'event' ORDER BY id"), {"t": a.tenant_id}).all()
    assert [(r.direction, r.event_type, r.status) for r in exchanged] == [
        ("out", events.REQUEST_CREATED, "ok"), ("in", events.REQUEST_FULFILLED, "ok")]
    assert exchanged[0].summary["criteria"]["productId"] == [PRODUCT]
    assert exchanged[1].summary["submission_id"] == int(sub["id"])

    # Four eyes: ana cannot approve what she typed in herself; the partner's client is no user who could decide;
    # and the database refuses a decision in the submitter's name whatever SQL is sent.
    with a.engine.begin() as conn:
        own = submissions.receive(conn, None, int(sub["supplier_id"]), footprints=[footprint()], channel="template",
                                  submitted_by="ana")
    with pytest.raises(SelfApproval, match="another user"):
        submissions.approve(a.engine, own.id, decided_by="ana")
    r = invoke_cli(*linked.cli, "engage", "approve", a.slug, str(sub["id"]), "--user", sub["submitted_by"])
    assert r.exit_code == 1 and "not a user of this tenant" in r.output, r.output
    with pytest.raises(sa.exc.IntegrityError, match="four_eyes"), a.engine.begin() as conn:
        conn.execute(sa.text("UPDATE supplier_submissions SET status = 'approved', decided_by = submitted_by, "
                             "decided_at = now() WHERE id = :i"), {"i": int(sub["id"])})

    r = _cli(linked.cli, "engage", "approve", a.slug, str(sub["id"]), "--user", "ben", "--reason",
             "matches B's EPD")
    assert f"submission {sub['id']} approved by ben" in r.output
    e = inventory.entries(a.engine)
    assert (e["factor_source"] == "supplier-pcf").sum() == 2  # January's and February's bulk purchases of P
    after = _primary_share(a)
    assert after > before, (before, after)

    ledger_log.checkpoint(a.admin, a.data_dir, a.slug)
    bundle = submissions.prove(a.admin, a.slug, int(sub["id"]))
    key = ledger_log.public_key(a.admin, a.data_dir, a.slug)
    result = audit_entry(bundle.checkpoint, bundle.proof, bundle.entry, key)
    assert result.leaf["event"] == "approve" and result.leaf["entry"]["decided_by"] == "ben"
    assert result.leaf["entry"]["submitted_by"] == sub["submitted_by"]
    assert ledger_log.verify(a.readonly).ok


def _token(linked: Linked, client_id: str, secret: str) -> str:
    got = linked.host_a.token(client_id, secret)
    assert got.status_code == 200, got.text
    return str(got.json()["access_token"])


def test_a_rejection_marks_the_request_and_answers_to_requests_never_sent_change_nothing(
        linked: Linked, monkeypatch: pytest.MonkeyPatch) -> None:
    a = linked.a
    monkeypatch.setenv("SSL_CERT_FILE", str(linked.cert))
    sent = _request(linked, "urn:gtin:9999999999994")  # B publishes no footprint of it

    def rejected() -> Any:
        row = _listed(a, sent["request_id"])
        return row if row["status"] == "rejected" else None

    row = wait_until(rejected, 60, "B's rejection to reach A")
    assert row["rejected_reason"].startswith("NotFound: ") and row["pact_event_id"] == sent["pact_event_id"]
    r = _cli(linked.cli, "engage", "list", a.slug, "--status", "rejected")
    assert str(sent["request_id"]) in r.output

    # Answers naming an event A never sent, or a request A sent to another partner, are recorded and ignored.
    gamma = json.loads(_cli(linked.cli, "pact", "client", "create", a.slug, "gamma", "--json").output)
    count = len(submissions.submissions(a.engine))
    for who, asked in ((linked.a_for_b, str(uuid.uuid4())), (gamma, sent["pact_event_id"])):
        answer = events.new_event(events.REQUEST_FULFILLED, "//gamma.example/3/events",
                                  {"requestEventId": asked, "pfs": [footprint()]})
        with linked.host_a.client(_token(linked, who["client_id"], who["client_secret"])) as c:
            got = c.post("/3/events", content=json.dumps(answer), headers={"Content-Type": events.MEDIA_TYPE})
        assert got.status_code == 200, got.text
    # B's answer to the request itself, but with footprints of another product: refused, nothing stored.
    answer = events.new_event(events.REQUEST_FULFILLED, "//b.example/3/events",
                              {"requestEventId": sent["pact_event_id"], "pfs": [footprint()]})
    with linked.host_a.client(_token(linked, linked.a_for_b["client_id"], linked.a_for_b["client_secret"])) as c:
        got = c.post("/3/events", content=json.dumps(answer), headers={"Content-Type": events.MEDIA_TYPE})
    assert got.status_code == 400 and "none of the footprints" in got.json()["message"], got.text
    assert len(submissions.submissions(a.engine)) == count
    assert _listed(a, sent["request_id"])["status"] == "rejected"
    with a.admin.connect() as conn:
        ignored = conn.execute(sa.text(
            "SELECT partner, summary->>'ignored' FROM pact_exchanges WHERE tenant_id = :t AND direction = 'in' "
            "AND summary ? 'ignored' ORDER BY id"), {"t": a.tenant_id}).all()
    assert [p for p, _ in ignored] == [linked.a_for_b["client_id"], gamma["client_id"]]
    assert all("no data request" in why for _, why in ignored)

    # Sent again (the partner might publish it meanwhile): a new event, the request open again.
    r = _cli(linked.cli, "engage", "send", a.slug, str(sent["request_id"]), "--url",
             linked.host_a.base.removesuffix("/pact"), "--json")
    [again] = json.loads(r.output)
    assert again["event_id"] and again["event_id"] != sent["pact_event_id"] and again["error"] is None
    wait_until(rejected, 60, "B's second rejection")  # B still has none: rejected again, with the new event
    assert _listed(a, sent["request_id"])["pact_event_id"] == again["event_id"]
    # A reminder of a PACT request is the request sent once more.
    r = _cli(linked.cli, "engage", "remind", a.slug, str(sent["request_id"]), "--url",
             linked.host_a.base.removesuffix("/pact"))
    assert "reminder (1)" in r.output and f"request {sent['request_id']} sent to PACT partner" in r.output
    third = wait_until(rejected, 60, "B's third rejection")
    assert third["pact_event_id"] not in (sent["pact_event_id"], again["event_id"]) and third["reminders"] == 1


def test_a_partner_that_cannot_be_reached_leaves_the_request_open_and_unsent(
        make_tenant: TenantFactory, tmp_path: Path, database_url: str, data_dir: Path) -> None:
    t = make_tenant()
    (tmp_path / "suppliers.csv").write_text(SUPPLIERS)
    records.import_suppliers(t.engine, tmp_path / "suppliers.csv")
    # Nothing listens on port 9 (discard) of this machine: every try is refused.
    clients.create_client(t.admin, t.slug, "down", partner_url="https://127.0.0.1:9/pact", partner_client_id="x",
                          partner_client_secret="y")
    due = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    r = invoke_cli(database_url, data_dir, "engage", "request", t.slug, SUPPLIER, "--product", GTIN, "--due", due,
                   "--channel", "pact", "--pact-client", "down", "--url", "https://scope3.example/api")
    assert r.exit_code == 0 and "NOT sent" in r.output and "scope3 engage send" in r.output, r.output
    [todo] = requests.pact_requests(t.engine).to_dict("records")
    assert todo["pact_event_id"] is None and todo["status"] == "sent"
    r = invoke_cli(database_url, data_dir, "engage", "send", t.slug, "--url", "http://scope3.example/api")
    assert r.exit_code == 1 and "not https://" in r.output, r.output

"""Supplier engagement end to end, against real PostgreSQL and the tenant's API over real HTTP: a data request, a
supplier's upload with its link's token, pending until a second user approves it, the approval's ledger proof,
the purchases it prices as supplier-specific data and the primary-data share it raises; links that expired or
were used, and templates refused line by line."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from scope3lib.accounting import inventory
from scope3lib.engagement import requests, submissions, uploads
from scope3lib.errors import EngagementError, SelfApproval, UploadRefused
from scope3lib.ledger import log as ledger_log
from scope3lib.ledger.audit import audit_entry
from scope3lib.pact import clients as pact_clients
from scope3lib.reporting import panels
from scope3lib.suppliers import records, spend
from tests.helpers import ApiServer, TenantFactory, TenantFixture, invoke_cli
from tests.test_pact_model import footprint

pytestmark = pytest.mark.db

SUPPLIERS = """name,country,grid region,naics,annual spend,currency,year,email
Ethanol Works GmbH,DE,DE,325211,500000,USD,2025,pcf@ethanol-works.example
Northwind Freight Inc.,US,CAMX,484121,450000,USD,2025,ops@northwind.example
"""
# An AP extract whose lines carry the item bought, its quantity and unit (the optional columns).
PURCHASES = """Date,Vendor,Account,Memo,Amount,Currency,Item,Quantity,Unit
01/15/2025,Ethanol Works GmbH,5000 COGS,Bio-ethanol bulk,"3,100.00",USD,4712345060507,2000,kg
02/11/2025,Ethanol Works GmbH,5000 COGS,Bio-ethanol bulk,"1,550.00",USD,4712345060507,1000,kg
01/25/2025,Ethanol Works GmbH,5000 COGS,Bio-ethanol drums,"80.00",USD,4712345060507,4,pcs
01/20/2025,Northwind Freight Inc.,5200 Freight,Inbound freight,"4,200.00",USD,,,
"""
GTIN = "4712345060507"


@pytest.fixture
def tenant(make_tenant: TenantFactory, tmp_path: Path) -> TenantFixture:
    t = make_tenant()
    (tmp_path / "suppliers.csv").write_text(SUPPLIERS)
    records.import_suppliers(t.engine, tmp_path / "suppliers.csv")
    (tmp_path / "ap.csv").write_text(PURCHASES)
    spend.import_extract(t.engine, tmp_path / "ap.csv", date_format="%m/%d/%Y")
    t.add_user("ana")
    t.add_user("ben")
    return t


@pytest.fixture
def api(tenant: TenantFixture) -> Iterator[ApiServer]:
    server = ApiServer(tenant).start()
    yield server
    server.stop()


def _primary_share(t: TenantFixture) -> float:
    """The headline's primary-data share, as the dashboard and the monthly report show it."""
    ctx = panels.PanelContext(t.readonly, inventory.entries(t.readonly), slug=t.slug)
    return float(panels.build("headline", ctx).data["primary_share"].iloc[0])  # type: ignore[index]


def _supplier_id(t: TenantFixture, name: str) -> int:
    with t.engine.connect() as conn:
        return int(records.find(conn, name)["id"])


def _ask(t: TenantFixture, api: ApiServer, **kwargs: object) -> requests.Sent:
    due = dt.date.today() + dt.timedelta(days=14)
    return requests.create(t.engine, "Ethanol Works GmbH", products=[GTIN], due=due, url=api.url,
                           created_by="ana", **kwargs)  # type: ignore[arg-type]


def test_an_upload_lands_pending_and_a_second_user_approval_prices_the_purchases(
        tenant: TenantFixture, api: ApiServer) -> None:
    sent = _ask(tenant, api)
    assert sent.upload_url and sent.upload_url.startswith(api.url) and "ethanol-works" in (sent.contact_email or "")
    assert sent.upload_url in sent.message and sent.upload_url.rsplit("/", 1)[-1].startswith(uploads.TOKEN_PREFIX)
    before = _primary_share(tenant)
    with httpx.Client(timeout=30) as http:  # no API key: the link's token is the credential
        asked = http.get(sent.upload_url)
        assert asked.status_code == 200 and asked.json()["product_ids"] == [GTIN], asked.text
        r = http.post(sent.upload_url, json={"footprints": [footprint(companyName="Ethanol Works GmbH")]})
        assert r.status_code == 201, r.text
        sid = r.json()["submission_id"]
        assert r.json()["status"] == "pending"
        # The link was for one upload: the same token again is refused as used.
        again = http.post(sent.upload_url, json={"footprints": [footprint()]})
        assert again.status_code == 410 and "used already" in again.json()["detail"]
    listed = requests.requests(tenant.engine).set_index("id")
    assert listed.loc[sent.request_id, "status"] == "answered" and listed.loc[sent.request_id, "pending"] == 1
    # Pending: nothing priced yet.
    assert _primary_share(tenant) == pytest.approx(before)
    assert not (inventory.entries(tenant.engine)["factor_source"] == "supplier-pcf").any()

    decision = submissions.approve(tenant.engine, sid, decided_by="ben", reason="checked against the EPD")
    # January's and February's bulk purchases get entries of their own; February's spend-based entry goes, and
    # January's keeps the drums, which are counted in pieces that a footprint per liter cannot price.
    assert decision.status == "approved" and decision.entries_created == 2 and decision.entries_deleted == 1
    assert decision.entries_updated == 1 and len(decision.unpriced) == 1 and "'pcs'" in decision.unpriced[0]
    e = inventory.entries(tenant.engine)
    pcf = e[e["factor_source"] == "supplier-pcf"].sort_values("period_start")
    assert list(pcf["method"]) == ["supplier_specific"] * 2
    # 2,000 kg of ethanol at 0.789 kg per liter, 1.85 kg CO2e per liter (units converted).
    assert pcf["kg_co2e"].iloc[0] == pytest.approx(2000 / 0.789 * 1.85)
    assert pcf["activity_quantity"].iloc[0] == pytest.approx(2000) and pcf["activity_unit"].iloc[0] == "kg"
    assert set(pcf["factor_version"]) == {f"submission-{sid}"}
    after = _primary_share(tenant)
    assert after > before
    # The dashboard and the monthly report render the same headline panel, and the engagement panel says so.
    assert set(panels.spec("headline").on) == {"dashboard", "report"}
    ctx = panels.PanelContext(tenant.readonly, inventory.entries(tenant.readonly), slug=tenant.slug)
    shown = panels.build("engagement", ctx)
    assert shown.state == "ok" and "1 approved" in shown.html() and "1 answered" in shown.html()
    with pytest.raises(EngagementError, match="final"):
        submissions.approve(tenant.engine, sid, decided_by="ana")

    # The approval is in the ledger: signed, proved, and audited offline with the exported key.
    ledger_log.checkpoint(tenant.admin, tenant.data_dir, tenant.slug)
    bundle = submissions.prove(tenant.admin, tenant.slug, sid)
    key = ledger_log.public_key(tenant.admin, tenant.data_dir, tenant.slug)
    result = audit_entry(bundle.checkpoint, bundle.proof, bundle.entry, key)
    assert result.leaf["event"] == "approve" and result.leaf["entry"]["decided_by"] == "ben"
    assert result.leaf["entry"]["submitted_by"].startswith("supplier:") and result.leaf["reason"] == \
        "checked against the EPD"
    report = ledger_log.verify(tenant.readonly)
    assert report.ok, report.summary()


def test_nobody_decides_on_their_own_submission(tenant: TenantFixture, api: ApiServer) -> None:
    sent = _ask(tenant, api, channel="template")
    with tenant.engine.begin() as conn:  # ana typed in what the supplier phoned in
        sub = submissions.receive(conn, sent.request_id, _supplier_id(tenant, "Ethanol Works GmbH"),
                                  footprints=[footprint()], channel="template", submitted_by="ana")
    with pytest.raises(SelfApproval, match="another user"):
        submissions.approve(tenant.engine, sub.id, decided_by="ana")
    with pytest.raises(EngagementError, match="not a user of this tenant"):
        submissions.approve(tenant.engine, sub.id, decided_by="mallory")
    # Whatever SQL the tenant's role sends, the database refuses it too.
    with pytest.raises(sa.exc.IntegrityError, match="four_eyes"), tenant.engine.begin() as conn:
        conn.execute(sa.text("UPDATE supplier_submissions SET status = 'approved', decided_by = 'ANA', "
                             "decided_at = now() WHERE id = :i"), {"i": sub.id})
    rejected = submissions.reject(tenant.engine, sub.id, decided_by="ben", reason="the wrong product year")
    assert rejected.status == "rejected"
    assert requests.requests(tenant.engine).set_index("id").loc[sent.request_id, "status"] == "rejected"
    with tenant.engine.connect() as conn:
        leaf = conn.execute(sa.text("SELECT event, reason FROM ledger_leaves WHERE leaf_index = :i"),
                            {"i": rejected.leaf_index}).one()
    assert tuple(leaf) == ("reject", "the wrong product year")
    [again] = requests.remind(tenant.engine, sent.request_id, url=api.url)
    assert "not accepted: the wrong product year" in again.message and again.upload_url != sent.upload_url


def test_expired_unknown_and_oversized_uploads_are_refused(tenant: TenantFixture, api: ApiServer) -> None:
    sent = _ask(tenant, api, max_bytes=2048)
    assert sent.upload_url
    with httpx.Client(timeout=30) as http:
        big = http.post(sent.upload_url, json={"footprints": [footprint()] * 3})
        assert big.status_code == 413 and "2,048" in big.json()["detail"]
        unknown = http.post(sent.upload_url[:-4] + "abcd", json={"footprints": [footprint()]})
        assert unknown.status_code == 401
        with tenant.admin.begin() as conn:
            conn.execute(sa.text("UPDATE upload_tokens SET expires_at = now() - interval '1 minute' "
                                 "WHERE tenant_id = :t"), {"t": tenant.tenant_id})
        expired = http.post(sent.upload_url, json={"footprints": [footprint()]})
        assert expired.status_code == 410 and "expired" in expired.json()["detail"]
    with tenant.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM supplier_submissions")) == 0


def test_a_bad_template_is_refused_line_by_line(tenant: TenantFixture, api: ApiServer) -> None:
    sent = _ask(tenant, api)
    assert sent.upload_url
    with httpx.Client(timeout=30) as http:
        blank = http.get(sent.upload_url + "/template", params={"format": "xlsx"})
        assert blank.status_code == 200 and blank.headers["content-type"] == uploads.XLSX
        filled = pd.read_excel(io.BytesIO(blank.content), sheet_name="data", dtype=str).fillna("")
        assert list(filled["product_id"]) == [GTIN]
        good = {"product_name": "Green Ethanol", "declared_unit": "liter", "pcf_kg_co2e": "1,85",
                "product_mass_kg": "0.789", "reference_period_start": "2024-01-01",
                "reference_period_end": "2024-12-31"}
        rows = pd.DataFrame([{**filled.iloc[0].to_dict(), **good},
                             {**filled.iloc[0].to_dict(), **good, "declared_unit": "gallon"},
                             {**filled.iloc[0].to_dict(), **good, "pcf_kg_co2e": ""}])
        bad = http.post(sent.upload_url, content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        assert bad.status_code == 422, bad.text
        errors = {e["field"]: e["message"] for e in bad.json()["errors"]}
        assert "declared_unit" in errors["line 3"] and "gallon" in errors["line 3"]
        assert "pcf_kg_co2e is empty" in errors["line 4"] and "line 2" not in errors
        ok = http.post(sent.upload_url, content=rows.iloc[:1].to_csv(index=False),
                       headers={"content-type": "text/csv"})
        assert ok.status_code == 201, ok.text
    [row] = submissions.submissions(tenant.engine).to_dict("records")
    assert row["channel"] == "template" and row["status"] == "pending" and row["footprints"] == 1


def test_the_cli_asks_for_a_disclosure_and_a_second_user_approves_it(tenant: TenantFixture, database_url: str,
                                                                     data_dir: Path, tmp_path: Path) -> None:
    due = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    r = invoke_cli(database_url, data_dir, "engage", "request", tenant.slug, "Northwind Freight Inc.", "--year",
                   "2025", "--due", due, "--channel", "template", "--url", "https://scope3.example/api", "--json")
    assert r.exit_code == 0, r.output
    [sent] = json.loads(r.output)
    assert sent["upload_url"].startswith("https://scope3.example/api/engage/uploads/s3u_")
    csv = tmp_path / "filled.csv"
    r = invoke_cli(database_url, data_dir, "engage", "template", tenant.slug, str(sent["request_id"]), "--format",
                   "csv", "--out", str(csv))
    assert r.exit_code == 0, r.output
    filled = pd.read_csv(csv, dtype=str).fillna("").assign(
        scope1_kg="2000000", scope2_kg="150000", revenue="40000000", currency="USD", source_document="CDP 2025")
    filled.to_csv(csv, index=False)
    r = invoke_cli(database_url, data_dir, "engage", "submit", tenant.slug, str(sent["request_id"]), str(csv))
    assert r.exit_code == 0 and "pending" in r.output, r.output
    sid = int(submissions.submissions(tenant.engine)["id"].iloc[0])
    r = invoke_cli(database_url, data_dir, "engage", "approve", tenant.slug, str(sid), "--user", "nobody")
    assert r.exit_code == 1 and "not a user" in r.output
    r = invoke_cli(database_url, data_dir, "engage", "approve", tenant.slug, str(sid), "--user", "ben")
    assert r.exit_code == 0 and f"submission {sid} approved by ben" in r.output, r.output
    e = inventory.entries(tenant.engine).set_index("supplier")
    assert e.loc["Northwind Freight Inc.", "method"] == "supplier_specific"
    r = invoke_cli(database_url, data_dir, "engage", "list", tenant.slug)
    assert r.exit_code == 0 and "answered" in r.output, r.output


def test_a_pact_fulfilment_lands_pending_through_the_same_entry_point(tenant: TenantFixture) -> None:
    with pytest.raises(EngagementError, match="no PACT partner"):
        requests.create(tenant.engine, "Ethanol Works GmbH", products=[GTIN], due=dt.date.today(), channel="pact",
                        pact_client="ethanol-works")
    pact_clients.create_client(tenant.admin, tenant.slug, "ethanol-works", partner_url="https://pact.ethanol.example")
    sent = requests.create(tenant.engine, "Ethanol Works GmbH", products=[GTIN], due=dt.date.today(), channel="pact",
                           pact_client="ethanol-works")
    assert sent.upload_url is None and "PACT host" in sent.message
    todo = requests.pact_requests(tenant.engine)
    assert list(todo["id"]) == [sent.request_id] and todo["partner_url"].iloc[0] == "https://pact.ethanol.example"
    sid = _supplier_id(tenant, "Ethanol Works GmbH")
    # What the PACT recipient does with a RequestFulfilled event's pfs.
    with tenant.engine.begin() as conn, pytest.raises(EngagementError, match="none of the footprints"):
        submissions.receive(conn, sent.request_id, sid, footprints=[footprint(productIds=["urn:gtin:1"])],
                            channel="pact", submitted_by="pact:ethanol-works")
    with tenant.engine.begin() as conn:
        sub = submissions.receive(conn, sent.request_id, sid, footprints=[footprint()], channel="pact",
                                  submitted_by="pact:ethanol-works")
    assert sub.status == "pending" and sub.channel == "pact"
    assert requests.pact_requests(tenant.engine).empty  # answered: nothing more to send


def test_requests_past_due_are_overdue_and_reminded_with_a_new_link(tenant: TenantFixture) -> None:
    due = dt.date.today() + dt.timedelta(days=1)
    first = requests.create(tenant.engine, "Northwind Freight Inc.", year=2025, due=due, url="https://x.example")
    second = requests.create(tenant.engine, "Ethanol Works GmbH", products=[GTIN], due=due, url="https://x.example")
    with tenant.admin.begin() as conn:
        conn.execute(sa.text("UPDATE data_requests SET due_date = current_date - 3 WHERE id = :i"),
                     {"i": first.request_id})
    listed = requests.requests(tenant.engine).set_index("id")
    assert listed.loc[first.request_id, "status"] == "overdue" and listed.loc[second.request_id, "status"] == "sent"
    [reminder] = requests.remind(tenant.engine, url="https://x.example")
    assert reminder.request_id == first.request_id and "reminder (1)" in reminder.message
    assert reminder.upload_url and reminder.upload_url != first.upload_url
    with tenant.engine.connect() as conn:
        with pytest.raises(UploadRefused, match="replaced"):
            uploads.grant(conn, first.upload_url.rsplit("/", 1)[-1])  # type: ignore[union-attr]
        assert uploads.grant(conn, reminder.upload_url.rsplit("/", 1)[-1]).request_id == first.request_id
    assert requests.requests(tenant.engine).set_index("id").loc[first.request_id, "reminders"] == 1


def test_a_link_of_another_tenant_opens_nothing_here(tenant: TenantFixture, api: ApiServer,
                                                     make_tenant: TenantFactory, tmp_path: Path) -> None:
    other = make_tenant()
    (tmp_path / "other.csv").write_text(SUPPLIERS)
    records.import_suppliers(other.engine, tmp_path / "other.csv")
    theirs = requests.create(other.engine, "Ethanol Works GmbH", products=[GTIN],
                             due=dt.date.today() + dt.timedelta(days=7), url=api.url)  # their token, our API
    assert theirs.upload_url
    with httpx.Client(timeout=30) as http:
        assert http.get(theirs.upload_url).status_code == 401
        assert http.post(theirs.upload_url, json={"footprints": [footprint()]}).status_code == 401
    for t in (tenant, other):
        with t.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM supplier_submissions")) == 0
        # Viewers see requests, never the links' hashes.
        with t.readonly.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("SELECT token_hash FROM upload_tokens"))

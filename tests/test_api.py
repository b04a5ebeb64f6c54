"""The integration API over real HTTP, against real PostgreSQL: keys, scopes, isolation, pagination,
problem details, writes through the calculation engine, and HTTP meter ingest on the MQTT ingest's path."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from scope3lib.api import keys
from tests.helpers import REPO, ApiServer, TenantFactory, TenantFixture, invoke_cli, rfc3339, wait_until

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def tenants(make_module_tenant: TenantFactory) -> tuple[TenantFixture, TenantFixture]:
    a = make_module_tenant(suppliers=12, devices=1, seed=1, plan="enterprise")
    b = make_module_tenant(suppliers=12, devices=1, seed=2, plan="enterprise")
    return a, b


@pytest.fixture(scope="module")
def servers(tenants: tuple[TenantFixture, TenantFixture]) -> Iterator[tuple[ApiServer, ApiServer]]:
    a, b = (ApiServer(t).start() for t in tenants)
    yield a, b
    a.stop()
    b.stop()


def _key(t: TenantFixture, scope: str, **kwargs: object) -> str:
    return keys.create_key(t.admin, t.slug, f"{scope}-{time.monotonic_ns()}", scope, **kwargs).key  # type: ignore[arg-type]


def _client(server: ApiServer, key: str, scheme: str = "Bearer") -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"{scheme} {key}"}, timeout=30)


def test_a_key_of_tenant_a_gets_nothing_of_tenant_b(tenants: tuple[TenantFixture, TenantFixture],
                                                    servers: tuple[ApiServer, ApiServer]) -> None:
    a, b = tenants
    api_a, api_b = servers
    a_key = _key(a, "write")
    with _client(api_b, a_key) as c:
        for path in ("/emission-entries", "/suppliers", f"/suppliers/{next(iter(b.supplier_ids.values()))}",
                     "/inventory/summary", f"/emission-entries/{b.entry_ids[0]}"):
            r = c.get(path)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        assert c.post("/suppliers", json={"name": "Planted by A"}).status_code == 401
    # On its own API, A's key sees A's rows only, and B's ids are not found.
    with _client(api_a, a_key) as c:
        assert c.get(f"/emission-entries/{b.entry_ids[0]}").status_code == 404
        assert c.get(f"/suppliers/{next(iter(b.supplier_ids.values()))}").status_code == 404
        ids = {e["id"] for e in c.get("/emission-entries", params={"limit": 1000}).json()["items"]}
        assert ids and ids <= set(a.entry_ids) and not ids & set(b.entry_ids)


def test_scopes_read_keys_cannot_write_and_device_keys_only_ingest(tenants: tuple[TenantFixture, TenantFixture],
                                                                   servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    with _client(api_a, _key(a, "read")) as c:
        assert c.get("/suppliers").status_code == 200
        r = c.post("/suppliers", json={"name": "Read-only Ltd"})
        assert r.status_code == 403 and "write scope" in r.json()["detail"]
        assert c.post("/suppliers/bulk", json={"suppliers": [{"name": "X"}]}).status_code == 403
        assert c.post("/iot/ingest/", json={"ts": rfc3339(dt.datetime.now(dt.UTC)), "kwh": 1}).status_code == 403
        assert c.get("/api-keys").status_code == 403
    with _client(api_a, _key(a, "write")) as c:  # no key holds the admin scope: keys cannot mint keys
        r = c.post("/api-keys", json={"name": "minted", "scope": "write"})
        assert r.status_code == 403 and "admin scope" in r.json()["detail"]
    device = next(iter(a.device_ids))
    with _client(api_a, _key(a, "ingest", device=device)) as c:
        assert c.get("/emission-entries").status_code == 403
    with a.admin.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM suppliers WHERE name = 'Read-only Ltd'")) == 0


def test_expired_and_revoked_keys_are_refused_at_once(tenants: tuple[TenantFixture, TenantFixture],
                                                      servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    issued = keys.create_key(a.admin, a.slug, "short-lived", "read", expires=dt.timedelta(seconds=1))
    with _client(api_a, issued.key) as c:
        assert c.get("/suppliers").status_code == 200
        time.sleep(1.2)
        r = c.get("/suppliers")
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    revoked = keys.create_key(a.admin, a.slug, "to-revoke", "read")
    with _client(api_a, revoked.key) as c:
        assert c.get("/suppliers").status_code == 200
        keys.revoke_key(a.admin, a.slug, "to-revoke")
        r = c.get("/suppliers")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    rotated = keys.create_key(a.admin, a.slug, "to-rotate", "read")
    successor = keys.rotate_key(a.admin, a.slug, "to-rotate")
    assert _client(api_a, rotated.key).get("/suppliers").status_code == 401
    assert _client(api_a, successor.key).get("/suppliers").status_code == 200
    # A wrong secret behind a real prefix is refused too.
    assert _client(api_a, successor.key[:-4] + "AAAA").get("/suppliers").status_code == 401
    states = {(k["name"], k["state"]) for k in keys.list_keys(a.admin, a.slug)}
    assert {("short-lived", "expired"), ("to-revoke", "revoked"), ("to-rotate", "revoked"),
            ("to-rotate", "active")} <= states


def test_entries_pages_follow_link_headers_without_repeats(tenants: tuple[TenantFixture, TenantFixture],
                                                           servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    seen: list[int] = []
    with _client(api_a, _key(a, "read")) as c:
        url: str | None = f"{api_a.url}/emission-entries?limit=7"
        while url:
            r = c.get(url)
            assert r.status_code == 200
            seen += [e["id"] for e in r.json()["items"]]
            link = r.headers.get("link")
            url = link.split(";")[0].strip("<>") if link else None
            assert (link is None) == (r.json()["next_cursor"] is None)
        with a.admin.connect() as conn:
            expected = conn.scalars(sa.text("SELECT id FROM emission_entries WHERE tenant_id = :t ORDER BY id"),
                                    {"t": a.tenant_id}).all()
        assert seen == list(expected)
        cat = c.get("/emission-entries", params={"category": 1, "limit": 1000}).json()["items"]
        assert cat and all(e["category"] == 1 for e in cat)
        r = c.get("/emission-entries", params={"limit": 0})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.limit"
        r = c.get("/emission-entries", params={"cursor": "garbage"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.cursor"


def test_entries_are_created_only_by_the_calculation_engine(tenants: tuple[TenantFixture, TenantFixture],
                                                            servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    row = {"category": 1, "method": "average_data", "period_start": "2025-03-01", "period_end": "2025-03-31",
           "quantity": 2, "unit": "MWh", "factor_source": "egrid", "factor_key": "CAMX"}
    with _client(api_a, _key(a, "write")) as c:
        bad = c.post("/emission-entries", json={"rows": [row, {**row, "unit": "kg"}]})
        assert bad.status_code == 422, bad.text
        assert [e["field"] for e in bad.json()["errors"]] == ["body.rows[1]"]
        kg = c.post("/emission-entries", json={"rows": [row, {**row, "kg_co2e": 1}]})
        assert kg.status_code == 422 and "kg_co2e" in kg.text  # kg is never taken from the caller
        ok = c.post("/emission-entries", json={"rows": [row]})
        assert ok.status_code == 201, ok.text
        assert ok.json()["rows"] == 1 and ok.json()["kg_co2e"] == pytest.approx(2000 * 0.195037)
        summary = c.get("/inventory/summary").json()
        assert len(summary["categories"]) == 15
        assert summary["t_co2e"] == pytest.approx(sum(x["t_co2e"] for x in summary["categories"]))


def test_suppliers_crud_and_bulk_all_or_nothing(tenants: tuple[TenantFixture, TenantFixture],
                                                servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    with _client(api_a, _key(a, "write")) as c:
        made = c.post("/suppliers", json={"name": "Api Steel", "naics_code": "331110", "country": "US",
                                          "lei": "5493001KJTIIGC8Y1R12", "annual_spend": 1250.5,
                                          "spend_currency": "EUR", "spend_year": 2025})
        assert made.status_code == 201, made.text
        assert made.json()["lei"] == "5493001KJTIIGC8Y1R12" and made.json()["annual_spend"] == 1250.5
        sid = made.json()["id"]
        dup = c.post("/suppliers", json={"name": "API STEEL Inc."})  # the same normalised name
        assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "body.name", dup.text
        dup = c.post("/suppliers", json={"name": "Other Steel", "lei": "5493001KJTIIGC8Y1R12"})
        assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "body.lei", dup.text
        assert c.patch(f"/suppliers/{sid}", json={"country": "DE"}).json()["country"] == "DE"
        assert c.patch(f"/suppliers/{2**62}", json={"country": "DE"}).status_code == 404
        bad = c.post("/suppliers", json={"name": "Bad", "country": "Germany"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.country"
        for field, value in (("country", "XX"), ("naics_code", "999999"), ("lei", "5493001KJTIIGC8Y1R13"),
                             ("spend_currency", "ZZZ")):
            bad = c.post("/suppliers", json={"name": "Bad", field: value})
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == f"body.{field}", bad.text
        r = c.post("/suppliers/bulk", json={"suppliers": [{"name": "Bulk One"}, {"name": "Bulk One"}]})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.suppliers[1].name", r.text
        r = c.post("/suppliers/bulk", json={"suppliers": [{"name": "Bulk Two"}, {"name": "Bulk Three",
                                                                                  "duns": "12"}]})
        assert r.status_code == 422 and r.json()["errors"] == [
            {"field": "body.suppliers[1].duns", "message": "DUNS number '12' is not nine digits"}]
        assert c.get("/suppliers", params={"name": "bulk two"}).json()["items"] == []  # all or nothing
        both = [{"name": "Bulk One"}, {"name": "Api Steel", "country": "FR"}]
        r = c.post("/suppliers/bulk", json={"suppliers": both})
        assert r.json() == {"created": 1, "updated": 1, "unchanged": 0}
        assert c.get(f"/suppliers/{sid}").json()["country"] == "FR"
        assert c.get("/suppliers", params={"name": "bulk"}).json()["items"][0]["name"] == "Bulk One"
        # DELETE archives: entries and history keep the record.
        in_use = a.supplier_ids[next(iter(a.supplier_ids))]
        assert c.delete(f"/suppliers/{in_use}", params={"reason": "no longer a supplier"}).status_code == 204
        assert c.get(f"/suppliers/{in_use}").json()["archived_at"] is not None
        assert c.delete(f"/suppliers/{in_use}").status_code == 409
        assert in_use not in [s["id"] for s in c.get("/suppliers", params={"limit": 1000}).json()["items"]]
        archived = c.get("/suppliers", params={"archived": "true", "limit": 1000}).json()["items"]
        assert in_use in [s["id"] for s in archived]
        assert c.post(f"/suppliers/{in_use}/restore").json()["archived_at"] is None


def test_supplier_merge_and_history_name_the_caller(tenants: tuple[TenantFixture, TenantFixture],
                                                    servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    issued = keys.create_key(a.admin, a.slug, f"merger-{time.monotonic_ns()}", "write")
    with _client(api_a, issued.key) as c:
        keep = c.post("/suppliers", json={"name": "Merge Keep"}).json()["id"]
        other = c.post("/suppliers", json={"name": "Merge Other", "duns": "150483782", "country": "GB"}).json()["id"]
        assert c.post(f"/suppliers/{keep}/merge", json={"other": 2**62, "reason": "x"}).json()["errors"][0][
            "field"] == "body.other"
        r = c.post(f"/suppliers/{keep}/merge", json={"other": other, "reason": "one company"})
        assert r.status_code == 200, r.text
        assert r.json()["duns"] == "150483782" and r.json()["country"] == "GB"
        assert c.get(f"/suppliers/{other}").json()["merged_into"] == keep
        assert c.post(f"/suppliers/{keep}/merge", json={"other": other, "reason": "again"}).status_code == 409
        history = c.get(f"/suppliers/{keep}/history").json()["items"]
        assert [h["action"] for h in history] == ["create", "update"]
        assert {h["actor"] for h in history} == {f"key:{issued.prefix}"}
        assert history[1]["changes"]["duns"] == [None, "150483782"]
        assert "one company" in history[1]["reason"]
        assert c.get(f"/suppliers/{2**62}/history").status_code == 404
    with a.engine.connect() as conn:  # what the trigger wrote, read directly
        actors = set(conn.scalars(sa.text("SELECT actor FROM supplier_changes WHERE supplier_id = :s"), {"s": other}))
    assert actors == {f"key:{issued.prefix}"}


def test_http_ingest_shares_the_mqtt_path(tenants: tuple[TenantFixture, TenantFixture],
                                          servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, api_b = servers
    device = a.add_device(prefix="http").device
    key = _key(a, "ingest", device=device)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    batch = {"readings": [{"ts": rfc3339(now - dt.timedelta(minutes=i)), "kwh": 0.5 + i} for i in range(50)]}
    with _client(api_a, key) as c:
        r = c.post("/iot/ingest/", json=batch)
        assert r.status_code == 200, r.text
        assert r.json() == {"device": device, "readings": 50, "stored": 50, "duplicates": 0}
        again = c.post("/iot/ingest/", json=batch)  # a gateway resending after a lost answer
        assert again.json()["stored"] == 0 and again.json()["duplicates"] == 50
        bad = c.post("/iot/ingest/", content=b'{"ts": "yesterday", "kwh": 1}')
        assert bad.status_code == 422 and "RFC 3339" in bad.json()["detail"]
        other = next(iter(a.device_ids))
        wrong = c.post("/iot/ingest/", json={"ts": rfc3339(now), "kwh": 1, "device": other})
        assert wrong.status_code == 422 and "names device" in wrong.json()["detail"]
    with _client(api_b, key) as c:  # tenant A's device key on tenant B's API
        assert c.post("/iot/ingest/", json=batch).status_code == 401
    with a.admin.connect() as conn:
        stored = conn.scalar(sa.text("SELECT count(*) FROM readings WHERE device_id = :d"),
                             {"d": a.device_ids[device]})
        rejects = conn.execute(sa.text("SELECT topic, reason FROM rejects WHERE tenant_id = :t ORDER BY id"),
                               {"t": a.tenant_id}).all()
        seen = conn.scalar(sa.text("SELECT last_seen FROM devices WHERE id = :d"), {"d": a.device_ids[device]})
    assert stored == 50 and seen is not None
    assert [r.topic for r in rejects[-2:]] == [f"scope3/{a.slug}/{device}/readings"] * 2
    assert "RFC 3339" in rejects[-2].reason


def test_every_request_is_logged_and_rates_are_limited(make_tenant: TenantFactory) -> None:
    t = make_tenant(plan="free")
    server = ApiServer(t).start()
    try:
        issued, hot = (keys.create_key(t.admin, t.slug, name, "read") for name in ("busy", "busy-hot"))
        answers = {}
        # At once, so that even a slow machine sends them faster than the free plan's 5 a second (burst 20);
        # the list of entries is answered by the hot path (scope3lib.api.hotpath), which limits as well.
        for path, key in (("/suppliers", issued.key), ("/emission-entries", hot.key)):
            with _client(server, key) as c, ThreadPoolExecutor(20) as pool:
                answers[path] = list(pool.map(lambda _: c.get(path), range(40)))  # noqa: B023 - used at once
        for path, got in answers.items():
            codes = [r.status_code for r in got]
            assert codes.count(200) >= 20 and 429 in codes and set(codes) == {200, 429}, (path, codes)
            limited = next(r for r in got if r.status_code == 429)
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.headers["content-type"] == "application/problem+json"

        def logged() -> list[tuple[str, str, int]]:
            with t.admin.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(  # type: ignore[misc]
                    "SELECT principal, route, status FROM api_requests WHERE tenant_id = :t"), {"t": t.tenant_id})]

        rows = wait_until(lambda: len(logged()) >= 80 and logged(), 10, "the request log")
        assert {(f"key:{issued.prefix}", "/suppliers", 200), (f"key:{issued.prefix}", "/suppliers", 429),
                (f"key:{hot.prefix}", "/emission-entries", 200),
                (f"key:{hot.prefix}", "/emission-entries", 429)} <= set(rows)
        listed = {k["name"]: k for k in keys.list_keys(t.admin, t.slug)}
        assert listed["busy"]["last_used_at"] is not None
    finally:
        server.stop()


def test_every_resource_reads_and_the_writes_go_through_the_library(
        tenants: tuple[TenantFixture, TenantFixture], servers: tuple[ApiServer, ApiServer]) -> None:
    from scope3lib.ledger import log as ledger_log

    a, b = tenants
    api_a, _ = servers
    ledger_log.checkpoint(a.admin, a.data_dir, a.slug)
    read, write = _client(api_a, _key(a, "read")), _client(api_a, _key(a, "write"))
    for path in ("/factor-datasets", "/factors?source=egrid&limit=5", "/devices", "/readings", "/ml/estimates",
                 "/ml/hotspots", "/scenarios", "/ledger/checkpoints", "/reports/runs", "/jobs"):
        r = read.get(path)
        assert r.status_code == 200, (path, r.text)
        assert "items" in r.json()
    assert read.get("/factors", params={"source": "egrid", "limit": 5}).json()["items"][0]["source"] == "egrid"
    keys_ = read.get("/ledger/public-key").json()
    assert keys_[0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")
    proof = read.get(f"/ledger/entries/{a.entry_ids[0]}/proof")
    assert proof.status_code == 200, proof.text
    assert proof.json()["proof"]["tree_size"] >= 1 and proof.json()["checkpoint"] == \
        read.get("/ledger/checkpoints").json()["items"][0]["note"]
    # Devices: registered, changed, re-keyed and removed by the library's functions.
    made = write.post("/devices", json={"device": "api-meter", "grid_region": "CAMX"})
    assert made.status_code == 201, made.text
    assert made.json()["mqtt_password"] and made.json()["topic"] == f"scope3/{a.slug}/api-meter/readings"
    assert write.post("/devices", json={"device": "api-meter", "grid_region": "CAMX"}).status_code == 409
    assert write.post("/devices", json={"device": "x", "grid_region": "MARS"}).status_code == 422
    assert write.patch("/devices/api-meter", json={"grid_region": "erct"}).json()["grid_region"] == "ERCT"
    mine, theirs = next(iter(a.supplier_ids.values())), next(iter(b.supplier_ids.values()))
    assert write.patch("/devices/api-meter", json={"supplier_id": mine, "category": 4}).json()["supplier_id"] == mine
    assert write.patch("/devices/api-meter", json={"supplier_id": None}).json()["supplier_id"] is None
    assert write.patch("/devices/api-meter", json={"supplier_id": theirs}).status_code == 422  # not this tenant's
    assert write.patch("/devices/api-meter", json={"grid_region": "MARS"}).status_code == 422
    assert write.patch("/devices/no-such-meter", json={"category": 2}).status_code == 404
    assert read.get("/devices/api-meter").json()["category"] == 4
    assert write.post("/devices/api-meter/credentials").json()["mqtt_password"] != made.json()["mqtt_password"]
    assert write.delete("/devices/api-meter").status_code == 204
    assert read.get("/devices/api-meter").status_code == 404
    # Scenarios: saved, run, deleted.
    scenario = {"name": "api-2030", "base_year": 2025, "target_year": 2030, "growth": 0.02, "discount_rate": 0.05,
                "levers": [{"kind": "spend_reduction", "reduction": 0.1, "start_year": 2026, "category": 1}]}
    saved = write.put("/scenarios/api-2030", json=scenario)
    assert saved.status_code == 200, saved.text
    ran = read.post("/scenarios/api-2030/run")
    assert ran.status_code == 200, ran.text
    assert ran.json()["totals"] and ran.json()["fingerprint"]
    assert read.put("/scenarios/api-2030", json=scenario).status_code == 403
    assert write.delete("/scenarios/api-2030").status_code == 204
    assert read.get("/scenarios/api-2030").status_code == 404
    # A prediction is a job: 202 with its Location, then its outcome.
    job = write.post("/ml/predictions", json={})
    assert job.status_code == 202, job.text
    location, deadline = job.headers["location"], time.monotonic() + 60
    while (done := read.get(f"/{location}").json())["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done["status"] == "succeeded", done
    assert done["result"]["basis"] in ("ml", "eeio")
    bad = write.post("/reports/runs", json={"report": "no-such-report"})
    assert bad.status_code == 422 and "unknown report" in bad.json()["detail"]
    read.close()
    write.close()


def test_the_analyst_notebook_reads_through_the_api(tenants: tuple[TenantFixture, TenantFixture],
                                                    servers: tuple[ApiServer, ApiServer], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """notebooks/analyst/api.ipynb as the hub runs it: SCOPE3_API_URL and the analyst's token (a read key here)."""
    import papermill

    a, _ = tenants
    api_a, _ = servers
    for key in [k for k in os.environ if k.startswith(("SCOPE3_", "JUPYTERHUB_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SCOPE3_API_URL", api_a.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", _key(a, "read"))
    notebook = REPO / "notebooks" / "analyst" / "api.ipynb"
    out = tmp_path / "api.ipynb"
    papermill.execute_notebook(str(notebook), str(out), kernel_name="python3", cwd=str(notebook.parent),
                               progress_bar=False, execution_timeout=300)
    shown = out.read_text()
    assert "t CO2e in all" in shown and "category 1 entries" in shown
    assert "spend_based" in shown or "average_data" in shown


def test_apikey_commands(tenants: tuple[TenantFixture, TenantFixture], servers: tuple[ApiServer, ApiServer],
                         database_url: str, data_dir: Path) -> None:
    """`scope3 apikey create/list/rotate/revoke`: the secret once, refusals in one line with exit codes."""
    a, _ = tenants
    api_a, _ = servers
    made = invoke_cli(database_url, data_dir, "apikey", "create", a.slug, "cli-key", "--scope", "read",
                      "--expires", "90d", "--json")
    assert made.exit_code == 0, made.output
    issued = json.loads(made.output)
    assert issued["key"].startswith(issued["prefix"] + "_") and issued["expires_at"]
    assert _client(api_a, issued["key"]).get("/suppliers").status_code == 200
    listed = invoke_cli(database_url, data_dir, "apikey", "list", a.slug)
    assert issued["prefix"] in listed.output and "cli-key" in listed.output and issued["key"] not in listed.output
    again = invoke_cli(database_url, data_dir, "apikey", "create", a.slug, "cli-key", "--scope", "read")
    assert again.exit_code == 2 and "a live key named 'cli-key' exists" in again.output
    no_device = invoke_cli(database_url, data_dir, "apikey", "create", a.slug, "gw", "--scope", "ingest")
    assert no_device.exit_code == 2 and "--device" in no_device.output
    bad = invoke_cli(database_url, data_dir, "apikey", "create", a.slug, "x", "--scope", "read", "--expires", "soon")
    assert bad.exit_code == 2 and "invalid expiry 'soon'" in bad.output
    rotated = invoke_cli(database_url, data_dir, "apikey", "rotate", a.slug, "cli-key", "--json")
    assert rotated.exit_code == 0, rotated.output
    assert _client(api_a, issued["key"]).get("/suppliers").status_code == 401
    revoked = invoke_cli(database_url, data_dir, "apikey", "revoke", a.slug, "cli-key")
    assert revoked.exit_code == 0 and json.loads(rotated.output)["prefix"] in revoked.output
    gone = invoke_cli(database_url, data_dir, "apikey", "revoke", a.slug, "cli-key")
    assert gone.exit_code == 1 and "no live API key named 'cli-key'" in gone.output


def _declared(server: ApiServer, key: str) -> httpx.Client:
    """A client whose requests skip the hot path (scope3lib.api.hotpath takes ``Bearer`` API keys only) and
    are answered by the declared routes, with the same key (JupyterHub's ``token`` scheme)."""
    return _client(server, key, "token")


def test_the_hot_routes_answer_as_their_declared_routes(tenants: tuple[TenantFixture, TenantFixture],
                                                        servers: tuple[ApiServer, ApiServer]) -> None:
    a, _ = tenants
    api_a, _ = servers
    key = _key(a, "read")
    queries: list[dict[str, str] | str] = [
        {"limit": "5"}, {"limit": "3", "category": "1"}, {"method": "spend_based", "period_from": "2000-01-01"},
        {"limit": "0"}, {"category": "abc"}, {"cursor": "garbage"}, {"method": "guess"}, {"limit": "1001"},
        "limit=2&limit=4", "category=", "limit=2&unknown=1", {"supplier_id": str(2**63)},
    ]
    with _client(api_a, key) as hot, _declared(api_a, key) as declared:
        for q in queries:
            params = q if isinstance(q, dict) else httpx.QueryParams(q)
            h, d = hot.get("/emission-entries", params=params), declared.get("/emission-entries", params=params)
            assert (h.status_code, h.json(), h.headers.get("link")) == \
                (d.status_code, d.json(), d.headers.get("link")), q
            assert h.headers["content-type"] == d.headers["content-type"], q
        first = hot.get("/emission-entries", params={"limit": 2})
        assert first.status_code == 200 and len(first.json()["items"]) == 2 and "rel=\"next\"" in first.headers["link"]
        assert hot.get("/emission-entries", params={"category": "abc"}).json()["errors"][0]["field"] == "query.category"
    device = a.add_device(prefix="hot").device
    ingest_key = _key(a, "ingest", device=device)
    reading = {"ts": rfc3339(dt.datetime.now(dt.UTC).replace(microsecond=0)), "kwh": 2.5}
    with _client(api_a, ingest_key) as hot, _declared(api_a, ingest_key) as declared:
        assert hot.post("/iot/ingest/", json=reading).json() == {"device": device, "readings": 1, "stored": 1,
                                                                 "duplicates": 0}
        assert declared.post("/iot/ingest/", json=reading).json() == {"device": device, "readings": 1, "stored": 0,
                                                                      "duplicates": 1}
        for client in (hot, declared):
            r = client.post("/iot/ingest/", content=b'{"ts": 1}')
            assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    for client in (_client(api_a, key), _declared(api_a, key)):  # a read key may not ingest
        r = client.post("/iot/ingest/", json=reading)
        assert r.status_code == 403 and "ingest scope" in r.json()["detail"]
    keys.revoke_key(a.admin, a.slug, keys.list_keys(a.admin, a.slug)[0]["prefix"])  # the newest: the device key
    r = _client(api_a, ingest_key).post("/iot/ingest/", json=reading)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    wrong = ingest_key[:-4] + ("AAAA" if not ingest_key.endswith("AAAA") else "BBBB")
    assert _client(api_a, wrong).post("/iot/ingest/", json=reading).json()["detail"] == "unknown API key"
    assert _client(api_a, wrong).get("/emission-entries").json()["detail"] == "unknown API key"


def _readings_of(t: TenantFixture, device: str) -> int:
    with t.admin.connect() as conn:
        return int(conn.scalar(sa.text("SELECT count(*) FROM readings WHERE device_id = :d"),
                               {"d": t.device_ids[device]}) or 0)


def test_a_thousand_abandoned_requests_leave_the_service_serving(tenants: tuple[TenantFixture, TenantFixture],
                                                                 servers: tuple[ApiServer, ApiServer]) -> None:
    import socket

    a, _ = tenants
    api_a, _ = servers
    device = a.add_device(prefix="gone").device
    ingest_key, read_key = _key(a, "ingest", device=device), _key(a, "read")
    host = f"127.0.0.1:{api_a.port}"
    for i in range(1000):  # half a body then gone; a list request never read
        with socket.create_connection(("127.0.0.1", api_a.port), timeout=10) as s:
            if i % 2:
                s.sendall(f"POST /iot/ingest/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ingest_key}\r\n"
                          f"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"ts\": ".encode())
            else:
                s.sendall(f"GET /emission-entries?limit=1000 HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: Bearer {read_key}\r\n\r\n".encode())
    reading = {"ts": rfc3339(dt.datetime.now(dt.UTC).replace(microsecond=0)), "kwh": 1.0}
    r = wait_until(lambda: _client(api_a, ingest_key).post("/iot/ingest/", json=reading), 60, "the API to answer")
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert _client(api_a, read_key).get("/emission-entries", params={"limit": 1}).status_code == 200
    assert _readings_of(a, device) == 1  # nothing of the half-sent bodies was stored or filed as a reject
    with a.admin.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM rejects WHERE topic = :t"),
                           {"t": f"scope3/{a.slug}/{device}/readings"}) == 0


def test_request_bodies_are_bounded(tenants: tuple[TenantFixture, TenantFixture],
                                    servers: tuple[ApiServer, ApiServer]) -> None:
    from scope3lib.api.bodylimit import MAX_REQUEST_BYTES
    from scope3lib.api.ingest import MAX_BYTES

    a, _ = tenants
    api_a, _ = servers
    device = a.add_device(prefix="big").device
    ingest_key, write_key = _key(a, "ingest", device=device), _key(a, "write")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    big = json.dumps({"readings": [{"ts": rfc3339(now - dt.timedelta(seconds=i)), "kwh": 1.0}
                                   for i in range(30_000)]}).encode()
    assert len(big) > MAX_BYTES

    def chunks(data: bytes) -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        for i in range(0, len(data), 1 << 18):
            yield data[i:i + (1 << 18)]

    json_type = {"Content-Type": "application/json"}
    for client in (_client(api_a, ingest_key), _declared(api_a, ingest_key)):  # the hot path and the route
        for content in (big, chunks(big)):
            r = client.post("/iot/ingest/", content=content, headers=json_type)
            assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json", r.text
            assert "several requests" in r.json()["detail"]
    huge = b'{"suppliers": [' + b'{"name": "x"},' * (MAX_REQUEST_BYTES // 14) + b'{"name": "y"}]}'
    with _client(api_a, write_key) as c:
        for content in (huge, chunks(huge)):
            r = c.post("/suppliers/bulk", content=content, headers=json_type)
            assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json", r.text
        assert c.get("/suppliers", params={"limit": 1}).status_code == 200
    assert _readings_of(a, device) == 0
    with a.admin.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM suppliers WHERE tenant_id = :t AND name = 'y'"),
                           {"t": a.tenant_id}) == 0

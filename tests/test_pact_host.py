"""The PACT v3 host over real HTTPS: ``scope3 api serve SLUG --tls-cert --tls-key`` started in its own process
against real PostgreSQL, called as the WBCSD conformance service calls a host (its mandatory test cases, numbered
as in docs/pact.md), answering requests by POSTing to a small callback host this test runs over TLS, refusing
plain HTTP, and keeping each tenant's footprints and clients to itself."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import queue
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scope3lib.api.context import ApiContext
from scope3lib.api.pact_host import HostState, deliver
from scope3lib.errors import FootprintNotFound, UnknownTenant
from scope3lib.pact import clients, events, store
from scope3lib.pact.filters import FootprintFilter
from scope3lib.pact.model import parse_footprint
from scope3lib.pact.recipient import Recipient
from tests.helpers import SCOPE3, ApiServer, TenantFactory, TenantFixture, free_port, invoke_cli, scope3_env, wait_until
from tests.test_pact_model import footprint

pytestmark = pytest.mark.db

NIL = "00000000-0000-0000-0000-000000000000"
PARTNER_ID, PARTNER_SECRET = "test_client_id", "test_client_secret"  # what the conformance service accepts


def _certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = where / "cert.pem", where / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Received:
    path: str
    authorization: str | None
    content_type: str | None
    body: dict[str, Any]


class CallbackHost:
    """A partner's PACT host as far as answers need one: a token endpoint taking the conformance service's test
    credentials, and ``/3/events`` that keeps what it is sent; over TLS."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.received: queue.Queue[Received] = queue.Queue()
        self.failures = 0  # answer that many events with 503 first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/auth/token":
                    expected = base64.b64encode(f"{PARTNER_ID}:{PARTNER_SECRET}".encode()).decode()
                    ok = self.headers.get("Authorization") == f"Basic {expected}"
                    self._json(200 if ok else 401, {"access_token": "callback-token", "token_type": "Bearer"}
                               if ok else {"error": "invalid_client"})
                    return
                if outer.failures > 0:
                    outer.failures -= 1
                    self._json(503, {"code": "InternalError", "message": "down for a moment"})
                    return
                outer.received.put(Received(self.path, self.headers.get("Authorization"),
                                            self.headers.get("Content-Type"), json.loads(body)))
                self._json(200, None)

            def _json(self, status: int, data: Any) -> None:
                raw = b"" if data is None else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, timeout: float = 30) -> Received:
        return self.received.get(timeout=timeout)

    def stop(self) -> None:
        self.server.shutdown()


class PactService:
    """``scope3 api serve SLUG --port P --tls-cert FILE --tls-key FILE`` in its own process."""

    def __init__(self, tenant: TenantFixture, cert: Path, key: Path, log: Path) -> None:
        self.port, self.trust = free_port(), ssl.create_default_context(cafile=str(cert))
        self.base = f"https://127.0.0.1:{self.port}/pact"
        env = scope3_env(None, tenant.data_dir, SCOPE3_TENANT=tenant.slug,
                         SCOPE3_TENANT_DATABASE_URL=tenant.database_url,
                         SCOPE3_TENANT_DATABASE_URL_READONLY=tenant.database_url_readonly,
                         SSL_CERT_FILE=str(cert))  # the service trusts the callback host's certificate
        with log.open("w") as out:  # a file, not a pipe nobody reads, which could fill and stop the service
            self.process = subprocess.Popen([*SCOPE3, "api", "serve", tenant.slug, "--port", str(self.port),
                                             "--tls-cert", str(cert), "--tls-key", str(key)], env=env,
                                            stdout=out, stderr=subprocess.STDOUT)

        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited: {log.read_text()}")
            try:
                return httpx.get(f"{self.base}/.well-known/openid-configuration", verify=self.trust).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 180, "the PACT host to answer over TLS")  # a process start on a busy machine

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base, headers=headers, verify=self.trust, timeout=30)

    def token(self, client_id: str, secret: str) -> httpx.Response:
        with self.client() as c:
            return c.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


def _catalogue(owner: str) -> list[dict[str, Any]]:
    """Four footprints of one company: products, geographies, classifications, statuses and validity differ."""
    company = f"urn:pact:{owner}.example:company-id:1"
    ids = [str(uuid.uuid4()) for _ in range(4)]
    return [
        footprint(id=ids[0], companyIds=[company], productIds=[f"urn:pact:{owner}.example:product:1"]),
        footprint(id=ids[1], companyIds=[company, "urn:pact:other.example:company-id:9"],
                  productIds=[f"urn:pact:{owner}.example:product:2"], validityPeriodStart="2025-06-01T00:00:00Z",
                  validityPeriodEnd="2026-06-01T00:00:00Z",
                  **{"pcf.geographyCountry": ..., "pcf.geographyRegionOrSubregion": "Western Europe"}),
        footprint(id=ids[2], companyIds=[company], productIds=[f"urn:pact:{owner}.example:product:3"],
                  productClassifications=...,
                  **{"pcf.geographyCountry": ..., "pcf.geographyCountrySubdivision": "DE-BW"}),
        footprint(id=ids[3], companyIds=[company], productIds=[f"urn:pact:{owner}.example:product:2"],
                  **{"pcf.geographyCountry": ...}),  # global
    ]  # fmt: skip


@dataclass
class Host:
    tenant: TenantFixture
    service: PactService
    client_id: str
    secret: str
    footprints: list[dict[str, Any]]

    def bearer(self) -> str:
        got = self.service.token(self.client_id, self.secret)
        assert got.status_code == 200, got.text
        return str(got.json()["access_token"])


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def callbacks(tls: tuple[Path, Path]) -> Iterator[CallbackHost]:
    host = CallbackHost(*tls)
    yield host
    host.stop()


@pytest.fixture(scope="module")
def hosts(make_module_tenant: TenantFactory, tls: tuple[Path, Path],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Host, Host]]:
    made = []
    for owner in ("alpha", "beta"):
        t = make_module_tenant()
        items = _catalogue(owner)
        store.import_footprints(t.admin, t.slug, items, source=f"{owner}.json")
        issued = clients.create_client(t.admin, t.slug, "conformance", partner_client_id=PARTNER_ID,
                                       partner_client_secret=PARTNER_SECRET)
        log = tmp_path_factory.mktemp("pact-host") / f"{owner}.log"
        made.append(Host(t, PactService(t, *tls, log), issued.client_id, issued.client_secret, items))
    yield made[0], made[1]
    for h in made:
        h.service.stop()


# --- authentication and discovery: test cases 1, 2, 18, 19 ------------------------------------------------


def test_discovery_names_the_token_endpoint_and_credentials_give_an_expiring_token(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.service.client() as c:
        found = c.get("/.well-known/openid-configuration").json()
    assert found["token_endpoint"] == f"{a.service.base}/auth/token"
    assert found["grant_types_supported"] == ["client_credentials"]
    got = a.service.token(a.client_id, a.secret)  # test cases 1 and 18
    assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
    assert got.json()["token_type"] == "Bearer" and got.json()["expires_in"] == 3600
    with a.service.client() as c:  # the credentials in the form body (client_secret_post) as well
        posted = c.post("/auth/token", data={"grant_type": "client_credentials", "client_id": a.client_id,
                                             "client_secret": a.secret})
    assert posted.status_code == 200 and posted.json()["access_token"] != got.json()["access_token"]


def test_wrong_credentials_and_other_grants_are_refused(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    for client_id, secret in ((a.client_id, "wrong"), ("pact_0123456789abcdef", a.secret), ("random", "random")):
        got = a.service.token(client_id, secret)  # test cases 2 and 19
        assert got.status_code == 401 and got.json()["error"] == "invalid_client"
        assert "access_token" not in got.json()
    with a.service.client() as c:
        other = c.post("/auth/token", data={"grant_type": "password"}, auth=(a.client_id, a.secret))
        bare = c.post("/auth/token", data={"grant_type": "client_credentials"})
    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"


def test_invalid_expired_and_revoked_tokens_are_refused_at_once(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    fp_id = a.footprints[0]["id"]
    with a.service.client("not-a-token") as c:  # test cases 6, 7 and 16
        for got in (c.get("/3/footprints"), c.get(f"/3/footprints/{fp_id}"),
                    c.post("/3/events", json=events.published("https://x.example", [NIL]),
                           headers={"Content-Type": events.MEDIA_TYPE})):
            assert got.status_code == 401 and got.json()["code"] == "BadRequest", got.text
    token = a.bearer()
    with a.tenant.admin.begin() as conn:
        conn.execute(sa.text("UPDATE pact_tokens SET expires_at = now() - interval '1 second' WHERE tenant_id = :t"),
                     {"t": a.tenant.tenant_id})
    with a.service.client(token) as c:
        expired = c.get("/3/footprints")
    assert expired.status_code == 401 and expired.json()["code"] == "TokenExpired"
    issued = clients.create_client(a.tenant.admin, a.tenant.slug, "short-lived partner")
    with a.service.client(a.service.token(issued.client_id, issued.client_secret).json()["access_token"]) as c:
        assert c.get("/3/footprints").status_code == 200
        clients.revoke_client(a.tenant.admin, a.tenant.slug, issued.client_id)
        assert c.get("/3/footprints").status_code == 401
    assert a.service.token(issued.client_id, issued.client_secret).status_code == 401


# --- list, get, pages, 404: test cases 3, 4, 5, 8 -------------------------------------------------------


def test_list_and_get_serve_the_published_footprints_as_given(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.service.client(a.bearer()) as c:
        listed = c.get("/3/footprints")  # test case 4
        assert listed.status_code == 200
        data = listed.json()["data"]
        assert [d["id"] for d in data] == [f["id"] for f in a.footprints]
        assert data == [parse_footprint(f).to_json() for f in a.footprints]
        for fp in a.footprints:  # test case 3
            got = c.get(f"/3/footprints/{fp['id']}")
            assert got.status_code == 200 and got.json()["data"]["id"] == fp["id"]
            parse_footprint(got.json()["data"])  # valid by the v3 model
        for missing in (NIL, "not-a-uuid"):  # test case 8
            got = c.get(f"/3/footprints/{missing}")
            assert got.status_code == 404 and got.json()["code"] == "NotFound" and got.json()["message"]


def test_pages_follow_the_next_link_to_the_end_without_repeats(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    seen: list[str] = []
    with a.service.client(a.bearer()) as c:
        got = c.get("/3/footprints", params={"limit": "1"})
        first_link = got.links["next"]["url"]
        while True:  # test case 5, then to the end
            assert got.status_code == 200 and len(got.json()["data"]) == 1
            seen += [d["id"] for d in got.json()["data"]]
            if "next" not in got.links:
                break
            link = got.links["next"]["url"]
            assert link.startswith(f"{a.service.base}/3/footprints?") and "limit=1" in link
            got = c.get(link)
        again = c.get(first_link)  # a link can be called more than once (it holds no state)
        assert again.json()["data"][0]["id"] == a.footprints[1]["id"]
        assert c.get("/3/footprints", params={"limit": "-1"}).json()["code"] == "BadRequest"
    assert seen == [f["id"] for f in a.footprints]


# --- filters: test cases 20 to 39 ----------------------------------------------------------------------


def _filter_cases(first: dict[str, Any]) -> list[tuple[list[tuple[str, str]], set[int]]]:
    """(query, indexes of the catalogue it selects), as the conformance service derives them from the first
    footprint; the catalogue is :func:`_catalogue`."""
    bogus = uuid.uuid4().hex
    return [
        ([("productId", first["productIds"][0])], {0}),  # 20
        ([("companyId", first["companyIds"][0])], {0, 1, 2, 3}),  # 21
        ([("geography", "DE")], {0}),  # 22
        ([("geography", "Western Europe")], {1}),
        ([("classification", first["productClassifications"][0])], {0, 1, 3}),  # 23
        ([("validOn", "2025-01-01T00:00:00Z")], {0, 2, 3}),  # 24: default validity starts at referencePeriodEnd
        ([("validAfter", "2025-05-31T00:00:00Z")], {1}),  # 25
        ([("validBefore", "2026-06-02T00:00:00Z")], {1}),  # 26
        ([("status", "Active")], {0, 1, 2, 3}),  # 27
        ([("status", "Active"), ("productId", first["productIds"][0])], {0}),  # 28
        ([("companyId", first["companyIds"][0]), ("companyId", f"urn:bogus:{bogus}"),
          ("companyId", f"urn:bogus:{bogus}2")], {0, 1, 2, 3}),  # 29
        ([("productid", first["productIds"][0].upper())], {0}),  # names and values without case
        ([("productId", f"urn:bogus:product:{bogus}")], set()),  # 30
        ([("companyId", f"urn:bogus:company:{bogus}")], set()),  # 31
        ([("geography", "XX")], set()),  # 32
        ([("classification", f"urn:bogus:classification:{bogus}")], set()),  # 33
        ([("validOn", "1900-01-01T00:00:00Z")], set()),  # 34
        ([("validAfter", "2099-12-31T23:59:59Z")], set()),  # 35
        ([("validBefore", "1900-01-01T00:00:00Z")], set()),  # 36
        ([("status", f"BogusStatus{bogus}")], set()),  # 37
        ([("companyId", f"urn:bogus:{bogus}"), ("productId", first["productIds"][0])], set()),  # 38
        ([("companyId", f"urn:bogus:{bogus}{i}") for i in range(3)], set()),  # 39
    ]


def test_filters_select_as_the_conformance_service_checks(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    with a.service.client(a.bearer()) as c:
        for query, expected in _filter_cases(a.footprints[0]):
            got = c.get("/3/footprints", params=query)
            assert got.status_code == 200, (query, got.text)
            assert got.json() == {"data": got.json()["data"]}
            assert {d["id"] for d in got.json()["data"]} == {a.footprints[i]["id"] for i in expected}, query
        bad = c.get("/3/footprints", params={"validOn": "yesterday"})
    assert bad.status_code == 400 and bad.json()["code"] == "BadRequest" and "validOn" in bad.json()["message"]


# --- events: test cases 12, 13, 14.A, 14.B, 15, 40 -----------------------------------------------------


def _post_event(c: httpx.Client, event: dict[str, Any]) -> httpx.Response:
    return c.post("/3/events", content=json.dumps(event),
                  headers={"Content-Type": "application/cloudevents+json; charset=UTF-8"})


def test_requests_are_answered_asynchronously_at_the_partners_events_endpoint(
        hosts: tuple[Host, Host], callbacks: CallbackHost) -> None:
    a, _ = hosts
    run = f"run-{uuid.uuid4()}"
    first = a.footprints[0]
    with a.service.client(a.bearer()) as c:
        asked = events.new_event(events.REQUEST_CREATED, callbacks.url, {"productId": first["productIds"]},
                                 event_id=f"{run}/12")
        got = _post_event(c, asked)  # test case 12
        assert got.status_code == 200 and got.content == b""
        answer = callbacks.next()  # test case 13
        assert answer.path == "/3/events" and answer.authorization == "Bearer callback-token"
        assert answer.content_type == events.MEDIA_TYPE
        fulfilled = events.parse_event(answer.body)
        assert isinstance(fulfilled, events.RequestFulfilledEvent)
        assert fulfilled.data.requestEventId == f"{run}/12"
        assert [fp.id for fp in fulfilled.data.pfs] == [first["id"]]
        assert fulfilled.source == f"{a.service.base}/3/events"

        nothing = events.new_event(events.REQUEST_CREATED, callbacks.url, {"productId": ["urn:pact:null"]},
                                   event_id=f"{run}/14.A")
        assert _post_event(c, nothing).status_code == 200  # test case 14.A
        rejected = events.parse_event(callbacks.next().body)  # test case 14.B
        assert isinstance(rejected, events.RequestRejectedEvent)
        assert rejected.data.requestEventId == f"{run}/14.A" and rejected.data.error.code == "NotFound"
        assert rejected.data.error.message

        published = _post_event(c, events.published(callbacks.url, [str(uuid.uuid4())]))
        assert published.status_code == 200  # test case 15
        not_uuid = events.new_event(events.PUBLISHED, callbacks.url, {"pfIds": ["urn:gtin:4712345060507"]})
        refused = _post_event(c, not_uuid)  # test case 40
        assert refused.status_code == 400 and refused.json()["code"] == "BadRequest"
        assert "data.pfIds[0]" in refused.json()["message"]
        wrong_type = c.post("/3/events", json=asked)  # application/json is not structured mode
        assert wrong_type.status_code == 400 and "Content-Type" in wrong_type.json()["message"]

    def recorded() -> list[tuple[str, str, str, str]]:
        with a.tenant.admin.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT direction, action, status, event_id FROM pact_exchanges WHERE tenant_id = :t "
                "AND (event_id LIKE :r OR event_id IN (:f, :j)) ORDER BY id"),
                {"t": a.tenant.tenant_id, "r": f"{run}/%", "f": fulfilled.id, "j": rejected.id}).all()
        return [tuple(r) for r in rows]

    wait_until(lambda: len(recorded()) == 4, 10, "the answers to be recorded")  # recorded after the partner's 200
    assert sorted(recorded()) == sorted([("in", "event", "ok", f"{run}/12"), ("in", "event", "ok", f"{run}/14.A"),
                                        ("out", "event", "ok", fulfilled.id), ("out", "event", "ok", rejected.id)])


def test_an_answer_is_delivered_again_after_failures_and_a_partner_that_stays_down_is_recorded(
        hosts: tuple[Host, Host], callbacks: CallbackHost, tls: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, _ = hosts
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))  # this process sends, and trusts the callback host
    ctx = cast(ApiContext, SimpleNamespace(write=a.tenant.engine, tenant_id=a.tenant.tenant_id))
    state = HostState(allow_http=False, retry_delays=(0.1, 0.2, 0.4))
    partner = clients.Partner(a.client_id, None, PARTNER_ID, PARTNER_SECRET)
    answer = events.request_rejected(f"{a.service.base}/3/events", f"run-{uuid.uuid4()}/1", "NotFound", "none")
    callbacks.failures = 2
    deliver(ctx, state, partner, callbacks.url, answer)
    assert callbacks.next(5).body["id"] == answer["id"]  # the third attempt got through
    down = f"https://127.0.0.1:{free_port()}"
    deliver(ctx, state, partner, down, {**answer, "id": "never-delivered"})
    with a.tenant.admin.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, status, summary, error FROM pact_exchanges WHERE tenant_id = :t "
                                    "AND direction = 'out' AND event_id IN (:ok, 'never-delivered') ORDER BY id"),
                            {"t": a.tenant.tenant_id, "ok": answer["id"]}).all()
    assert [(r.event_id, r.status) for r in rows] == [(answer["id"], "ok"), ("never-delivered", "failed")]
    assert rows[0].summary["attempts"] == 3 and "ConnectError" in rows[1].error


# --- HTTPS only: test cases 9, 10, 11, 17 --------------------------------------------------------------


def test_plain_http_is_refused(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    plain = a.service.base.replace("https://", "http://")
    token = a.bearer()
    for method, path in (("POST", "/auth/token"), ("GET", "/3/footprints"),
                         ("GET", f"/3/footprints/{a.footprints[0]['id']}"), ("POST", "/3/events")):
        try:  # the TLS port does not speak plain HTTP at all
            got = httpx.request(method, plain + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        except httpx.TransportError:
            continue
        assert got.status_code >= 400 and "access_token" not in got.text and '"data"' not in got.text
    served = ApiServer(a.tenant).start()  # the same API without TLS: every /pact route is refused, not redirected
    try:
        with httpx.Client(base_url=f"{served.url}/pact", timeout=10, follow_redirects=False) as c:
            answers = [c.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(a.client_id, a.secret)),
                       c.get("/.well-known/openid-configuration"),
                       c.get("/3/footprints", headers={"Authorization": f"Bearer {token}"}),
                       c.get(f"/3/footprints/{a.footprints[0]['id']}", headers={"Authorization": f"Bearer {token}"}),
                       _post_event(c, events.published("https://x.example", [NIL]))]
    finally:
        served.stop()
    for got in answers:  # test cases 9, 10, 11, 17
        assert got.status_code == 403 and got.json()["code"] == "AccessDenied" and "HTTPS" in got.json()["message"]


def test_the_development_setting_lets_plain_http_through(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    served = ApiServer(a.tenant, pact_allow_http=True).start()
    try:
        with httpx.Client(base_url=f"{served.url}/pact", timeout=10) as c:
            got = c.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(a.client_id, a.secret))
            assert got.status_code == 200
            listed = c.get("/3/footprints", headers={"Authorization": f"Bearer {got.json()['access_token']}"})
    finally:
        served.stop()
    assert len(listed.json()["data"]) == len(a.footprints)


# --- tenants ----------------------------------------------------------------------------------------------


def test_a_tenants_partner_gets_nothing_of_another_tenant(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    assert b.service.token(a.client_id, a.secret).status_code == 401  # A's credentials are unknown at B
    token_a = a.bearer()
    with b.service.client(token_a) as c:
        assert c.get("/3/footprints").status_code == 401
        assert c.get(f"/3/footprints/{b.footprints[0]['id']}").status_code == 401
    with a.service.client(token_a) as c:
        assert c.get(f"/3/footprints/{b.footprints[0]['id']}").status_code == 404
        listed = {d["id"] for d in c.get("/3/footprints").json()["data"]}
        by_product = c.get("/3/footprints", params={"productId": b.footprints[0]["productIds"][0]}).json()
    assert listed == {f["id"] for f in a.footprints} and by_product == {"data": []}


def test_the_pact_tables_keep_to_the_tenant_and_the_partners_secret_to_the_service(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    with a.tenant.engine.connect() as conn:  # A's read-write role, as the API and a notebook use it
        for table in ("pact_footprints", "pact_clients", "pact_tokens", "pact_exchanges"):
            assert set(conn.scalars(sa.text(f"SELECT DISTINCT tenant_id FROM {table}"))) == {a.tenant.tenant_id}
    with pytest.raises(UnknownTenant):  # B's tenant is invisible to A's role, so nothing is written for it
        store.import_footprints(a.tenant.engine, b.tenant.slug, [footprint(id=str(uuid.uuid4()))])
    with a.tenant.readonly.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM pact_clients WHERE partner_client_id IS NOT NULL")) >= 1
        for hidden in ("SELECT partner_client_secret FROM pact_clients", "SELECT token_hash FROM pact_tokens"):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), conn.begin_nested():
                conn.execute(sa.text(hidden))


# --- publishing: the CLI, all or nothing, deprecation ----------------------------------------------------


def test_the_cli_issues_credentials_once_and_imports_all_or_nothing(make_tenant: TenantFactory, database_url: str,
                                                                    tmp_path: Path) -> None:
    t = make_tenant()
    created = invoke_cli(database_url, t.data_dir, "pact", "client", "create", t.slug, "Acme buyer", "--json")
    assert created.exit_code == 0, created.output
    issued = json.loads(created.output)
    assert issued["client_id"].startswith("pact_") and len(issued["client_secret"]) >= 43
    listed = invoke_cli(database_url, t.data_dir, "pact", "client", "list", t.slug)
    assert issued["client_id"] in listed.output and issued["client_secret"] not in listed.output
    revoked = invoke_cli(database_url, t.data_dir, "pact", "client", "revoke", t.slug, issued["client_id"])
    assert revoked.exit_code == 0 and "revoked" in invoke_cli(database_url, t.data_dir, "pact", "client", "list",
                                                              t.slug).output

    good, bad = footprint(id=str(uuid.uuid4())), footprint(id=str(uuid.uuid4()))
    bad["pcf"]["declaredUnitOfMeasurement"] = "kilo"
    (tmp_path / "mixed.json").write_text(json.dumps([good, bad]))
    refused = invoke_cli(database_url, t.data_dir, "pact", "footprints", "import", t.slug, str(tmp_path / "mixed.json"))
    assert refused.exit_code == 2
    assert "mixed.json[1].pcf.declaredUnitOfMeasurement: 'kilo' is not one of" in refused.output
    assert store.list_footprints(t.admin, t.slug) == ([], None)  # nothing was taken

    (tmp_path / "good.json").write_text(json.dumps([good]))
    for _ in range(2):  # the same file again changes nothing
        done = invoke_cli(database_url, t.data_dir, "pact", "footprints", "import", t.slug, str(tmp_path / "good.json"))
        assert done.exit_code == 0, done.output
    assert "0 footprints published, 1 already published unchanged" in done.output
    changed = {**good, "comment": "a different value"}
    (tmp_path / "changed.json").write_text(json.dumps([changed]))
    again = invoke_cli(database_url, t.data_dir, "pact", "footprints", "import", t.slug, str(tmp_path / "changed.json"))
    assert again.exit_code == 2 and "precedingPfIds" in again.output

    successor = footprint(id=str(uuid.uuid4()), precedingPfIds=[good["id"]])
    assert store.import_footprints(t.engine, t.slug, [successor]).deprecated == 1  # from a notebook: the tenant's role
    assert store.get_footprint(t.readonly, t.slug, good["id"])["status"] == "Deprecated"
    listed_fps = invoke_cli(database_url, t.data_dir, "pact", "footprints", "list", t.slug).output
    assert "Deprecated" in listed_fps and successor["id"] in listed_fps
    with pytest.raises(FootprintNotFound, match="no product footprint"):
        store.deprecate(t.engine, t.slug, [NIL])


def test_a_published_urn_uuid_id_is_found_either_way(make_tenant: TenantFactory) -> None:
    t = make_tenant()
    raw = str(uuid.uuid4())
    store.import_footprints(t.engine, t.slug, [footprint(id=f"urn:uuid:{raw}")])
    assert store.get_footprint(t.readonly, t.slug, raw)["id"] == f"urn:uuid:{raw}"


# --- the recipient side: one tenant asks another over PACT -------------------------------------------------


def test_a_tenant_lists_gets_and_requests_a_partners_footprints_and_the_answer_reaches_its_own_host(
        hosts: tuple[Host, Host], tls: tuple[Path, Path]) -> None:
    a, b = hosts  # A buys from B
    b_for_a = clients.create_client(b.tenant.admin, b.tenant.slug, "alpha buyer")
    a_for_b = clients.create_client(a.tenant.admin, a.tenant.slug, "beta supplier", partner_url=b.service.base,
                                    partner_client_id=b_for_a.client_id, partner_client_secret=b_for_a.client_secret)
    clients.set_partner(b.tenant.admin, b.tenant.slug, b_for_a.client_id, a.service.base, a_for_b.client_id,
                        a_for_b.client_secret)
    trust = ssl.create_default_context(cafile=str(tls[0]))
    partner = Recipient.for_client(a.tenant.engine, a.tenant.slug, "beta supplier", verify=trust)  # A's own role

    assert [fp.id for fp in partner.list_footprints(limit=1)] == [f["id"] for f in b.footprints]  # 4 pages
    wanted = FootprintFilter(productId=(b.footprints[1]["productIds"][0],))
    assert {fp.id for fp in partner.list_footprints(wanted)} == {b.footprints[1]["id"], b.footprints[3]["id"]}
    assert partner.get_footprint(b.footprints[2]["id"]).to_json() == parse_footprint(b.footprints[2]).to_json()
    with pytest.raises(FootprintNotFound):
        partner.get_footprint(NIL)

    asked = partner.request(FootprintFilter(productId=(b.footprints[0]["productIds"][0],)),
                            f"{a.service.base}/3/events", comment="for our 2026 inventory")

    def arrived() -> Any:
        with a.tenant.admin.connect() as conn:
            return conn.execute(sa.text(
                "SELECT partner, status, summary FROM pact_exchanges WHERE tenant_id = :t AND direction = 'in' "
                "AND event_type = :e AND summary->>'requestEventId' = :r"),
                {"t": a.tenant.tenant_id, "e": events.REQUEST_FULFILLED, "r": asked}).first()

    got = wait_until(arrived, 30, "B's answer at A's /3/events")  # B's host got a token from A's, then POSTed
    assert got.partner == a_for_b.client_id and got.status == "ok"
    assert got.summary["pfIds"] == [b.footprints[0]["id"]]
    with a.tenant.admin.connect() as conn:
        mine = conn.execute(sa.text("SELECT action, status, http_status FROM pact_exchanges WHERE tenant_id = :t "
                                    "AND direction = 'out' AND partner = :p ORDER BY id"),
                            {"t": a.tenant.tenant_id, "p": a_for_b.client_id}).all()
    assert [tuple(r) for r in mine] == [("list", "ok", 200), ("list", "ok", 200), ("get", "ok", 200),
                                        ("get", "refused", 404), ("event", "ok", 200)]

"""The API as each tenant's hub runs it (``/services/api/``): hub tokens with the custom scopes their roles
grant, API keys, and nothing of one tenant through the other's hub, over real HTTP through the hubs' proxies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from scope3lib.api import keys
from tests.helpers import TenantFactory, TenantFixture, wait_until
from tests.test_hub import PASSWORD, Hub, _free_ports, _start, _stop

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def api_hubs(make_module_tenant: TenantFactory, database_url: str, data_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Hub, TenantFixture]]]:
    tmp = tmp_path_factory.mktemp("api-hubs")
    made = {slug: make_module_tenant(slug, suppliers=15, seed=n, devices=1, password=PASSWORD,
                                     users={f"{slug}-ana": "member", f"{slug}-vic": "viewer", f"{slug}-own": "owner"})
            for n, slug in enumerate(("api-a", "api-b"), 1)}
    started: dict[str, tuple[Hub, TenantFixture]] = {}
    try:
        for slug, tenant in made.items():
            _free_ports(data_dir, slug, dashboard_pool_size=0, scheduler=False, checkpoint_every_s=0,
                        allow_passwordless_database=True)
            hub = _start(database_url, data_dir, slug, tmp)
            wait_until(lambda h=hub: requests.get(f"{h.url}/services/api/openapi.json", timeout=5).ok, 60,  # type: ignore[misc]
                       f"{slug}'s API service")
            started[slug] = (hub, tenant)
        yield started
    finally:
        for hub, _ in started.values():
            _stop(hub)


def _token(hub: Hub, user: str) -> str:
    c = hub.client()
    assert c.login_only(user, PASSWORD).status_code == 302
    r = c.api("POST", f"/hub/api/users/{user}/tokens", json={"note": "api test"})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _get(hub: Hub, path: str, credential: str) -> requests.Response:
    return requests.get(f"{hub.url}/services/api{path}", headers={"Authorization": f"token {credential}"}, timeout=30)


def test_hub_tokens_carry_their_roles_scopes_and_stay_in_their_tenant(
        api_hubs: dict[str, tuple[Hub, TenantFixture]]) -> None:
    (hub_a, a), (hub_b, b) = api_hubs["api-a"], api_hubs["api-b"]
    analyst, viewer = _token(hub_a, "api-a-ana"), _token(hub_a, "api-a-vic")
    r = _get(hub_a, "/emission-entries?limit=1000", analyst)
    assert r.status_code == 200, r.text
    assert {e["id"] for e in r.json()["items"]} == set(a.entry_ids)
    assert _get(hub_a, "/suppliers", viewer).status_code == 200
    # A viewer reads; only analysts (and admins) write.
    url = f"{hub_a.url}/services/api/suppliers"
    assert requests.post(url, json={"name": "By viewer"}, headers={"Authorization": f"token {viewer}"},
                         timeout=30).status_code == 403
    made = requests.post(url, json={"name": "By analyst"}, headers={"Authorization": f"token {analyst}"}, timeout=30)
    assert made.status_code == 201, made.text
    history = _get(hub_a, f"/suppliers/{made.json()['id']}/history", analyst).json()["items"]
    assert [h["actor"] for h in history] == ["user:api-a-ana"]  # the hub user is who made the record
    # Tenant A's hub token on tenant B's hub: unknown there, never data.
    for path in ("/emission-entries", "/suppliers", "/inventory/summary", f"/emission-entries/{b.entry_ids[0]}"):
        r = _get(hub_b, path, analyst)
        assert r.status_code in (401, 403), (path, r.status_code, r.text[:300])
        assert "items" not in r.text and "kg_co2e" not in r.text


def test_api_keys_through_the_hub_stay_in_their_tenant(api_hubs: dict[str, tuple[Hub, TenantFixture]]) -> None:
    (hub_a, a), (hub_b, b) = api_hubs["api-a"], api_hubs["api-b"]
    key_a = keys.create_key(a.admin, a.slug, "through-hub", "read").key
    assert _get(hub_a, "/suppliers", key_a).status_code == 200
    for path in ("/suppliers", "/emission-entries", f"/suppliers/{next(iter(b.supplier_ids.values()))}"):
        r = _get(hub_b, path, key_a)
        assert r.status_code == 401 and "items" not in r.text
    assert requests.get(f"{hub_a.url}/services/api/suppliers", timeout=30).status_code == 401
    doc = requests.get(f"{hub_a.url}/services/api/openapi.json", timeout=30).json()
    assert doc["openapi"].startswith("3.1") and "/services/api/emission-entries" in doc["paths"]


def test_tenant_admins_manage_api_keys_with_their_hub_token(api_hubs: dict[str, tuple[Hub, TenantFixture]]) -> None:
    (hub_a, _), (hub_b, _) = api_hubs["api-a"], api_hubs["api-b"]
    owner, analyst = _token(hub_a, "api-a-own"), _token(hub_a, "api-a-ana")
    url = f"{hub_a.url}/services/api/api-keys"
    assert requests.post(url, json={"name": "by-analyst", "scope": "read"}, timeout=30,
                         headers={"Authorization": f"token {analyst}"}).status_code == 403
    made = requests.post(url, json={"name": "bi-tool", "scope": "read", "expires": "90d"}, timeout=30,
                         headers={"Authorization": f"token {owner}"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert _get(hub_a, "/suppliers", key).status_code == 200
    assert _get(hub_b, "/suppliers", key).status_code == 401
    listed = {k["name"]: k for k in _get(hub_a, "/api-keys", owner).json()}
    assert listed["bi-tool"]["created_by"] == "user:api-a-own" and "key" not in listed["bi-tool"]
    assert requests.delete(f"{url}/bi-tool", headers={"Authorization": f"token {owner}"}, timeout=30).status_code == 204
    assert _get(hub_a, "/suppliers", key).status_code == 401

"""Property-based tests of the API generated from its own OpenAPI document (schemathesis): whatever a client
sends, the API answers no 5xx, and every answer (status, content type, body) is one the document promises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from scope3lib.api import keys
from tests.helpers import ApiServer, TenantFactory

pytestmark = [pytest.mark.db, pytest.mark.slow]

_KEY: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(make_module_tenant: TenantFactory) -> Iterator[schemathesis.BaseSchema]:
    tenant = make_module_tenant(suppliers=10, devices=1, seed=3, plan="enterprise")
    _KEY["write"] = keys.create_key(tenant.admin, tenant.slug, "schemathesis", "write").key
    server = ApiServer(tenant).start()
    yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    server.stop()


def test_no_server_error_and_nothing_outside_the_schema(api_schema: schemathesis.BaseSchema) -> None:
    """Each operation of the document, with cases hypothesis generates from it (schemathesis's pytest plugin is
    not used: it does not run under this pytest)."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    headers = {"Authorization": f"Bearer {_KEY['write']}"}
    failures: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, timeout=60, checks=checks)

        try:
            run()
        except BaseException as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup: every operation is tried,
            if isinstance(exc, KeyboardInterrupt):  # and all failures are reported together
                raise
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)

"""The OpenAPI document fuzzed with schemathesis against a member consuming from the broker.

Every documented operation is called with generated input; every response must be no server
error, have a documented status and content type, and match its schema (which forbids
undocumented fields). The event stream never ends by design, so it is left out here and
tested in test_health_states.py.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.integration.api.conftest import ApiMember

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def api_schema(lab_member: ApiMember):
    return schemathesis.openapi.from_url(f"{lab_member.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/api/Balance/events")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case) -> None:
    case.call_and_validate()


def test_the_document_describes_every_endpoint(lab_member: ApiMember) -> None:
    paths = set(lab_member.client.get("/openapi.json").json()["paths"])
    assert paths == {"/api/Balance/balances", "/api/Balance/balances/{customerId}", "/api/Balance/metrics",
                     "/api/Balance/rebalancing-history", "/api/Balance/health", "/api/Balance/group",
                     "/api/Balance/partitions", "/api/Balance/events", "/livez", "/metrics"}

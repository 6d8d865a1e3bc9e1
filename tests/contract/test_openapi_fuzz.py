"""schemathesis, from openapi.yaml, against the real functions-framework server: no server errors, and every
response conforms to the spec (status codes, content types, bodies). Bounded: a fixed number of examples."""

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings

from tests.helpers import ROOT

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def base_url(gcp_server):
    return gcp_server(FETCH_ALLOW_NETWORKS="", FETCH_TOTAL_TIMEOUT="2")[0].rstrip("/")


def conforms(case, base_url):
    # A schema-valid URL can still be unreachable: 502/504 are documented answers about the *image host*
    # (the sandbox has no DNS), so schemathesis' "no 5xx" check is replaced by "no 5xx but those two", and
    # positive_data_acceptance (2xx for any schema-valid body) cannot hold for unreachable URLs either.
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    response = case.call_and_validate(base_url=base_url, excluded_checks=[positive_data_acceptance, not_a_server_error])
    if response.status_code >= 500:
        assert response.status_code in (502, 504), response.text
        assert response.json()["error"]["type"] in ("fetch_failed", "fetch_timeout")


# One test per operation: schemathesis gives every operation of one test the same node id, and pytest-xdist
# (make test runs it) schedules by node id, so it would run only one of them.
@schema.include(method="GET").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_usage_conforms_and_never_fails(case, base_url):
    conforms(case, base_url)


@schema.include(method="POST").parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_predict_conforms_and_never_fails(case, base_url):
    conforms(case, base_url)

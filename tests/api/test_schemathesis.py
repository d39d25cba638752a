"""Property-based API testing: schemathesis generates requests (valid and invalid) from our OpenAPI
document and checks every answer: never a server error, and every response (status code, content
type, headers, body) exactly as the document says, for valid and for invalid requests; and
auth is enforced. (`negative_data_rejection` is left out: our Authorization header would
"repair" the requests it generates without one, and then flags the accepted repair.)

It runs in-process over WSGI against the seeded agency with a real key, so CI needs no server.
(schemathesis's pytest plugin does not load under pytest 9, so this drives its Python API:
one Hypothesis run per operation and generation mode.)"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.seed import seed_agency

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,
]
EXAMPLES = 25


def run_operation(operation, mode, headers, path_parameters=None):
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


@pytest.fixture
def keep_connection():
    """As Django's test client does: a request must not close the test's database connection
    (with its open transaction) when it finishes."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_api_conforms_to_its_openapi_document(make_agency, add_member, settings, keep_connection):
    settings.EMAILSYNC_API_RATE_LIMIT = 10**9
    seeded = seed_agency(make_agency, add_member)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    headers = {"Authorization": f"Bearer {seeded.key}"}
    real_ids = {
        "placement_id": seeded.placement.pk,
        "request_id": seeded.request_id,
        "review_id": seeded.review.pk,
        "trigger_id": seeded.trigger_id,
    }
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        params = {p.name: real_ids[p.name] for p in operation.path_parameters if p.name in real_ids}
        runs = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
        if params:
            runs.append((GenerationMode.POSITIVE, params))
        for mode, path_parameters in runs:
            try:
                run_operation(operation, mode, headers, path_parameters)
            except Exception as exc:  # collect every operation's failure, not just the first
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)

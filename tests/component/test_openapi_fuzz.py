"""schemathesis against the OpenAPI document the API serves, over HTTP through the local gateway.

Every operation gets generated requests (valid and invalid), sent with the dev
key; no answer may be a 5xx or break the documented response schema.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from local.stack import LocalStack

EXAMPLES_PER_OPERATION = 25


def test_generated_requests_get_no_5xx_and_no_off_schema_response(local_stack: LocalStack) -> None:
    if local_stack.gateway is None:
        local_stack.start_functions()  # the gateway only: the tests' stack has no pollers
    schema = schemathesis.openapi.from_url(f"{local_stack.api_url}/openapi.json")
    headers = {"X-API-Key": local_stack.config.api_key}
    sent: list[str] = []
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: Any) -> None:
            label = case.operation.label
            response = case.call(headers=headers)
            sent.append(f"{label} {response.status_code}")
            try:
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
            except AssertionError as exc:
                failures.append(f"{label}: {response.status_code} {str(exc)[:300]}")
                raise

        try:
            run()
        except Exception:  # noqa: BLE001 - collected above; keep fuzzing the other operations
            pass
    statuses = sorted(Counter(s.rsplit(" ", 1)[1] for s in sent).items())
    assert not failures, "\n".join(failures[:10])
    assert len(sent) >= 500, f"only {len(sent)} requests were generated: {statuses}"
    assert {"200", "422"} <= {status for status, _ in statuses}, statuses  # valid and invalid input both reached

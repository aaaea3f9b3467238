"""schemathesis against the OpenAPI document the API serves, over HTTP through the local gateway.

The same run as ``make fuzz`` (tools/fuzz.py: every phase, every check, the dev key) at a few examples
per operation: no 5xx, no status the operation does not document, no answer off its schema.
"""

from __future__ import annotations

from pathlib import Path

from local.stack import LocalStack
from tools.fuzz import NOT_GATED, counts, run_schemathesis

EXAMPLES_PER_OPERATION = 5


def test_every_phase_and_check_pass_over_http(local_stack: LocalStack, tmp_path: Path) -> None:
    if local_stack.gateway is None:
        local_stack.start_functions()  # the gateway only: the tests' stack has no pollers
    report = tmp_path / "events.ndjson"
    run_schemathesis(local_stack.api_url, EXAMPLES_PER_OPERATION, report, local_stack.config.api_key)
    checks, statuses, cases = counts(report)
    failed = {name: result["failure"] for name, result in checks.items() if result["failure"]}
    assert not {name for name in failed if name not in NOT_GATED}, f"failed checks: {failed}"
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance", "unsupported_method"} <= {
        name for name, result in checks.items() if result["success"]
    }
    assert cases >= 500, f"only {cases} requests: {statuses}"
    # Valid and invalid input both reached the API, and each kind of refusal was exercised.
    assert {"200", "201", "404", "405", "415", "422"} <= set(statuses), statuses

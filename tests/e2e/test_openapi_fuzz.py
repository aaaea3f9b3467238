"""schemathesis against the OpenAPI document the API serves, over HTTP, on a local stack of its own.

The same run as ``make fuzz`` (tools/fuzz.py: every phase, every check, the dev key) at a few examples
per operation: no 5xx, no status the operation does not document, no answer off its schema. The stack
is its own because the stateful phase changes and deletes what it finds (templates included).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local.processes import free_port
from tools.fuzz import NOT_GATED, counts, own_stack, run_schemathesis

EXAMPLES_PER_OPERATION = 5


# About 2 minutes on an idle 2-core machine, several times that on a loaded one: the stack's start (a 180 s
# ceiling), the schemathesis run (its requests 60 s each: tools/schemathesis.toml) and the stack's stop (60 s).
@pytest.mark.timeout(900)
def test_every_phase_and_check_pass_over_http(tmp_path: Path) -> None:
    ports = {name: str(free_port()) for name in ("API_PORT", "MOTO_PORT", "KAFKA_PORT", "AUTH_PORT", "WS_PORT")}
    report = tmp_path / "events.ndjson"
    with own_stack(tmp_path, ports) as url:
        run_schemathesis(url, EXAMPLES_PER_OPERATION, report)
    checks, statuses, cases = counts(report)
    failed = {name: result["failure"] for name, result in checks.items() if result["failure"]}
    assert not {name for name in failed if name not in NOT_GATED}, f"failed checks: {failed}"
    assert {"not_a_server_error", "status_code_conformance", "response_schema_conformance", "unsupported_method"} <= {
        name for name, result in checks.items() if result["success"]
    }
    assert cases >= 500, f"only {cases} requests: {statuses}"
    # Valid and invalid input both reached the API, and each kind of refusal was exercised.
    assert {"200", "201", "404", "405", "415", "422"} <= set(statuses), statuses

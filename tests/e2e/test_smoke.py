"""`make smoke` against the local stack: the checks a deployed stack gets pass here, and fail when they should."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.cfn import ROOT
from local.launch import KEY, StackProcess, pythonpath

pytestmark = pytest.mark.e2e
STEPS = ("health", "openapi", "event", "delivery", "user token", "inbox", "console", "cors")


def smoke(stack: StackProcess, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tools/smoke.py`` as ``make smoke`` runs it (the key in SMOKE_KEY), against ``stack``."""
    env = {**os.environ, "SMOKE_KEY": key, "PYTHONPATH": pythonpath()}
    # The event goes to demo-user-1's address inline (recipients.users, no Auth lookup); --user-id names the user,
    # and would be the fallback (the Auth service's address) of an API from before inline recipients.
    command = [sys.executable, "-m", "tools.smoke", "--url", stack.api, "--email", "demo-user-1@example.com"]
    # The local stack's CORS answers its own pages only (CorsAllowedOrigins): the preflight comes from its origin.
    command += ["--user-id", "demo-user-1", "--timeout", "240", "--origin", stack.api, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420)


@pytest.mark.timeout(600)  # the shared stack's start (120 s), then the delivery's ceiling (240 s)
def test_smoke_passes_every_step_against_the_local_stack(live_stack: StackProcess) -> None:
    run = smoke(live_stack, KEY)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    for step in STEPS:
        assert any(line.startswith(f"PASS {step} ") for line in lines), (step, run.stdout)
    assert "-> SENT" in run.stdout or "-> DELIVERED" in run.stdout
    assert "to demo-user-1@example.com as inline recipient demo-user-1" in run.stdout  # not the fallback
    assert "default-src 'none'" in run.stdout
    assert lines[-1] == f"smoke: {len(STEPS)} of {len(STEPS)} steps passed"


@pytest.mark.timeout(300)
def test_smoke_fails_and_says_which_steps_failed_with_a_wrong_key(live_stack: StackProcess) -> None:
    run = smoke(live_stack, "not-a-key")
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert any(line.startswith("FAIL event ") and "401" in line for line in lines), run.stdout
    assert any(line.startswith("FAIL user token ") and "401" in line for line in lines), run.stdout
    assert any(line.startswith("FAIL delivery ") and "skipped" in line for line in lines), run.stdout
    for step in ("health", "openapi", "console", "cors"):  # the public ones still pass
        assert any(line.startswith(f"PASS {step} ") for line in lines), (step, run.stdout)
    assert lines[-1] == "smoke: 4 of 8 steps passed; failed: event, delivery, user token, inbox"

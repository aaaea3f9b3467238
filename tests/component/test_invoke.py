"""`make invoke` (python -m local.invoke) in a subprocess against the running local stack: the function's handler
with the environment template.yaml gives it, the result on stdout, the exit code telling a raise."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from local.cfn import ROOT
from local.events import EVENTS, load_event
from local.launch import pythonpath
from local.stack import LocalStack
from tests.component.helpers import call_api


def _invoke(state_dir: Path, function: str, event: Path) -> subprocess.CompletedProcess[str]:
    """Run it as `make invoke` does, in an environment that knows nothing of the stack but its state directory."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env |= {"LOCAL_STATE_DIR": str(state_dir), "PYTHONPATH": pythonpath()}
    return subprocess.run(
        [sys.executable, "-m", "local.invoke", function, str(event)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_invoke_delivers_the_self_managed_kafka_sample(local_stack: LocalStack) -> None:
    done = _invoke(local_stack.config.state_dir, "WorkerFunction", EVENTS / "msk_batch_selfmanaged.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"batchItemFailures": []}  # stdout is the result alone; logs go to stderr
    record = load_event("msk_batch_selfmanaged")["records"]["notification-jobs-0"][0]
    job = json.loads(base64.b64decode(record["value"]))
    status, body = call_api("GET", f"/api/v1/notifications/{job['job_id']}")
    assert status == 200 and body["status"] == "SENT"


def test_make_invoke_answers_what_api_gateway_would(local_stack: LocalStack) -> None:
    done = _invoke(local_stack.config.state_dir, "ApiFunction", EVENTS / "api_post_event.json")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["statusCode"] == 202 and json.loads(result["body"])["status"] == "accepted"


def test_make_invoke_exits_non_zero_when_the_handler_raises(local_stack: LocalStack, tmp_path: Path) -> None:
    event = tmp_path / "not-an-http-event.json"
    event.write_text("{}")
    done = _invoke(local_stack.config.state_dir, "ApiFunction", event)
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] and error["errorMessage"] is not None and error["stackTrace"]
    assert "Traceback" in done.stderr


def test_make_invoke_without_a_running_stack_says_so(tmp_path: Path) -> None:
    done = _invoke(tmp_path, "WorkerFunction", EVENTS / "msk_batch_selfmanaged.json")
    assert done.returncode == 2 and "make local" in done.stderr and done.stdout == ""


def test_make_invoke_names_the_functions_it_knows(local_stack: LocalStack) -> None:
    done = _invoke(local_stack.config.state_dir, "NoSuchFunction", EVENTS / "msk_batch_selfmanaged.json")
    assert done.returncode == 2 and "WorkerFunction" in done.stderr

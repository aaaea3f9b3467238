"""``make fuzz``: schemathesis against the local stack with every phase and every check, then the counts.

Starts ``python -m local`` on its own ports (API 3200, moto 4766, Kafka 9292, Auth 3201, WebSocket 3202; override with
API_PORT, MOTO_PORT, KAFKA_PORT, AUTH_PORT, WS_PORT), or fuzzes FUZZ_URL when it is set. FUZZ_EXAMPLES (100)
sets the examples per operation, FUZZ_SEED makes a run repeatable. The run fails when any check fails,
except ``positive_data_acceptance`` (reported, not gated: see docs/TEST.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local.launch import pythonpath

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
PHASES = "examples,coverage,fuzzing,stateful"
FUZZ_PORTS = {"API_PORT": "3200", "MOTO_PORT": "4766", "KAFKA_PORT": "9292", "AUTH_PORT": "3201", "WS_PORT": "3202"}
# The schema cannot say everything the API checks (a payload per event type, exactly one of user_ids and
# segment_id, cron syntax, a channel's template parts, cursors only the API issues), so some "valid"
# requests are rightly refused with 422: counted and printed, not a failure of the run.
NOT_GATED = frozenset({"positive_data_acceptance"})


@contextmanager
def own_stack(state_dir: Path, ports: dict[str, str]) -> Iterator[str]:
    """``python -m local`` on ``ports`` (API_PORT…) with nothing of the caller's AWS or Kafka settings; its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    env.update(ports, LOCAL_STATE_DIR=str(state_dir), PYTHONPATH=pythonpath())
    with (state_dir / "stack.log").open("wb") as log:
        stack = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{ports['API_PORT']}"
        try:
            wait_until_up(url, stack)
            yield url
        finally:
            stack.send_signal(signal.SIGINT)  # the stack stops what it started
            try:
                stack.wait(timeout=60)
            except subprocess.TimeoutExpired:
                stack.kill()


def wait_until_up(url: str, stack: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise SystemExit(f"the local stack exited with {stack.returncode}; see its stack.log")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"{url}/health did not answer within {timeout:.0f} s")


def user_token(url: str, api_key: str) -> str:
    """A user token for the inbox routes (``Authorization: Bearer``), from the API itself."""
    request = urllib.request.Request(
        f"{url}/api/v1/users/fuzz-user/tokens",
        data=json.dumps({"ttl_seconds": 86400}).encode(),
        method="POST",
        headers={"x-api-key": api_key, "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["token"])


def run_schemathesis(url: str, examples: int, report: Path, api_key: str = "local-dev-key") -> int:
    """The schemathesis CLI with every phase and check; its events go to ``report`` (NDJSON).

    Every request carries the API key and a user token: each operation reads the one its security names.
    """
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--phases",
        PHASES,
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--header",
        f"X-API-Key: {api_key}",
        "--header",
        f"Authorization: Bearer {user_token(url, api_key)}",
        "--suppress-health-check",
        "all",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--generation-database",
        "none",
        "--no-color",
    ]
    if os.environ.get("FUZZ_SEED"):
        command += ["--seed", os.environ["FUZZ_SEED"]]
    return subprocess.run(command, cwd=ROOT).returncode


def counts(report: Path) -> tuple[dict[str, Counter[str]], Counter[str], int]:
    """Per check: how many cases succeeded, failed or were skipped; the response statuses; the cases."""
    checks: dict[str, Counter[str]] = {}
    statuses: Counter[str] = Counter()
    cases = 0
    for line in report.read_text().splitlines():
        event: dict[str, Any] = json.loads(line)
        recorder = event.get("ScenarioFinished", {}).get("recorder")
        if not recorder:
            continue
        for results in recorder.get("checks", {}).values():
            for result in results:
                checks.setdefault(result["name"], Counter())[result["status"]] += 1
        for interaction in recorder.get("interactions", {}).values():
            response = interaction.get("response") or {}
            statuses[str(response.get("status_code", "no response"))] += 1
            cases += 1
    return checks, statuses, cases


def main() -> int:
    examples = int(os.environ.get("FUZZ_EXAMPLES", "100"))
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        state = Path(tmp)
        report = state / "events.ndjson"
        key = os.environ.get("FUZZ_API_KEY", "local-dev-key")
        if os.environ.get("FUZZ_URL"):
            code = run_schemathesis(os.environ["FUZZ_URL"].rstrip("/"), examples, report, key)
        else:
            with own_stack(state, {name: os.environ.get(name, port) for name, port in FUZZ_PORTS.items()}) as url:
                code = run_schemathesis(url, examples, report, key)
        if not report.exists():
            print(f"schemathesis exited {code} without running", file=sys.stderr)
            return code or 1
        checks, statuses, cases = counts(report)
    width = max(map(len, checks), default=10)
    print(f"\nmake fuzz: {cases} requests, {examples} examples per operation, phases {PHASES}")
    print(f"{'check':<{width}}  {'passed':>7} {'failed':>7} {'skipped':>7}")
    for name, result in sorted(checks.items()):
        note = "  (not gated)" if name in NOT_GATED else ""
        print(f"{name:<{width}}  {result['success']:>7} {result['failure']:>7} {result['skip']:>7}{note}")
    print("statuses: " + ", ".join(f"{status}×{n}" for status, n in sorted(statuses.items())))
    failed = sorted(name for name, result in checks.items() if result["failure"] and name not in NOT_GATED)
    if failed:
        print(f"failed: {', '.join(failed)} (schemathesis exited {code}; details above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m local` in a child process on free ports, driven over HTTP and WebSocket as a user would.

The end-to-end tests, the browser tests and ``make bench``'s in-app latency all use it, so they start the very
stack ``make local`` starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from local.cfn import ROOT
from local.emails import sent_emails
from local.infra import STATE_FILE, StackState
from local.processes import free_port
from local.stack import transports

KEY = "local-dev-key"
PORTS = ("API_PORT", "MOTO_PORT", "KAFKA_PORT", "AUTH_PORT", "WS_PORT", "WEBHOOK_RECEIVER_PORT")
#: The import roots Lambda gives the functions (the layer's package and each function's code), and the repo root.
IMPORT_ROOTS = (
    "layers/common",
    "functions/api",
    "functions/worker",
    "functions/scheduler",
    "functions/feedback",
    "functions/websocket",
    ".",
)


def pythonpath() -> str:
    """PYTHONPATH for a child process that runs the functions' code as Lambda does: every import root."""
    return os.pathsep.join(str(ROOT / r) for r in IMPORT_ROOTS)


@dataclass
class StackProcess:
    """A running ``python -m local``: its URLs, environment and log."""

    api: str
    moto: str
    ws: str
    env: dict[str, str]
    process: subprocess.Popen[str]
    log: Path
    ports: dict[str, int] = field(default_factory=dict)
    transport: str = "kafka"  # TRANSPORT: how jobs reach the worker (kafka, or sqs: no Kafka runs)
    # DRAIN_TRANSPORT: none, or the transport being left, which the worker still reads (kafka runs Tansu then).
    drain_transport: str = "none"

    def call(
        self, method: str, path: str, body: Any = None, key: Optional[str] = KEY, **headers: str
    ) -> tuple[int, Any]:
        """One HTTP request to the API; (status, parsed JSON body)."""
        sent = {"content-type": "application/json", **headers}
        if key:
            sent["x-api-key"] = key
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:  # a ceiling for a loaded machine
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    @property
    def receiver(self) -> str:
        """The demo webhook receiver's base URL."""
        return f"http://127.0.0.1:{self.ports['WEBHOOK_RECEIVER_PORT']}"

    def queue_url(self, logical_id: str) -> str:
        """The URL in moto of the stack's queue of that logical id in template.yaml (``JobsQueue``, say)."""
        state = StackState.from_json((self.log.parent / STATE_FILE).read_text())
        return state.infra.queues[logical_id]

    def emails(self, contains: str) -> list[dict[str, Any]]:
        """The emails moto accepted holding ``contains`` (its SES store's index, not a dump of every backend)."""
        return sent_emails(self.moto, contains=contains)

    def push_endpoint(self) -> str:
        """A new SNS platform endpoint in the stack's moto, for an inline recipient's push."""
        import boto3

        from local.events import REGION

        sns = boto3.client(
            "sns", endpoint_url=self.moto, region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local"
        )
        app = sns.create_platform_application(
            Name=f"e2e-{uuid.uuid4().hex[:6]}", Platform="GCM", Attributes={"PlatformCredential": "key"}
        )["PlatformApplicationArn"]
        return str(sns.create_platform_endpoint(PlatformApplicationArn=app, Token=uuid.uuid4().hex)["EndpointArn"])

    def pushes(self, endpoint: str) -> list[dict[str, Any]]:
        """What moto's SNS published to the endpoint (its store's index of pushes, by endpoint)."""
        url = f"{self.moto}/_local/sns/pushes?endpoint={urllib.parse.quote(endpoint)}"
        with urllib.request.urlopen(url, timeout=30) as resp:
            return list(json.load(resp)["pushes"])

    def wait_status(self, job_id: str, want: str, timeout: float = 120) -> dict[str, Any]:
        """The job once its status is ``want``; AssertionError once it is final otherwise, or after ``timeout``
        seconds (a ceiling: it returns as soon as the status is there)."""
        deadline = time.monotonic() + timeout
        body: Any = None
        while time.monotonic() < deadline:
            status, body = self.call("GET", f"/api/v1/notifications/{job_id}")
            # SES's feedback moves a sent email on (the local stack publishes it, as SES would): SENT was reached.
            reached = {want, *(("DELIVERED", "BOUNCED", "COMPLAINED") if want == "SENT" else ())}
            if status == 200 and body["status"] in reached:
                return dict(body)
            if status == 200 and body["status"] in ("FAILED", "EXPIRED", "SKIPPED"):
                break  # final: waiting longer cannot help
            time.sleep(0.5)
        raise AssertionError(f"{job_id} never became {want}: {body}")

    def stop(self) -> None:
        """Stop the stack and everything it started."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start(state: Path, timeout: float = 120, **env_overrides: str) -> StackProcess:
    """Start the local stack with its state (logs, pid file) under ``state``; return once /health answers."""
    ports = {name: free_port() for name in PORTS}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    env.update({k: str(v) for k, v in ports.items()}, LOCAL_STATE_DIR=str(state), **env_overrides)
    env["PYTHONPATH"] = pythonpath()
    # What the stack will run, as `python -m local` reads it (TRANSPORT, else PARAMETER_OVERRIDES' Transport, ...).
    transport, drain_transport = transports(env)
    log = state / "local.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    stack = StackProcess(
        api=f"http://127.0.0.1:{ports['API_PORT']}",
        moto=f"http://127.0.0.1:{ports['MOTO_PORT']}",
        ws=f"ws://127.0.0.1:{ports['WS_PORT']}",
        env=env,
        process=process,
        log=log,
        ports=ports,
        transport=transport,
        drain_transport=drain_transport,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            if stack.call("GET", "/health", key=None) == (200, {"status": "ok"}):
                return stack
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"the local stack did not come up: {log.read_text()[-3000:]}")
        time.sleep(0.5)

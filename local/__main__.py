"""``make local``: run the whole service on this machine until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from local.emails import EMAILS_PATH
from local.processes import port_open
from local.stack import Config, LocalStack

log = logging.getLogger("local")


def _busy(config: Config) -> list[str]:
    ports = {
        "API_PORT": config.api_port,
        "MOTO_PORT": config.moto_port,
        "AUTH_PORT": config.auth_port,
        "WS_PORT": config.ws_port,
        "WEBHOOK_RECEIVER_PORT": config.webhook_receiver_port,
    }
    if config.uses_kafka and config.kafka_bootstrap is None:  # Tansu's; Transport sqs alone runs no Kafka
        ports["KAFKA_PORT"] = config.kafka_port
    return [f"{name}={port}" for name, port in ports.items() if port_open(port)]


def _running_pid(pid_file: Path) -> Optional[int]:
    """The pid in the lock file, if that process still runs."""
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _demo_query(stack: LocalStack) -> str:
    """The demo page connects to port 3002 unless its URL names the WebSocket gateway (``?ws=``)."""
    return "" if stack.config.ws_port == Config().ws_port else f"?ws={quote(stack.ws_url, safe='')}"


def _kafka(stack: LocalStack, note: str = "") -> str:
    """The Kafka the worker reads: brokers, topic and the kind of events its mapping delivers."""
    return (
        f"{stack.bootstrap}   topic {os.environ.get('KAFKA_TOPIC')}"
        f"   ({stack.kafka_wiring().source.event_source} events{note})"
    )


def _jobs_queue(stack: LocalStack, kind: str, note: str = "") -> str:
    """The jobs queue the worker reads, by its own URL: JOBS_QUEUE_URL names it only while it is the Transport."""
    assert stack.infra is not None
    (source,) = [source for trigger, source in stack.sqs_sources().values() if trigger == "jobs"]
    return f"{stack.infra.queues[source.queue]}   ({kind}: batches of up to {source.batch_size} to the worker{note})"


def _jobs_lines(stack: LocalStack) -> list[str]:
    """Where jobs travel to the worker: the Kafka topic, or with TRANSPORT=sqs the SQS jobs queue; and with
    DRAIN_TRANSPORT the transport being left, which the worker still reads while nothing publishes to it."""
    left = "; nothing publishes to it"
    if stack.transport == "kafka":
        lines = [f"  Kafka             {_kafka(stack)}"]
    else:
        lines = [f"  Jobs queue        {_jobs_queue(stack, 'SQS' if stack.config.uses_kafka else 'SQS, no Kafka')}"]
    if stack.drain_transport == "kafka":
        lines.append(f"  Draining Kafka    {_kafka(stack, left)}")
        # docs/DEPLOY.md#transport: Tansu's end offset is its last batch's first offset plus one.
        lines.append(
            "                    (Tansu's end offset is its last batch's first offset plus one: python -m ops"
            " transport-drained counts a batch of several records as one; Kafka and MSK count each)"
        )
    elif stack.drain_transport == "sqs":
        lines.append(f"  Draining queue    {_jobs_queue(stack, 'SQS', left)}")
    return lines


def _banner(stack: LocalStack, seconds: float) -> str:
    c = stack.config
    draining = f", draining {stack.drain_transport}" if stack.drain_transport != "none" else ""
    return "\n".join(
        [
            "",
            f"Notification service: local stack is up, transport {stack.transport}{draining}"
            f" (started in {seconds:.1f} s)",
            f"  API               {stack.api_url}   (X-API-Key: {c.api_key})",
            f"  Console           {stack.api_url}/admin/   (enter the API key)",
            f"  Swagger UI        {stack.api_url}/docs",
            f"  OpenAPI           {stack.api_url}/openapi.json",
            f"  AWS (moto)        {stack.endpoint}   (AWS_ENDPOINT_URL)",
            f"  Sent emails       {stack.endpoint}{EMAILS_PATH}?to=<address>   or: make emails",
            *_jobs_lines(stack),
            f"  Auth service      {stack.auth.url}   (demo-user-1 … demo-user-100, segment 'all';"
            " demo-bounce, demo-complaint)",
            f"  WebSocket         {stack.ws_url}?token=…   (a token: POST /dev/users/<user_id>/tokens"
            " with Content-Type: application/json, dev only, for no other site's page)",
            f"  WS management     {stack.ws_management_url}/@connections/<id>   (WEBSOCKET_ENDPOINT)",
            f"  Demo inbox        {stack.api_url}/demo/inbox.html{_demo_query(stack)}",
            f"  Webhook receiver  {stack.receiver.url}/   (register it: POST /api/v1/webhooks"
            f' {{"url": "{stack.receiver.url}/hooks", "events": ["*"]}}; it verifies each signature)',
            f"  Logs              {c.state_dir}/",
            "Ctrl-C stops everything this started.",
            "",
        ]
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection chatter; failures surface in the handlers
    try:
        config = Config.from_env()
    except ValueError as exc:
        print(f"make local: {exc}", file=sys.stderr)
        return 2
    busy = _busy(config)
    if busy:
        pid = _running_pid(config.state_dir / "pid")
        owner = f" by the local stack already running as pid {pid}" if pid else ""
        print(f"make local: ports already in use{owner}: {', '.join(busy)}.", file=sys.stderr)
        print(
            "Stop the other stack, or choose other ports with API_PORT, MOTO_PORT, KAFKA_PORT, AUTH_PORT, WS_PORT,"
            " WEBHOOK_RECEIVER_PORT.",
            file=sys.stderr,
        )
        return 2
    stack = LocalStack(config)
    stopped = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        if not stopped.is_set() and not started.is_set():
            stopped.set()
            raise KeyboardInterrupt  # interrupt the start-up; `finally` stops what already runs
        stopped.set()

    started = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    began = time.monotonic()
    try:
        stack.start()
        started.set()
        (config.state_dir / "pid").write_text(str(os.getpid()))
        print(_banner(stack, time.monotonic() - began), flush=True)
        while not stopped.wait(1.0):
            if dead := stack.dead_peers():
                print(f"make local: {', '.join(dead)} exited; see {config.state_dir}/*.log", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        log.exception("the local stack could not start")
        print(f"make local: could not start: {exc} (logs in {config.state_dir}/)", file=sys.stderr)
        return 1
    finally:
        print("stopping the local stack…", file=sys.stderr, flush=True)
        stack.stop()
        (config.state_dir / "pid").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

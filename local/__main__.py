"""``make local``: run the whole service on this machine until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from local.processes import port_open
from local.stack import Config, LocalStack


def _busy(config: Config) -> list[str]:
    ports = {"API_PORT": config.api_port, "MOTO_PORT": config.moto_port, "AUTH_PORT": config.auth_port}
    if config.kafka_bootstrap is None:
        ports["KAFKA_PORT"] = config.kafka_port
    return [f"{name}={port}" for name, port in ports.items() if port_open(port)]


def _banner(stack: LocalStack) -> str:
    c = stack.config
    return "\n".join(
        [
            "",
            "Notification service: local stack is up",
            f"  API               {stack.api_url}   (X-API-Key: {c.api_key})",
            f"  Swagger UI        {stack.api_url}/docs",
            f"  OpenAPI           {stack.api_url}/openapi.json",
            f"  AWS (moto)        {stack.endpoint}   (AWS_ENDPOINT_URL)",
            f"  Sent emails       {stack.endpoint}/moto-api/data.json   or: make emails",
            f"  Kafka             {stack.bootstrap}   topic {os.environ.get('KAFKA_TOPIC')}",
            f"  Auth service      {stack.auth.url}   (demo-user-1 … demo-user-100, segment 'all')",
            f"  Logs              {c.state_dir}/",
            "Ctrl-C stops everything this started.",
            "",
        ]
    )


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection chatter; failures surface in the handlers
    config = Config.from_env()
    busy = _busy(config)
    if busy:
        pid_file = config.state_dir / "pid"
        owner = f" (a local stack with pid {pid_file.read_text().strip()} may be running)" if pid_file.exists() else ""
        print(f"make local: ports already in use: {', '.join(busy)}{owner}.", file=sys.stderr)
        print(
            "Stop the other stack, or choose other ports with API_PORT, MOTO_PORT, KAFKA_PORT, AUTH_PORT.",
            file=sys.stderr,
        )
        return 2
    stack = LocalStack(config)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        stack.start()
        (config.state_dir / "pid").write_text(str(os.getpid()))
        print(_banner(stack), flush=True)
        stopped.wait()
    finally:
        print("stopping the local stack…", file=sys.stderr, flush=True)
        stack.stop()
        (config.state_dir / "pid").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

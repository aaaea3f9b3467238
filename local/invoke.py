"""Invoking a handler the way Lambda does: one container, one event at a time, with a context object.

``python -m local.invoke <LogicalId> <event.json>`` (``make invoke FN=… EVENT=…``) is ``sam local invoke -e``
without Docker: it loads the named function's handler from template.yaml with the environment the template gives
it, resolved against the running local stack (``make local``; its state directory says where the stack's moto
server, Kafka, Auth service, tables and queues are), invokes it once, prints the result as JSON on stdout (logs go
to stderr) and exits 1 when the handler raises or times out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from local.events import REGION, function_arn

AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
}


@dataclass
class LambdaContext:
    function_name: str
    timeout_seconds: int = 30
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Function:
    """A handler loaded by its ``module.attribute`` path, invoked one event at a time."""

    def __init__(self, name: str, handler: str, timeout_seconds: int = 30, memory_mb: int = 512) -> None:
        module, _, attribute = handler.rpartition(".")
        self.name = name
        self.timeout = timeout_seconds
        self.memory = memory_mb
        self._handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module), attribute)
        self._lock = threading.Lock()  # one container: Lambda never runs two events in one at once

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            return self._handler(event, LambdaContext(self.name, self.timeout, self.memory))


# --- `make invoke` -------------------------------------------------------------------------------------------


class TaskTimedOut(Exception):
    """The handler ran past the function's Timeout."""


@contextlib.contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    """Raise TaskTimedOut in the main thread after ``seconds`` (Lambda stops the invocation then)."""

    def expire(signum: int, frame: object) -> None:
        raise TaskTimedOut(f"Task timed out after {seconds:.2f} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def error_document(exc: BaseException) -> dict[str, Any]:
    """The error document Lambda returns for an invocation whose handler raised."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _fail(message: str) -> int:
    print(f"make invoke: {message}", file=sys.stderr)
    return 2


def main(argv: Optional[list[str]] = None) -> int:
    from local.cfn import ROOT, template
    from local.infra import STATE_FILE, StackState, function_environments, local_environment, own_origins

    parser = argparse.ArgumentParser(
        prog="python -m local.invoke",
        description="Invoke one function of template.yaml once with an event, against the running local stack "
        "(`sam local invoke -e` without Docker).",
    )
    parser.add_argument("function", help="the function's logical id in template.yaml, e.g. WorkerFunction")
    parser.add_argument("event", help="a JSON event file, e.g. events/msk_batch_selfmanaged.json ('-': stdin)")
    args = parser.parse_args(argv)

    tpl = template()
    functions = tpl.functions()
    if args.function not in functions:
        return _fail(f"template.yaml has no function {args.function!r}; it has {', '.join(sorted(functions))}")
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        event = json.loads(text)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read the event {args.event}: {exc}")

    state_dir = Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local-stack")
    try:
        state = StackState.from_json((state_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return _fail(f"no local stack is running (no {state_dir / STATE_FILE}): start one with `make local`")
    try:
        os.kill(state.pid, 0)
    except OSError:
        return _fail(f"the local stack that wrote {state_dir / STATE_FILE} (pid {state.pid}) is gone: `make local`")

    spec = functions[args.function]
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):  # never a real account
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ENV,
        AWS_ENDPOINT_URL=state.endpoint,
        AWS_LAMBDA_FUNCTION_NAME=args.function,
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory_size),
        AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{args.function}",
        AWS_LAMBDA_LOG_STREAM_NAME="local",
    )
    port = urlsplit(state.api_url).port or 80
    os.environ.update(function_environments(tpl, state.infra, local_environment(own_origins(port)))[args.function])

    out = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # the handler's logs (Powertools writes to stdout) to stderr
        try:
            with _deadline(spec.timeout):
                function = Function(args.function, spec.handler, spec.timeout, spec.memory_size)
                result = function.invoke(event)
            answer = json.dumps(result, indent=2)
        except Exception as exc:
            traceback.print_exc()
            print(json.dumps(error_document(exc), indent=2), file=out)
            return 1
    print(answer, file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

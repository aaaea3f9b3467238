"""A function whose invocations run in a child process, as in a Lambda container, and can be cut off.

In-process handlers (:class:`local.invoke.Function`) share the runner's memory and cannot be stopped part-way. A
:class:`ContainerFunction` runs its handler in a child process (``python -m local.container``) that serves one
event at a time, like a Lambda execution environment: module-level state lives as long as the child, the
function's Timeout is enforced, and an invocation that runs past it is killed, as Lambda does, with whatever it
had done left done. :meth:`ContainerFunction.cut_off` arms the same kill at a chosen moment, to check that a batch
abandoned half-way is neither lost nor sent twice when it is delivered again (to a fresh child).
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Optional

from local.invoke import Function, TaskTimedOut, error_document


class FunctionError(Exception):
    """The handler raised; the message is Lambda's ``errorType: errorMessage``."""


@dataclass
class CutOff:
    """A planned kill: the next invocation of at least ``min_records`` records, ``after`` seconds into it."""

    after: float
    min_records: int
    records: int = 0  # of the invocation it cut off (0: not yet)
    at: float = 0.0  # time.time() of the kill


def records_in(event: dict[str, Any]) -> int:
    """How many records a Kafka or SQS event carries (0 for any other event)."""
    if isinstance(event.get("records"), dict):
        return sum(len(batch) for batch in event["records"].values())
    return len(event.get("Records") or [])


class ContainerFunction:
    """``Function``'s interface, with each container a child process (started on first use, again after a kill)."""

    def __init__(
        self,
        name: str,
        handler: str,
        timeout_seconds: int = 30,
        memory_mb: int = 512,
        env: Optional[dict[str, str]] = None,
        log_path: Optional[Path] = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.timeout = timeout_seconds
        self.memory = memory_mb
        self._env = env or {}
        self._log_path = log_path
        self._child: Optional[subprocess.Popen[bytes]] = None
        self._lock = threading.Lock()  # one event at a time per container
        self._cut_lock = threading.Lock()  # arming a cut-off does not wait for the invocation under way
        self._cuts: list[CutOff] = []
        self.cut: list[CutOff] = []  # the cut-offs that happened
        self.containers = 0  # started so far

    def cut_off(self, after: float, min_records: int = 1) -> CutOff:
        """Kill the container ``after`` seconds into its next invocation of ``min_records`` or more records.

        An invocation that ends sooner does not use it up: it waits for the next one. Like a Lambda timeout,
        the invocation fails with :class:`TaskTimedOut`, and the next one starts a fresh container.
        """
        cut = CutOff(after, min_records)
        with self._cut_lock:
            self._cuts.append(cut)
        return cut

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            child = self._child if self._child is not None and self._child.poll() is None else self._spawn()
            assert child.stdin is not None and child.stdout is not None
            size = records_in(event)
            with self._cut_lock:
                cut = next((c for c in self._cuts if size >= c.min_records), None)
            limit = min(self.timeout, cut.after) if cut is not None else self.timeout
            try:
                child.stdin.write(json.dumps(event).encode() + b"\n")
                child.stdin.flush()
            except BrokenPipeError:
                self._kill()
                raise FunctionError("Runtime.ExitError: the container exited") from None
            line = _read_line(child.stdout, limit)
            if line is None:
                self._kill()
                if cut is not None and limit < self.timeout:
                    with self._cut_lock:
                        self._cuts.remove(cut)
                    cut.records, cut.at = size, time.time()
                    self.cut.append(cut)
                    raise TaskTimedOut(f"cut off after {cut.after:.2f} seconds, with {size} records")
                raise TaskTimedOut(f"Task timed out after {self.timeout:.2f} seconds")
            if not line:
                self._kill()
                raise FunctionError("Runtime.ExitError: the container exited")
            answer = json.loads(line)
            if "error" in answer:
                raise FunctionError(f"{answer['error']['errorType']}: {answer['error']['errorMessage']}")
            return answer["result"]

    def stop(self) -> None:
        with self._lock:
            self._kill()

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115 - the child's
        env = {
            **os.environ,
            **self._env,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # the runner's import roots, whoever set them
        }
        command = [
            sys.executable,
            "-m",
            "local.container",
            self.name,
            self.handler,
            str(self.timeout),
            str(self.memory),
        ]
        self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        self.containers += 1
        return self._child

    def _kill(self) -> None:
        if self._child is not None:
            if self._child.poll() is None:
                self._child.kill()
            self._child.wait()
            for stream in (self._child.stdin, self._child.stdout):
                if stream is not None:
                    stream.close()
        self._child = None


def _read_line(stream: IO[bytes], timeout: float) -> Optional[bytes]:
    """One line from the child, ``b""`` if it exited, or None if nothing came within ``timeout`` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(max(0.0, timeout)):
            return None
    return stream.readline()


def serve(name: str, handler: str, timeout: int, memory: int) -> None:
    """The child: answer each event line on stdin with ``{"result": …}`` or ``{"error": …}`` on stdout."""
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the handler's logs (Powertools writes to stdout) go to the log, not into the answers
    function = Function(name, handler, timeout, memory)
    for line in sys.stdin:
        try:
            answer: dict[str, Any] = {"result": function.invoke(json.loads(line))}
        except Exception as exc:  # noqa: BLE001 - reported to the runner, as Lambda reports a handler's error
            answer = {"error": error_document(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))

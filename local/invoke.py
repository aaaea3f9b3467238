"""Invoking a handler the way Lambda does: one container, one event at a time, with a context object."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.events import ACCOUNT, REGION


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
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Function:
    """A handler loaded by its ``module.attribute`` path, invoked one event at a time."""

    def __init__(self, name: str, handler: str, timeout_seconds: int = 30, memory_mb: int = 512) -> None:
        module, _, attribute = handler.rpartition(".")
        self.name = name
        self._handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module), attribute)
        self._timeout = timeout_seconds
        self._memory = memory_mb
        self._lock = threading.Lock()  # one container: Lambda never runs two events in one at once

    def invoke(self, event: dict[str, Any]) -> Any:
        with self._lock:
            return self._handler(event, LambdaContext(self.name, self._timeout, self._memory))

"""Real peers for the benchmarks: moto server and Tansu in their own processes, provisioned from template.yaml."""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from local.stack import Config, LocalStack


@contextmanager
def peers() -> Iterator[LocalStack]:
    """The local stack's peers and resources, without its pollers: the benchmark drives the handlers."""
    with tempfile.TemporaryDirectory() as state:
        config = Config.free_ports(prefix=f"b{uuid.uuid4().hex[:8]}", state_dir=Path(state), with_mappings=False)
        stack = LocalStack(config)
        try:
            stack.start_peers()
            stack.provision()
            stack.seed()
            # The handlers' JSON logs and metric lines would drown the numbers.
            os.environ.update(POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")
            _forget_clients()
            yield stack
        finally:
            stack.stop()


def _forget_clients() -> None:
    """Handlers cache their clients per container; a new stack is a new container."""
    for module, attribute in (("api.context", "services"), ("worker.app", "services"), ("scheduler.app", "services")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            getattr(loaded, attribute).cache_clear()

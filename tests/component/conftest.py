"""Fixtures several component test modules share (the peers themselves are tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack
from local.ws_gateway import WebSocketGateway

from .helpers import Recorded


@pytest.fixture(scope="module")
def handler() -> Recorded:
    return Recorded()


@pytest.fixture(scope="module")
def gateway(local_stack: LocalStack, handler: Recorded) -> Iterator[WebSocketGateway]:
    """The gateway on the stack's WS port: the handler's replies go through its management API (WEBSOCKET_ENDPOINT)."""
    from websocket import app

    app.services.cache_clear()
    served = WebSocketGateway(handler, local_stack.config.ws_port).start()
    yield served
    served.stop()
    app.services.cache_clear()

"""Fixtures several component test modules share (the peers themselves are tests/conftest.py's)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from local.stack import LocalStack
from local.ws_gateway import WebSocketGateway

from .helpers import JobsTransport, Recorded


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


@pytest.fixture
def jobs_queue(local_stack: LocalStack) -> Iterator[str]:
    """A jobs queue of the test's own (the stack is a Kafka one: its template made none)."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"jobs-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield url
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def sqs_transport(jobs_queue: str, monkeypatch: pytest.MonkeyPatch, fresh_services: None) -> str:
    """The functions' environment with TRANSPORT sqs and the test's jobs queue (their services built afresh)."""
    monkeypatch.setenv("TRANSPORT", "sqs")
    monkeypatch.setenv("JOBS_QUEUE_URL", jobs_queue)
    return jobs_queue


@pytest.fixture(params=["kafka", "sqs"])
def transport(request: pytest.FixtureRequest, kafka_bootstrap: str, stack_env: dict[str, str]) -> JobsTransport:
    """Each transport in turn (issue 25: the ingest-to-worker tests run in both): the functions publish to the
    stack's Kafka topic as it is set up, or with TRANSPORT sqs to a jobs queue of the test's own (``sqs_transport``);
    the answer receives what they published and runs WorkerFunction over it, in its event source's event."""
    if request.param == "sqs":
        return JobsTransport("sqs", queue_url=request.getfixturevalue("sqs_transport"))
    return JobsTransport("kafka", bootstrap=kafka_bootstrap, topic=stack_env["KAFKA_TOPIC"])

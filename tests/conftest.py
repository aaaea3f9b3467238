"""Shared fixtures: real peers (moto server over HTTP, Tansu over TCP, the demo Auth service over HTTP).

The component tier gets them from the local stack's own building blocks,
provisioned from template.yaml, so tests and `make local` cannot drift apart.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local.auth_service import AuthService
from local.cfn import template
from local.processes import Process
from local.stack import Config, LocalStack

# Lambda sets a function's environment before importing its handler; Powertools reads these at import.
for _key, _value in template().data["Globals"]["Function"]["Environment"]["Variables"].items():
    if _key.startswith("POWERTOOLS_") and isinstance(_value, str):
        os.environ.setdefault(_key, _value)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Peers started on free ports and the template's resources created, with a per-session name prefix."""
    state: Path = tmp_path_factory.mktemp("stack")
    config = Config.free_ports(prefix=f"t{uuid.uuid4().hex[:8]}", state_dir=state, with_mappings=False)
    stack = LocalStack(config)
    saved = dict(os.environ)
    stack.start_peers()
    stack.provision()
    # The API waits for Kafka as long as the template allows (not its 5 s default): on a loaded machine a slow
    # first publish must not park the jobs in the delay queue, where a test reading Kafka would not find them.
    # Tests of that fallback set their own timeout.
    kafka_timeout = str(stack.template.parameters["KafkaTimeoutSeconds"]["MaxValue"])
    os.environ["KAFKA_TIMEOUT_SECONDS"] = kafka_timeout
    for env in stack.environments.values():
        if "KAFKA_TIMEOUT_SECONDS" in env:
            env["KAFKA_TIMEOUT_SECONDS"] = kafka_timeout
    stack.seed()
    yield stack
    stack.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def moto_endpoint(local_stack: LocalStack) -> str:
    """moto server's URL; boto3 in this process already points at it (AWS_ENDPOINT_URL)."""
    return local_stack.endpoint


@pytest.fixture(scope="session")
def kafka_broker(local_stack: LocalStack) -> Process:
    """The Tansu process: ``stop()`` and ``start()`` it (same port) for failure tests."""
    assert local_stack.kafka is not None
    return local_stack.kafka


@pytest.fixture(scope="session")
def kafka_bootstrap(local_stack: LocalStack) -> str:
    return local_stack.bootstrap


@pytest.fixture(scope="session")
def stack_env(local_stack: LocalStack) -> dict[str, str]:
    """The functions' environment (set in os.environ): table names and queue URLs under their variable names."""
    return {key: os.environ[key] for env in local_stack.environments.values() for key in env}


@pytest.fixture
def auth_service(local_stack: LocalStack) -> Iterator[AuthService]:
    """The demo Auth service, with its faults reset after each test."""
    service = local_stack.auth
    service.start()
    yield service
    service.faults.latency = 0.0
    service.faults.status = None
    service.start()


@pytest.fixture
def fresh_services() -> Iterator[None]:
    """Forget every function's cached clients (for tests that change the environment)."""
    from api import context
    from scheduler import app as scheduler_app
    from worker import app as worker_app

    caches = [context.services, worker_app.services]
    caches += [f for f in (getattr(scheduler_app, "services", None),) if f is not None]
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


@pytest.fixture
def purge_queues(stack_env: dict[str, str]) -> Iterator[None]:
    """Empty the delay queue and the DLQ before and after a test (SQS allows one PurgeQueue a minute)."""
    sqs = boto3.client("sqs")

    def purge() -> None:
        for url in (stack_env["DELAY_QUEUE_URL"], stack_env["DLQ_URL"]):
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    purge()
    yield
    purge()

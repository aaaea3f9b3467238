"""In-app jobs through the worker's real handler, with a real WebSocket client on the local gateway: exactly once.

Kafka redelivers a batch; a worker dies after posting the frame, before recording SENT. Either way the user has one
inbox item and one frame, and the job ends SENT (an in-app job is safe to run again: docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.clock import utc_now
from notify.models import Channel
from notify.records import InboxFilter
from websockets.sync.client import ClientConnection, connect

from local.auth_service import AuthService
from local.ws_gateway import WebSocketGateway, wait_connected

from .helpers import (
    dies_after,
    expire_lease,
    frames,
    job_for,
    job_status,
    kafka_batch,
    queue_bodies,
    run_worker,
    token_for,
    worker_outcomes,
)

pytestmark = pytest.mark.usefixtures("local_stack", "purge_queues", "fresh_services")
_users = itertools.count(90)


@pytest.fixture
def client(gateway: WebSocketGateway, auth_service: AuthService) -> Iterator[tuple[ClientConnection, str]]:
    """A demo user (known to the Auth service, so the worker can render for them) connected to the gateway."""
    user = f"demo-user-{next(_users)}"
    assert user in auth_service.users
    before = set(gateway.connection_ids())
    with connect(f"{gateway.url}?token={token_for(user)}", open_timeout=60) as socket:
        wait_connected(gateway, before)
        yield socket, user


def _notifications(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The first ``count`` notification frames (waiting for them), and any more that follow within half a second."""
    return frames(socket, count, keep=lambda frame: frame.get("type") == "notification")


def _items(user: str, job_id: str) -> list[Any]:
    store = DynamoInboxStore(boto3.client("dynamodb"), os.environ["INBOX_TABLE"])
    items, _ = store.page(user, InboxFilter.ALL, 100, None, utc_now())
    return [i for i in items if i.job_id == job_id]


def test_a_redelivered_in_app_job_is_stored_and_pushed_once(client: tuple[ClientConnection, str]) -> None:
    socket, user = client
    job = job_for(user, "review_liked", channel=Channel.WEBSOCKET)
    event = kafka_batch(job)
    assert worker_outcomes(event) == {"sent": 1}
    assert worker_outcomes(event) == {"duplicate": 1}  # Kafka redelivers after a crash before the commit
    (frame,) = _notifications(socket, 1)
    assert frame["item"]["job_id"] == job.job_id and "Arrival" in frame["item"]["body"]
    assert len(_items(user, job.job_id)) == 1
    sent = job_status(job.job_id)["history"][-1]
    assert sent["status"] == "SENT" and sent["detail"]["connections_reached"] == 1


def test_a_worker_dying_after_the_post_does_not_push_again_and_the_job_ends_sent(
    client: tuple[ClientConnection, str], stack_env: dict[str, str]
) -> None:
    socket, user = client
    job = job_for(user, "review_liked", channel=Channel.WEBSOCKET)
    with dies_after("apigatewaymanagementapi.PostToConnection", "the worker died right after the frame was posted"):
        run_worker(kafka_batch(job))
    assert job_status(job.job_id)["status"] == "SENDING"
    expire_lease(stack_env, job.job_id)  # the dead worker's lease runs out
    assert worker_outcomes(kafka_batch(job)) == {"sent": 1}  # not FAILED outcome_unknown, as an email would be
    assert len(_notifications(socket, 1)) == 1  # the first copy's frame, and no second one
    assert len(_items(user, job.job_id)) == 1
    sent = job_status(job.job_id)["history"][-1]
    assert sent["status"] == "SENT" and sent["detail"]["inbox_item_existed"] is True
    assert queue_bodies(stack_env["DLQ_URL"], [job.job_id]) == []

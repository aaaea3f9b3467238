"""``.`` and ``..`` are no user ids (issue 20, item 6): a URL reads them as path steps, so ``/api/v1/users/..`` is
the Auth service's ``/api/v1``. Every way in refuses them with a 422 on the field, and the Auth adapter never
asks the Auth service for anything outside ``/api/v1/users/`` whatever id reaches it (its request log says so).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify.adapters.auth import HttpUserDirectory
from notify.catalog import EVENT_TYPES
from notify.errors import NotFound, PermanentError
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel

from local.auth_service import AuthService
from local.events import kafka_record, msk_event
from local.invoke import LambdaContext

from .helpers import call_api, queue_bodies

pytestmark = pytest.mark.usefixtures("local_stack")
DOT_SEGMENTS = (".", "..")
# How each can arrive in a path: as it is (API Gateway passes it on), and percent-encoded (decoded for the route).
IN_A_PATH = {".": (".", "%2E", "%2e"), "..": ("..", "%2E%2E", ".%2e")}
PREFIX = "/api/v1/users/"
DAY = timedelta(days=1)


def _field(answer: Any) -> list[str]:
    return [f["loc"] for f in answer["error"]["fields"]]


def _outside(paths: list[str]) -> list[str]:
    """The requested paths that are not one user below /api/v1/users/ nor the segment listing /api/v1/users?…."""
    return [
        p
        for p in paths
        if not (p.startswith(PREFIX) and "/" not in p.split("?")[0].removeprefix(PREFIX) and p != PREFIX)
        and not p.startswith("/api/v1/users?")
    ]


@pytest.mark.parametrize("user", DOT_SEGMENTS)
def test_events_segments_and_imports_refuse_a_dot_segment_user_id(user: str) -> None:
    event = {"event_type": "new_film", "payload": EVENT_TYPES["new_film"].sample_payload()}
    status, answer = call_api("POST", "/api/v1/events", {**event, "recipients": {"user_ids": ["demo-user-1", user]}})
    assert status == 422 and _field(answer) == ["recipients.user_ids.1"], answer
    status, answer = call_api("POST", "/api/v1/events", {**event, "recipients": {"segment_id": user}})
    assert status == 422 and _field(answer) == ["recipients.segment_id"], answer
    segment = f"dots-{uuid.uuid4().hex[:6]}"
    status, answer = call_api("POST", "/api/v1/segments", {"segment_id": segment, "name": "n", "user_ids": [user]})
    assert status == 422 and _field(answer) == ["user_ids.0"], answer
    assert call_api("POST", "/api/v1/segments", {"segment_id": segment, "name": "n"})[0] == 201
    for method in ("POST", "DELETE"):
        status, answer = call_api(method, f"/api/v1/segments/{segment}/users", {"user_ids": [user]})
        assert status == 422 and _field(answer) == ["user_ids.0"], (method, answer)
    status, answer = call_api("PUT", "/api/v1/preferences", {"items": [{"user_id": user, "channels": {}}]})
    assert status == 422 and _field(answer) == ["items.0.user_id"], answer


@pytest.mark.parametrize("user", DOT_SEGMENTS)
def test_every_users_route_refuses_a_dot_segment_user_id(user: str) -> None:
    routes = [
        ("GET", "notifications", None),
        ("GET", "preferences", None),
        ("PUT", "preferences", {"channels": {"email": False}}),
        ("GET", "inbox", None),
        ("POST", "tokens", None),
    ]
    for written in IN_A_PATH[user]:
        for method, tail, body in routes:
            status, answer = call_api(method, f"/api/v1/users/{written}/{tail}", body)
            assert status == 422, (method, written, tail, status, answer)
            assert _field(answer) == ["path.user_id"], answer
            assert "path step" in answer["error"]["fields"][0]["msg"], answer


def test_the_auth_adapter_never_leaves_the_users_prefix(auth_service: AuthService) -> None:
    directory = HttpUserDirectory.build(auth_service.url, lambda: auth_service.token)
    before = len(auth_service.faults.paths)
    odd = ("...", "../x", "./x", "%2E%2E", "a/../../..", ".%2e")
    raised: dict[str, type[Exception]] = {}
    for user in (*DOT_SEGMENTS, *odd):
        try:
            directory.get_user(user)
        except (NotFound, PermanentError) as exc:
            raised[user] = type(exc)
    assert directory.get_user("demo-user-1").id == "demo-user-1"
    asked = auth_service.faults.paths[before:]
    assert _outside(asked) == [], asked
    assert raised == {".": PermanentError, "..": PermanentError, **dict.fromkeys(odd, NotFound)}
    assert len(asked) == len(odd) + 1, asked  # the dot segments were never sent


def test_a_job_for_a_dot_segment_user_reaches_no_auth_path_outside_the_users_prefix(
    auth_service: AuthService, stack_env: dict[str, str], purge_queues: None, fresh_services: None
) -> None:
    from worker.app import kafka_processor, lambda_handler

    spec = EVENT_TYPES["user_registered"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), ["demo-user-1"], [Channel.EMAIL], spec.priority, now, now + DAY
    )
    before = len(auth_service.faults.paths)
    jobs = []
    for user in DOT_SEGMENTS:  # a job written by something that skipped validation (an old producer, by hand)
        job = json.loads(plan.jobs()[0].model_dump_json())
        jobs.append({**job, "user_id": user, "job_id": str(uuid.uuid4())})
    records = [kafka_record("notification-jobs", 0, i, json.dumps(j).encode(), b"k") for i, j in enumerate(jobs)]
    assert lambda_handler(msk_event(records, "127.0.0.1:9092"), LambdaContext("WorkerFunction", 120)) == {
        "batchItemFailures": []
    }
    assert _outside(auth_service.faults.paths[before:]) == [], auth_service.faults.paths[before:]
    assert kafka_processor.outcomes == {"dead_lettered": 2}, kafka_processor.outcomes
    ids = [j["job_id"] for j in jobs]
    letters = queue_bodies(stack_env["DLQ_URL"], where=lambda x: any(i in x.get("raw", "") for i in ids), count=2)
    assert sorted(letter["reason"] for letter in letters) == ["invalid_job", "invalid_job"]

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, job_id, locator, locator_of_job, new_event_id
from notify.models import Channel, Priority

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_job_id_is_deterministic_and_distinct_per_user_and_channel() -> None:
    event = new_event_id()
    a = job_id(event, "u1", Channel.EMAIL)
    assert a == job_id(event, "u1", "email")
    others = {
        job_id(event, "u1", Channel.PUSH),
        job_id(event, "u2", Channel.EMAIL),
        job_id(new_event_id(), "u1", "email"),
    }
    assert a not in others and len(others) == 3


def test_job_id_is_a_version_8_uuid_that_locates_its_event() -> None:
    event = new_event_id()
    jid = job_id(event, "u1", Channel.EMAIL)
    parsed = uuid.UUID(jid)
    assert parsed.version == 8
    assert parsed.variant == uuid.RFC_4122
    assert locator_of_job(jid) == locator(event)


def test_plan_expands_one_job_per_user_and_channel() -> None:
    plan = EventPlan(
        event_id=new_event_id(),
        event_type=EVENT_TYPES["new_episode"],
        payload=EVENT_TYPES["new_episode"].sample_payload(),
        user_ids=["u1", "u2"],
        channels=[Channel.EMAIL, Channel.PUSH],
        priority=Priority.NORMAL,
        created_at=NOW,
        expires_at=NOW + timedelta(days=1),
    )
    jobs = plan.jobs()
    assert [(j.user_id, j.channel) for j in jobs] == [
        ("u1", Channel.EMAIL),
        ("u1", Channel.PUSH),
        ("u2", Channel.EMAIL),
        ("u2", Channel.PUSH),
    ]
    assert [j.job_id for j in jobs] == plan.job_ids()
    assert all(j.template_key == "new_episode" and j.attempt == 0 for j in jobs)

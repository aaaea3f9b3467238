"""Write events/*.json: one AWS-shaped sample event per function and trigger (``sam local invoke -e``).

The files are committed; the tests load them through tests/support/events.py and
check them against Powertools' parser models, so they cannot drift from AWS's shapes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan
from notify.models import Channel

from local.events import dumps, http_api_event, kafka_record, msk_event, scheduled_event, sqs_event, sqs_record

EVENTS = Path(__file__).resolve().parent.parent / "events"
CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2036, 1, 1, tzinfo=UTC)


def _job(event_id: str, user: str) -> str:
    spec = EVENT_TYPES["user_registered"]
    plan = EventPlan(event_id, spec, spec.sample_payload(), [user], [Channel.EMAIL], spec.priority, CREATED, EXPIRES)
    return plan.jobs()[0].model_dump_json(exclude_none=True)


def main() -> None:
    body = {
        "event_type": "user_registered",
        "payload": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
        "recipients": {"user_ids": ["demo-user-1"]},
    }
    api = http_api_event(
        "POST",
        "/api/v1/events",
        headers={"content-type": "application/json", "x-api-key": "local-dev-key", "host": "api.example.com"},
        body=json.dumps(body).encode(),
    )
    kafka_value = _job("0b6a3c52-2f6e-4a51-9a39-5f0d1c2e7a10", "demo-user-1")
    msk = msk_event(
        [
            kafka_record(
                "notification-jobs",
                0,
                42,
                kafka_value.encode(),
                b"demo-user-1",
                [("kind", b"job"), ("schema_version", b"1")],
                1795492800000,
            )
        ],
        "b-1.notifications.abc123.c2.kafka.us-east-1.amazonaws.com:9098",
        cluster="notifications",
    )
    sqs_value = _job("4c1f6a8e-93b2-4d0e-8f5a-2b7c9d1e3f40", "demo-user-2")
    sqs = sqs_event(
        [
            sqs_record(
                sqs_value,
                "arn:aws:sqs:us-east-1:123456789012:notification-service-DelayQueue",
                "059f36b4-87a3-44ab-83d2-661975830a7d",
                "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                message_attributes={"kind": {"DataType": "String", "StringValue": "job"}},
            )
        ]
    )
    EVENTS.mkdir(exist_ok=True)
    for name, event in {
        "api_post_event": api,
        "msk_batch": msk,
        "sqs_delay_batch": sqs,
        "schedule_tick": scheduled_event(),
    }.items():
        (EVENTS / f"{name}.json").write_text(dumps(event))


if __name__ == "__main__":
    main()

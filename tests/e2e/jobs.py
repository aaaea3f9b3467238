"""Jobs the end-to-end tests put straight on a transport (the Kafka topic, the SQS jobs queue), as any producer
could: a new_film email per user, built as the API builds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob


def new_film_emails(users: list[str]) -> list[NotificationJob]:
    """One event's new_film email jobs, one per user, expiring in an hour."""
    spec = EVENT_TYPES["new_film"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        users,
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(hours=1),
    )
    return plan.jobs()

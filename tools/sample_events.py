"""``make events``: write events/*.json, one AWS-shaped sample event per function and trigger.

They are what ``sam local invoke -e`` and ``make invoke`` take, and what the component tests invoke the handlers
with. They are built with the local runner's own builders (``local/events.py``), the HTTP API route and the Kafka
event sources read from template.yaml, and fixed ids and times, so the output is the same on every run: a
contract test regenerates them and fails when the committed files are stale.

    python -m tools.sample_events [--out DIR]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan
from notify.models import Channel
from notify.usertokens import UserTokens

from local.cfn import Template, template
from local.events import (
    DELAY_QUEUE_ARN,
    EVENTS,
    MSK_BOOTSTRAP_SERVERS,
    MSK_CLUSTER_ARN,
    SELF_MANAGED_BOOTSTRAP_SERVERS,
    TOPIC,
    dumps,
    http_api_event,
    kafka_event,
    kafka_record,
    scheduled_event,
    ses_event,
    sns_event,
    sqs_event,
    sqs_record,
    websocket_connect_event,
    websocket_disconnect_event,
    websocket_message_event,
)
from local.gateway import Route, choose

CREATED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2036, 1, 1, tzinfo=UTC)
PRODUCED_MS = 1795492800000  # when the sample jobs were produced to Kafka
JOB_HEADERS = [("kind", "job"), ("schema_version", "1")]


def _job(event_id: str, user: str) -> str:
    """The JSON of the email job a ``user_registered`` event makes for ``user`` (deterministic ids)."""
    spec = EVENT_TYPES["user_registered"]
    payload = {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"}
    plan = EventPlan(event_id, spec, payload, [user], [Channel.EMAIL], spec.priority, CREATED, EXPIRES)
    return plan.jobs()[0].model_dump_json(exclude_none=True)


def api_post_event(tpl: Template) -> dict[str, Any]:
    """POST /api/v1/events through the HTTP API route template.yaml gives it, as curl would send it."""
    body = json.dumps(
        {
            "event_type": "user_registered",
            "payload": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
            "recipients": {"user_ids": ["demo-user-1"]},
        }
    ).encode()
    chosen = choose([Route(m, p) for m, p in tpl.http_routes("ApiFunction")], "POST", "/api/v1/events")
    assert chosen is not None, "no route of the HTTP API takes POST /api/v1/events"
    route, parameters = chosen
    domain = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    headers = {
        "accept": "application/json",
        "content-length": str(len(body)),
        "content-type": "application/json",
        "host": domain,
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-6742f4a3-0d2c3b4a5e6f708192a3b4c5",
        "x-api-key": "local-dev-key",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    return http_api_event(
        "POST",
        "/api/v1/events",
        "",
        headers,
        body,
        "203.0.113.10",
        route.key,
        parameters,
        api_id="a1b2c3d4e5",
        request_id="Bx7QkjJMoAMEVdA=",
        at=CREATED,
    )


def kafka_batch(tpl: Template, mode: str, offset: int, job: str, user: str) -> dict[str, Any]:
    """A one-record batch as the worker's Kafka event source of KafkaMode ``mode`` delivers it."""
    parameters = {
        **tpl.parameter_defaults(),
        "KafkaMode": mode,
        "MskClusterArn": MSK_CLUSTER_ARN if mode == "msk" else "",
        "KafkaBootstrapServers": MSK_BOOTSTRAP_SERVERS if mode == "msk" else SELF_MANAGED_BOOTSTRAP_SERVERS,
    }
    source = tpl.kafka_source("WorkerFunction", parameters)
    record = kafka_record(TOPIC, 0, offset, job, user, JOB_HEADERS, PRODUCED_MS)
    return kafka_event(
        [record],
        event_source=source.event_source,
        bootstrap_servers=source.bootstrap_servers or parameters["KafkaBootstrapServers"],
        event_source_arn=source.event_source_arn,
    )


def sqs_delay_batch() -> dict[str, Any]:
    """A job parked in the delay queue, as the worker's SQS event source delivers it."""
    record = sqs_record(
        _job("4c1f6a8e-93b2-4d0e-8f5a-2b7c9d1e3f40", "demo-user-2"),
        DELAY_QUEUE_ARN,
        "059f36b4-87a3-44ab-83d2-661975830a7d",
        "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        message_attributes={"kind": "job"},
        sent_timestamp_ms=1795493947058,
    )
    return sqs_event([record])


# The WebSocket samples: one connection of demo-user-5's browser to the stack's WebSocket API.
WS_API_ID = "f6g7h8i9j0"
WS_CONNECTION = "BFaT_fALIAMCKug="
WS_CONNECTED_MS = 1795521600000  # 2026-11-24T12:00:00Z
WS_USER = "demo-user-5"
# The sample's token is signed with this stand-in key, so it is well formed but no stack accepts it: the component
# tests put a token of their stack's own in its place (docs/INBOX.md says how a front end gets one).
WS_SAMPLE_KEY = "sample-events-signing-key-not-used-by-any-stack"


def ws_connect() -> dict[str, Any]:
    """The $connect of a browser opening wss://…/prod?token=<user token> for demo-user-5."""
    token, _ = UserTokens(lambda: WS_SAMPLE_KEY).issue(WS_USER, CREATED)
    host = f"{WS_API_ID}.execute-api.us-east-1.amazonaws.com"
    headers = {
        "Host": host,
        "Origin": "https://app.example.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "X-Amzn-Trace-Id": "Root=1-6743158a-2c4b6d8e0f1a3c5e7a9b1d3f",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    return websocket_connect_event(
        WS_CONNECTION,
        f"token={token}",
        headers,
        source_ip="203.0.113.10",
        api_id=WS_API_ID,
        request_id="BFHPhFe3IAMF95g=",
        at=CREATED,
    )


def ws_message() -> dict[str, Any]:
    """A text frame the browser sent on that connection: it asks for its counts."""
    return websocket_message_event(
        WS_CONNECTION,
        json.dumps({"action": "counts"}),
        WS_CONNECTED_MS,
        source_ip="203.0.113.10",
        api_id=WS_API_ID,
        request_id="BFaVtH2HoAMFZEQ=",
        message_id="BFaVtfGSIAMCKug=",
        at=datetime(2026, 11, 24, 12, 0, 11, tzinfo=UTC),
    )


def ws_disconnect() -> dict[str, Any]:
    """The browser's tab closed (close code 1001, going away)."""
    return websocket_disconnect_event(
        WS_CONNECTION,
        WS_CONNECTED_MS,
        1001,
        source_ip="203.0.113.10",
        api_id=WS_API_ID,
        request_id="BFbOeE87IAMF31w=",
        at=datetime(2026, 11, 24, 12, 6, 15, tzinfo=UTC),
    )


def samples(tpl: Template) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every sample event by file name (without .json)."""
    return {
        "api_post_event": lambda: api_post_event(tpl),
        "msk_batch": lambda: kafka_batch(
            tpl, "msk", 42, _job("0b6a3c52-2f6e-4a51-9a39-5f0d1c2e7a10", "demo-user-1"), "demo-user-1"
        ),
        "msk_batch_selfmanaged": lambda: kafka_batch(
            tpl, "self-managed", 7, _job("7e3d2b91-5c4a-4f6e-8b1d-3a9c0e2f4d65", "demo-user-3"), "demo-user-3"
        ),
        "sqs_delay_batch": sqs_delay_batch,
        "ws_connect": ws_connect,
        "ws_message": ws_message,
        "ws_disconnect": ws_disconnect,
        "schedule_tick": lambda: scheduled_event(
            datetime(2026, 11, 24, 12, 1, tzinfo=UTC), event_id="4d82212c-8768-43c7-951e-cdb5bb900fe2"
        ),
        "ses_delivery_sns": lambda: _feedback(
            "Delivery",
            {
                "timestamp": "2026-11-24T12:00:02.000Z",
                "processingTimeMillis": 1546,
                "recipients": ["demo-user-1@example.com"],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
            },
        ),
        "ses_bounce_sns": lambda: _feedback(
            "Bounce",
            {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": "demo-user-1@example.com",
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": "2026-11-24T12:00:03.000Z",
                "feedbackId": "0100018c1f0b1a2b-bounce-000000",
                "reportingMTA": "dsn; e226-55.smtp-out.us-east-1.amazonses.com",
            },
        ),
        "ses_complaint_sns": lambda: _feedback(
            "Complaint",
            {
                "complainedRecipients": [{"emailAddress": "demo-user-1@example.com"}],
                "timestamp": "2026-11-24T12:05:00.000Z",
                "feedbackId": "0100018c1f0b1a2b-complaint-000000",
                "userAgent": "Mozilla/5.0",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2026-11-24T12:04:59.000Z",
            },
        ),
    }


# The job of _job("0b6a3c52-…", "demo-user-1"), as SES would report on the email it sent.
FEEDBACK_JOB = "0b6a3c52-2f6e-8a51-8000-000000000000"
FEEDBACK_MESSAGE = "0100018c1f0b1a2b-5a6e4c2d-8f1b-4c3d-9e7a-1b2c3d4e5f60-000000"


def _feedback(event_type: str, section: dict[str, Any]) -> dict[str, Any]:
    """An SNS delivery of one SES event about a new_film email to demo-user-1."""
    tags = {"job_id": FEEDBACK_JOB, "event_type": "new_film"}
    event = ses_event(event_type, FEEDBACK_MESSAGE, "demo-user-1@example.com", tags, section)
    return sns_event([json.dumps(event, separators=(",", ":"))])


def write_events(directory: Path) -> list[Path]:
    """Write every sample event into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in samples(template()).items():
        path = directory / f"{name}.json"
        path.write_text(dumps(build()))
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.sample_events", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=EVENTS, help="directory to write to (default: events/)")
    for path in write_events(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()

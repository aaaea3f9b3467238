"""Digest cost (issue 23): the AWS requests of collecting jobs into digests, and of sending the digests.

On the local stack's peers (moto; no pollers: the benchmark drives the worker's handler), a rule digests review_liked
emails per review over 10 s windows (``max_items`` 100). Two shapes of load, each of ``members`` review_liked emails
in one MSK batch: **few buckets** (``users`` users × ``reviews`` reviews, 25 likes each with the full sizes) and
**one each** (every like a review of its own: each member opens its bucket). Every member must end ``digested``.
When the window has ended, the delay queue's flush tasks go through the handler as its SQS trigger delivers them
(batches of 10): each closes its bucket and sends its digest's job, one email listing its members; each must end
``sent``. Each user was notified once before (a plain email), so the digests are the steady state, not a user's
first notification of the day (one more ``UpdateItem``, docs/WORKER.md step 5).

Every request the worker makes is counted with botocore's hooks, per phase. A TransactWriteItems is one request of
several items; each item costs 2 write request units per started KB (transactions cost double), a plain write 1:
the write units printed assume items of at most 1 KB (the largest items are printed to check that). SQS counts
the worker's own requests and the messages they carry (the flush tasks); the SQS trigger's own receives and
deletes are the Lambda service's, not the worker's, and are not counted.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.catalog import EVENT_TYPES
from notify.digests import DigestRule, StoredDigestRule
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel

from bench import arguments
from bench.peers import peers
from bench.worker import READS, WRITES, _attribute_size, auth_service, largest_item
from local.events import kafka_record, msk_event, sqs_batch
from local.invoke import LambdaContext

WINDOW_SECONDS = 10  # notify.digests.MIN_WINDOW_SECONDS: the shortest window a rule may have
RULE = {"channels": ["email"], "window": {"seconds": WINDOW_SECONDS}, "key": ["review_id"], "max_items": 100}
USERS = 100
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Shape:
    """``members`` likes to ``users`` users about ``reviews`` reviews each, spread evenly: users × reviews buckets."""

    name: str
    users: int
    reviews: int
    members: int

    @property
    def buckets(self) -> int:
        return self.users * self.reviews


FULL = (Shape("few buckets", 2, 2, 100), Shape("one each", 100, 1, 100))
QUICK = (Shape("few buckets", 1, 2, 4),)


@dataclass
class _Counts:
    """Requests by ``service.operation``; the items DynamoDB writes, and write units, as above; SQS messages sent."""

    calls: Counter[str] = field(default_factory=Counter)
    items: int = 0
    units: int = 0
    messages: int = 0

    def request(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        self.calls[f"{service}.{operation}"] += 1

    def params(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        if service == "sqs":
            self.messages += len(params.get("Entries", [])) if operation == "SendMessageBatch" else 1
        elif operation == "TransactWriteItems":
            self.items += len(params["TransactItems"])
            self.units += 2 * len(params["TransactItems"])
        elif operation == "BatchWriteItem":
            n = sum(len(v) for v in params["RequestItems"].values())
            self.items, self.units = self.items + n, self.units + n
        elif operation in WRITES:
            self.items, self.units = self.items + 1, self.units + 1

    def summary(self) -> dict[str, Any]:
        dynamodb = {k.split(".")[1]: v for k, v in self.calls.items() if k.startswith("dynamodb.")}
        return {
            "writes": sum(v for k, v in dynamodb.items() if k in WRITES),
            "write_items": self.items,
            "write_units": self.units,
            "reads": sum(v for k, v in dynamodb.items() if k in READS),
            "sqs_requests": sum(v for k, v in self.calls.items() if k.startswith("sqs.")),
            "sqs_messages": self.messages,
            "ses": self.calls.get("sesv2.SendEmail", 0),
            "calls": dict(sorted(self.calls.items())),
        }

    def clear(self) -> None:
        self.calls.clear()
        self.items = self.units = self.messages = 0


def _jobs_batch(event_type: str, likes: list[tuple[int, str, str]]) -> dict[str, Any]:
    """One MSK batch: a job per (user, review id, liker)."""
    spec = EVENT_TYPES[event_type]
    now = datetime.now(UTC)
    records = []
    for offset, (user, review, liker) in enumerate(likes):
        payload = {**spec.sample_payload(), "review_id": review, "liked_by": liker}
        recipients = [f"demo-user-{user}"]
        plan = EventPlan(new_event_id(), spec, payload, recipients, [Channel.EMAIL], spec.priority, now, now + DAY)
        records += [kafka_record("notification-jobs", 0, offset, j.model_dump_json().encode()) for j in plan.jobs()]
    return msk_event(records, "127.0.0.1:9092")


def _handle(app: Any, event: dict[str, Any], processor: str, outcome: str) -> None:
    answer = app.lambda_handler(event, LambdaContext("WorkerFunction", 120))
    records = len(event["Records"]) if "Records" in event else sum(len(r) for r in event["records"].values())
    outcomes = getattr(app, processor).outcomes
    assert outcomes == {outcome: records}, (outcomes, answer)


def _flush_tasks(expected: int, wait: float) -> list[str]:
    """Receive (and delete) the delay queue's flush tasks until ``expected`` have come, the windows having ended."""
    sqs, url = boto3.client("sqs"), os.environ["DELAY_QUEUE_URL"]
    bodies: list[str] = []
    deadline = time.monotonic() + wait
    while len(bodies) < expected and time.monotonic() < deadline:
        found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in found:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert len(bodies) == expected, f"{len(bodies)} flush tasks of {expected}"
    return bodies


def _largest_jobs() -> dict[str, int]:
    """Bytes of the largest DIGESTED member's job item and of the largest digest's job item (SENT), by DynamoDB's
    sizing rules: a write to an item over 1 KB costs more than the units printed."""
    client: Any = boto3.client("dynamodb")
    largest = {"member": 0, "digest": 0}
    for page in client.get_paginator("scan").paginate(TableName=os.environ["NOTIFICATIONS_TABLE"]):
        for item in page["Items"]:
            if not item.get("pk", {}).get("S", "").startswith("JOB#"):
                continue
            size = sum(len(k.encode()) + _attribute_size(v) for k, v in item.items())
            if item.get("status", {}).get("S") == "DIGESTED":
                largest["member"] = max(largest["member"], size)
            elif "digest_bucket" in item:
                largest["digest"] = max(largest["digest"], size)
    return largest


def run(shapes: tuple[Shape, ...]) -> dict[str, Any]:
    counts = _Counts()
    session = boto3._get_default_session()
    session.events.register("before-send", counts.request, unique_id="bench-digest-count")
    session.events.register("before-parameter-build", counts.params, unique_id="bench-digest-params")
    results: dict[str, Any] = {}
    try:
        with peers(), auth_service(USERS, 0.0) as (auth_url, _):
            os.environ.update(AUTH_API_URL=auth_url, SES_MAX_SEND_RATE="10000", PREFERENCES_CACHE_SECONDS="30")
            rules = DynamoDigestRules(boto3.client("dynamodb"), os.environ["TEMPLATES_TABLE"], cache_seconds=0)
            rule = DigestRule.model_validate({"event_type": "review_liked", **RULE})
            rules.put(StoredDigestRule(rule, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
            from worker import app

            app.services.cache_clear()  # a container that reads the rule
            users = sorted({u for shape in shapes for u in range(1, shape.users + 1)})
            _handle(app, _jobs_batch("new_film", [(u, "", "") for u in users]), "kafka_processor", "sent")
            for n, shape in enumerate(shapes):
                likes = [
                    (1 + m % shape.users, f"r-{n}-{m // shape.users % shape.reviews}", f"Liker{m}")
                    for m in range(shape.members)
                ]
                counts.clear()
                opened = time.monotonic()
                _handle(app, _jobs_batch("review_liked", likes), "kafka_processor", "digested")
                collected = counts.summary()
                tasks = _flush_tasks(shape.buckets, WINDOW_SECONDS + 60 - (time.monotonic() - opened))
                counts.clear()
                for i in range(0, len(tasks), 10):
                    _handle(app, sqs_batch(tasks[i : i + 10]), "sqs_processor", "sent")
                results[shape.name] = {"collect": collected, "flush": counts.summary()}
            results["largest digest item"] = largest_item("DIG#")
            results["largest job items"] = _largest_jobs()
    finally:
        session.events.unregister("before-send", unique_id="bench-digest-count")
        session.events.unregister("before-parameter-build", unique_id="bench-digest-params")
    return results


def main(quick: bool = False) -> dict[str, float]:
    """Print the requests per digested member and per digest sent; return them for docs/COST.md."""
    shapes = QUICK if quick else FULL
    results = run(shapes)
    print(
        f"digests: review_liked emails collected per review over {WINDOW_SECONDS} s windows (an MSK batch through"
        " the handler), then the flush tasks through its SQS trigger; requests the worker made"
    )
    quantities: dict[str, float] = {}
    for shape in shapes:
        collect, flush = results[shape.name]["collect"], results[shape.name]["flush"]
        members, buckets = shape.members, shape.buckets
        print(f"  {shape.name}: {members} members into {buckets} buckets of {members // buckets}")
        for label, found, per in (("per member digested", collect, members), ("per digest sent", flush, buckets)):
            print(
                f"    {label:<20} DynamoDB {found['writes'] / per:.2f} writes ({found['write_items'] / per:.2f} items,"
                f" {found['write_units'] / per:.2f} write units) + {found['reads'] / per:.2f} reads,"
                f" SQS {found['sqs_requests'] / per:.2f} requests ({found['sqs_messages'] / per:.2f} messages),"
                f" SES {found['ses'] / per:.2f}"
            )
            print(f"      (all requests: {found['calls']})")
        key = "few" if shape.name == "few buckets" else "one"
        quantities[f"digest_{key}_member_writes"] = collect["writes"] / members
        quantities[f"digest_{key}_member_units"] = collect["write_units"] / members
        quantities[f"digest_{key}_member_reads"] = collect["reads"] / members
        quantities[f"digest_{key}_member_sqs"] = collect["sqs_messages"] / members
        quantities[f"digest_{key}_sent_writes"] = flush["writes"] / buckets
        quantities[f"digest_{key}_sent_units"] = flush["write_units"] / buckets
        quantities[f"digest_{key}_sent_reads"] = flush["reads"] / buckets
    jobs = results["largest job items"]
    print(
        f"  largest items: a digest's (head, member, closed bucket) {results['largest digest item']} bytes,"
        f" a DIGESTED member's job {jobs['member']} bytes, a digest's job after SENT {jobs['digest']} bytes"
    )
    return quantities


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

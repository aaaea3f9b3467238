"""Worker throughput: notifications per second for one 100-record MSK batch, concurrent vs sequential.

Latency is injected where the real services would add it: the demo Auth
service sleeps 20 ms per request, and a botocore ``before-send`` hook holds
every SES SendEmail for 30 ms. Every AWS request is counted with botocore
event hooks, to give requests per delivered notification.
"""

from __future__ import annotations

import base64
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel

from bench.peers import peers
from local.cfn import template
from local.events import kafka_record, msk_event
from local.invoke import LambdaContext

BATCH = 100
AUTH_LATENCY = 0.020
SES_LATENCY = 0.030
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "BatchGetItem", "Scan"}


def _batch(first_user: int) -> dict[str, Any]:
    spec = EVENT_TYPES["new_episode"]
    now = datetime.now(UTC)
    users = [f"demo-user-{n}" for n in range(first_user, first_user + BATCH)]
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), users, [Channel.EMAIL], spec.priority, now, now + timedelta(days=1)
    )
    records = [kafka_record("notification-jobs", 0, i, j.model_dump_json().encode()) for i, j in enumerate(plan.jobs())]
    return msk_event(records, "127.0.0.1:9092")


def run() -> dict[str, dict[str, Any]]:
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        calls[f"{service}.{operation}"] += 1

    def slow_ses(**_: Any) -> None:
        time.sleep(SES_LATENCY)

    session = boto3._get_default_session()
    session.events.register("before-send", count, unique_id="bench-count")
    session.events.register("before-send.sesv2.SendEmail", slow_ses, unique_id="bench-ses")
    results: dict[str, dict[str, Any]] = {}
    try:
        with peers() as stack:
            stack.auth.add_user("warm-up", email="warm@example.com")
            for n in range(101, 301):
                stack.auth.add_user(f"demo-user-{n}", email=f"demo-user-{n}@example.com")
            stack.auth.faults.latency = AUTH_LATENCY
            from worker import app

            for label, concurrency, first in (("sequential", 1, 1), ("concurrent", 16, 101)):  # noqa: B007
                os.environ["WORKER_CONCURRENCY"] = str(concurrency)
                app.services.cache_clear()
                app.lambda_handler(_warm(), _ctx())
                calls.clear()
                assert stack.moto is not None and stack.moto.pid is not None
                moto_cpu = _cpu_seconds(stack.moto.pid)
                started = time.perf_counter()
                outcome = app.lambda_handler(_batch(first), _ctx())
                elapsed = time.perf_counter() - started
                moto_busy = (_cpu_seconds(stack.moto.pid) - moto_cpu) / elapsed
                assert app.kafka_processor.outcomes == {"sent": BATCH}, outcome
                results[label] = {"seconds": elapsed, "rate": BATCH / elapsed, "calls": dict(calls), "moto": moto_busy}
                if label == "concurrent":
                    results["job item"] = {"bytes": largest_item("JOB#")}
                    results["store in memory"] = _in_memory_store_run(app, stack)
    finally:
        session.events.unregister("before-send", unique_id="bench-count")
        session.events.unregister("before-send.sesv2.SendEmail", unique_id="bench-ses")
    return results


def _warm() -> dict[str, Any]:
    """One job for a warm-up user: the container's cold start and template cache are not measured."""
    spec = EVENT_TYPES["new_episode"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        ["warm-up"],
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(days=1),
    )
    return msk_event([kafka_record("notification-jobs", 0, 0, plan.jobs()[0].model_dump_json().encode())], "x:9092")


def _in_memory_store_run(app: Any, stack: Any) -> dict[str, Any]:
    """Upper bound: the same handler and pool, Auth and SES as before, but job state in memory, not moto.

    Not a peer test: it shows what the worker's concurrency achieves when the
    status store scales, as DynamoDB does and one moto process does not.
    """
    from tests.unit.fakes import MemoryStore

    delivery = app.services().delivery
    real_store = delivery._store
    delivery._store = MemoryStore()
    try:
        for sequential in (True, False):
            started = time.perf_counter()
            if sequential:
                for record in _batch(1)["records"]["notification-jobs-0"]:
                    delivery.handle_raw(base64.b64decode(record["value"]), "kafka")
            else:
                outcome = app.lambda_handler(_batch(201), _ctx())  # users no run has cached
                assert app.kafka_processor.outcomes == {"sent": BATCH}, outcome
            elapsed = time.perf_counter() - started
            if sequential:
                base = elapsed
        return {"seconds": elapsed, "rate": BATCH / elapsed, "speedup": base / elapsed, "calls": {}, "moto": 0.0}
    finally:
        delivery._store = real_store


def largest_item(prefix: str) -> int:
    """Bytes of the largest status-table item whose key starts with ``prefix``, by DynamoDB's sizing rules
    (a write is billed one write request unit per started KB)."""
    client: Any = boto3.client("dynamodb")
    table, largest = os.environ["NOTIFICATIONS_TABLE"], 0
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if any(v.get("S", "").startswith(prefix) for v in item.values()):
                largest = max(largest, sum(len(k.encode()) + _attribute_size(v) for k, v in item.items()))
    return largest


def _attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value: strings and binaries by length, numbers ~1 byte per 2 digits + 1,
    maps and lists 3 bytes plus 1 per element plus their contents (names included)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _attribute_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _attribute_size(x) for x in v)
    if kind in ("SS", "NS"):
        return sum(len(x.encode()) for x in v)
    return 1  # BOOL, NULL


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ctx() -> LambdaContext:
    return LambdaContext("WorkerFunction", 120)


def main() -> dict[str, float]:
    """Print the run; return the per-notification quantities docs/COST.md rests on."""
    results = run()
    base = results["sequential"]["rate"]
    print(
        f"worker: one MSK batch of {BATCH} emails, Auth +{AUTH_LATENCY * 1000:.0f} ms, SES +{SES_LATENCY * 1000:.0f} ms"
    )
    for label in ("sequential", "concurrent"):
        r = results[label]
        print(
            f"  {label:<12}{r['seconds']:7.2f} s  {r['rate']:8.1f} notifications/s  {r['rate'] / base:5.1f}×"
            f"   moto server busy {r['moto']:4.0%} of one core"
        )
    m = results["store in memory"]
    print(
        f"  upper bound, job state in memory (Auth and SES as above): {m['rate']:.1f} notifications/s, "
        f"{m['speedup']:.1f}× its own sequential run"
    )
    calls = results["concurrent"]["calls"]
    writes = sum(v for k, v in calls.items() if k.startswith("dynamodb.") and k.split(".")[1] in WRITES)
    reads = sum(v for k, v in calls.items() if k.startswith("dynamodb.") and k.split(".")[1] in READS)
    sqs = sum(v for k, v in calls.items() if k.startswith("sqs."))
    ses = calls.get("sesv2.SendEmail", 0)
    print(
        f"  AWS requests per delivered notification: DynamoDB {writes / BATCH:.2f} writes + {reads / BATCH:.2f} reads,"
        f" SES {ses / BATCH:.2f}, SQS {sqs / BATCH:.2f}"
    )
    print(f"  (all requests of the batch: {dict(sorted(calls.items()))})")
    # Lambda bills the invocation's wall time × MemorySize: one batch of BATCH records is one invocation.
    memory_gb = template().functions()["WorkerFunction"].memory_size / 1024
    quantities = {
        "worker_gb_s": results["concurrent"]["seconds"] * memory_gb / BATCH,
        "worker_gb_s_in_memory": m["seconds"] * memory_gb / BATCH,
        "worker_invocations": 1 / BATCH,
        "dynamodb_writes": writes / BATCH,
        "dynamodb_reads": reads / BATCH,
        "ses_sends": ses / BATCH,
        "sqs_requests": sqs / BATCH,
        "job_item_bytes": results["job item"]["bytes"],
    }
    print(
        f"  worker GB-s per notification ({memory_gb:g} GB × time per batch / {BATCH}): "
        f"{quantities['worker_gb_s']:.5f} with moto (its latency inflates it), "
        f"{quantities['worker_gb_s_in_memory']:.5f} with job state in memory"
    )
    size = results["job item"]["bytes"]
    print(f"  largest job item after SENT: {size} bytes = {-(-size // 1024)} write request unit(s) per write")
    return quantities


if __name__ == "__main__":
    main()

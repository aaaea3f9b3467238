"""Ingestion: accepted jobs per CPU-second of the API process, with each transport, next to its raw client.

moto server and Kafka (Tansu) run in their own processes, so the CPU time measured here (``time.process_time``)
is the API's own work: validation, job expansion, the DynamoDB write, and publishing: producing to Kafka and
waiting for acks (Transport kafka), or ``SendMessageBatch`` of ten to the jobs queue on moto (Transport sqs, the
same requests again with ``TRANSPORT`` sqs). The single and batch requests run a third time against a FIFO jobs queue
(bench/fifo.py: each job grouped by its user and deduplicated by its id), which the template does not offer, to
compare the two kinds of queue. The raw clients publish job-sized messages with nothing around them: kafka-python's
producer with the API's settings, and SQS ``SendMessageBatch`` of ten in one thread (to each kind of queue).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3

from bench import arguments
from bench.fifo import fifo_transport
from bench.peers import jobs_queue, peers, sqs_transport
from bench.worker import largest_item
from local.cfn import template
from local.events import http_api_event
from local.invoke import LambdaContext


@dataclass(frozen=True)
class Sizes:
    """How many requests each path makes: ``make bench``'s by default, :data:`QUICK` with ``--quick``."""

    single: int = 300  # POST /events, 1 job each
    batch_calls: int = 40  # POST /events:batch, each of batch_events events × 1 job
    batch_events: int = 100
    wide: int = 20  # POST /events, each to wide_recipients users
    wide_recipients: int = 1000
    raw: int = 20_000  # messages from the raw producer
    raw_sqs: int = 2_000  # messages from the raw SQS client, ten a request (to each kind of queue)


FULL = Sizes()
QUICK = Sizes(single=2, batch_calls=1, batch_events=5, wide=1, wide_recipients=10, raw=200, raw_sqs=20)
PATHS = ("single", "batch", "wide")
FIFO_PATHS = ("single", "batch")  # the FIFO queue's: one job to one user, as many as the wide path makes
TRANSPORTS = ("kafka", "sqs", "fifo")


@dataclass
class _Sends:
    """The SendMessageBatch requests made (botocore's ``before-send`` hook) and the largest one's body, in bytes."""

    calls: int = 0
    largest: int = 0

    def count(self, request: Any, **_: Any) -> None:
        self.calls += 1
        self.largest = max(self.largest, len(request.body or b""))


def _event(users: list[str]) -> dict[str, Any]:
    return {
        "event_type": "new_episode",
        "payload": {
            "series_id": "s-1",
            "series_title": "Dark",
            "season": 1,
            "episode": 2,
            "watch_url": "https://example.com/watch/s-1/1/2",
        },
        "recipients": {"user_ids": users},
        "channels": ["email"],
    }


def _cpu(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(jobs, CPU seconds, wall seconds) of ``fn``."""
    cpu, wall = time.process_time(), time.perf_counter()
    jobs = fn()
    return jobs, time.process_time() - cpu, time.perf_counter() - wall


def _timed(requests: Sequence[Callable[[], int]]) -> tuple[int, float, float]:
    """(jobs, CPU seconds, wall seconds) of the requests, each timed on its own."""
    jobs, cpu, wall = 0, 0.0, 0.0
    for request in requests:
        n, c, w = _cpu(request)
        jobs, cpu, wall = jobs + n, cpu + c, wall + w
    return jobs, cpu, wall


def run(sizes: Sizes = FULL) -> dict[str, tuple[int, float, float]]:
    """(jobs, CPU s, wall s) of each path: ``single``, ``batch``, ``wide`` with Kafka, ``sqs single`` ... with the
    jobs queue, ``fifo single`` and ``fifo batch`` with a FIFO jobs queue, ``raw`` / ``raw100`` / ``sqs raw`` /
    ``fifo raw`` for the raw clients; ``event item`` and ``sqs sends <path>`` (SendMessageBatch requests, the largest
    request's bytes) carry counts in their first two places."""
    sends = _Sends()
    session = boto3._get_default_session()
    session.events.register("before-send.sqs.SendMessageBatch", sends.count, unique_id="bench-ingest-sends")
    try:
        with peers() as stack:
            from api.app import lambda_handler

            headers = {"content-type": "application/json", "x-api-key": stack.config.api_key}

            def post(path: str, body: Any) -> dict[str, Any]:
                event = http_api_event("POST", path, headers=headers, body=json.dumps(body).encode())
                result = lambda_handler(event, LambdaContext("ApiFunction"))
                assert result["statusCode"] in (202, 207), result
                return dict(json.loads(result["body"]))

            def events(users: list[str]) -> int:
                return len(post("/api/v1/events", _event(users))["job_ids"])

            def batch(c: int) -> int:
                body = {"events": [_event([f"b{c}-{i}"]) for i in range(sizes.batch_events)]}
                return sum(len(r["job_ids"]) for r in post("/api/v1/events:batch", body)["results"])

            paths: dict[str, list[Callable[[], int]]] = {
                "single": [partial(events, [f"u{i}"]) for i in range(sizes.single)],
                "batch": [partial(batch, c) for c in range(sizes.batch_calls)],
                "wide": [
                    partial(events, [f"w{c}-{i}" for i in range(sizes.wide_recipients)]) for c in range(sizes.wide)
                ],
            }
            post("/api/v1/events", _event(["warm-up"]))  # cold start and the producer's connection, not measured
            results = {name: _timed(requests) for name, requests in paths.items()}
            results["event item"] = (largest_item("EVT#"), 0.0, 0.0)
            results["raw"] = _cpu(lambda: _raw_producer(stack.bootstrap, "bench-raw", sizes.raw, sizes.raw))
            results["raw100"] = _cpu(lambda: _raw_producer(stack.bootstrap, "bench-raw", sizes.raw, 100))
            # The queues keep what the requests send (nothing drains them): moto's sends no longer cost more the
            # more a queue holds (local/moto_server.py's _QueueAttributes).
            queue_url, _ = jobs_queue(stack)
            fifo_url, _ = jobs_queue(stack, fifo=True)
            client: Any = boto3.client("sqs")
            with sqs_transport(queue_url):  # the same requests, each API container publishing to the jobs queue
                post("/api/v1/events", _event(["warm-up-sqs"]))  # a new container: its services and SQS connection
                for name, requests in paths.items():
                    sends.calls = sends.largest = 0
                    results[f"sqs {name}"] = _timed(requests)
                    results[f"sqs sends {name}"] = (sends.calls, float(sends.largest), 0.0)
            with fifo_transport(fifo_url):  # and to the FIFO queue (the same users again: other job ids)
                post("/api/v1/events", _event(["warm-up-fifo"]))
                for name in FIFO_PATHS:
                    results[f"fifo {name}"] = _timed(paths[name])
            # Every job is on its queue: none went to the delay queue instead (a refused publish is answered 202 too).
            for url, names in ((queue_url, [f"sqs {p}" for p in PATHS]), (fifo_url, [f"fifo {p}" for p in FIFO_PATHS])):
                held = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                assert int(held["Attributes"]["ApproximateNumberOfMessages"]) == 1 + sum(results[n][0] for n in names)
            for name, url in (("sqs raw", queue_url), ("fifo raw", fifo_url)):
                step = 100
                results[name] = _timed(
                    [
                        partial(_raw_sqs, client, url, min(step, sizes.raw_sqs - n))
                        for n in range(0, sizes.raw_sqs, step)
                    ]
                )
            return results
    finally:
        session.events.unregister("before-send.sqs.SendMessageBatch", unique_id="bench-ingest-sends")


def _raw_producer(bootstrap: str, topic: str, count: int, flush_every: int) -> int:
    """``count`` job-sized messages with the same producer settings and no service around them, flushed every
    ``flush_every``."""
    from kafka import KafkaProducer

    from local.infra import create_topic

    create_topic(bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, api_version=(2, 8, 0), acks="all", enable_idempotence=True, linger_ms=2
    )
    value = json.dumps({"job_id": "x" * 36, "payload": _event(["u"]), "pad": "y" * 300}).encode()
    for start in range(0, count, flush_every):
        end = min(start + flush_every, count)
        futures = [producer.send(topic, key=f"u{i}".encode(), value=value) for i in range(start, end)]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    producer.close()
    return count


def _raw_sqs(client: Any, queue_url: str, count: int) -> int:
    """``count`` job-sized messages (the raw producer's value, with the ``kind`` and ``event_id`` attributes the
    jobs carry) sent with ``SendMessageBatch`` of ten, one request after the other; to a FIFO queue each with a user
    of its own as its group and a new deduplication id, as :func:`~bench.fifo.fifo_entry` gives them."""
    body = json.dumps({"job_id": "x" * 36, "payload": _event(["u"]), "pad": "y" * 300})
    attributes = {
        "kind": {"DataType": "String", "StringValue": "job"},
        "event_id": {"DataType": "String", "StringValue": "e" * 26},
    }
    fifo = queue_url.endswith(".fifo")
    for start in range(0, count, 10):
        entries: list[dict[str, Any]] = [
            {"Id": str(i), "MessageBody": body, "MessageAttributes": attributes} for i in range(min(10, count - start))
        ]
        if fifo:
            for entry in entries:
                entry.update(MessageGroupId=f"u-{uuid.uuid4()}", MessageDeduplicationId=str(uuid.uuid4()))
        assert not client.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed")
    return count


def job_bytes() -> dict[str, int]:
    """Bytes one typical job puts on Kafka: its JSON value (as the API's producer serialises it), key and headers."""
    from datetime import UTC, datetime, timedelta

    from notify.catalog import EVENT_TYPES
    from notify.jobs import EventPlan, new_event_id
    from notify.models import Channel

    spec = EVENT_TYPES["new_episode"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        _event([])["payload"],
        ["demo-user-100"],
        [Channel.EMAIL, Channel.PUSH],
        spec.priority,
        now,
        now + timedelta(days=1),
    )
    sizes = [len(job.model_dump_json(exclude_none=True).encode()) for job in plan.jobs()]
    key = len(b"demo-user-100")
    headers = len(b"kind") + len(b"job") + len(b"schema_version") + len(b"1")
    return {"value": max(sizes), "key": key, "headers": headers, "total": max(sizes) + key + headers}


def main(quick: bool = False) -> dict[str, float]:
    """Print the run; return the per-job quantities docs/COST.md rests on (``quick``: :data:`QUICK`'s sizes)."""
    sizes = QUICK if quick else FULL
    results = run(sizes)
    print(
        "ingestion: accepted jobs per CPU-second of the API process (moto and Kafka in other processes),"
        " Transport kafka | sqs (its standard jobs queue) | fifo (a FIFO jobs queue, bench only) side by side"
    )
    raw = {
        "kafka": results["raw"][0] / results["raw"][1],
        "sqs": results["sqs raw"][0] / results["sqs raw"][1],
        "fifo": results["fifo raw"][0] / results["fifo raw"][1],
    }
    labels = {
        "raw": f"raw producer, one flush ({sizes.raw} msgs)",
        "raw100": "raw producer, a flush per 100 msgs",
        "sqs raw": f"raw SQS client, SendMessageBatch of 10 ({sizes.raw_sqs} msgs)",
        "fifo raw": f"raw SQS client, FIFO, SendMessageBatch of 10 ({sizes.raw_sqs} msgs)",
        "single": f"POST /events, 1 job each ({sizes.single})",
        "batch": f"POST /events:batch, {sizes.batch_events} events × 1 job ({sizes.batch_calls})",
        "wide": f"POST /events, {sizes.wide_recipients:,} recipients ({sizes.wide})",
    }

    def figures(name: str, base: float) -> str:
        jobs, cpu, wall = results[name]
        return f"{jobs / cpu:7,.0f} jobs/CPU-s {jobs / wall:7,.0f} jobs/s wall {jobs / cpu / base:5.0%} of raw"

    for name in ("raw", "raw100"):
        print(f"  {labels[name]:<52}kafka {figures(name, raw['kafka'])}")
    blank = " " * len(f"kafka {figures('raw', raw['kafka'])} ")  # the kafka column, empty
    print(f"  {labels['sqs raw']:<52}{blank}| sqs {figures('sqs raw', raw['sqs'])}")
    sqs_blank = " " * len(f"sqs {figures('sqs raw', raw['sqs'])} ")  # the sqs column, empty
    print(f"  {labels['fifo raw']:<52}{blank}| {sqs_blank}| fifo {figures('fifo raw', raw['fifo'])}")
    for name in PATHS:
        line = f"  {labels[name]:<52}kafka {figures(name, raw['kafka'])} | sqs {figures(f'sqs {name}', raw['sqs'])}"
        if name in FIFO_PATHS:
            line += f" | fifo {figures(f'fifo {name}', raw['fifo'])}"
        print(line)
    # Lambda bills each invocation's wall time × MemorySize (wall time here includes waiting for moto and Kafka).
    memory_gb = template().functions()["ApiFunction"].memory_size / 1024
    calls = {"single": sizes.single, "batch": sizes.batch_calls, "wide": sizes.wide}
    quantities: dict[str, float] = {}
    print(f"  per accepted job ({memory_gb:g} GB API function): invocations, GB-s from wall time (from CPU time)")
    for name in PATHS:
        line = f"    {labels[name]:<48}{calls[name] / results[name][0]:9.4f} invocations"
        for transport in TRANSPORTS:
            if transport == "fifo" and name not in FIFO_PATHS:
                continue
            jobs, cpu, wall = results[name if transport == "kafka" else f"{transport} {name}"]
            suffix = "" if transport == "kafka" else f"_{transport}"
            quantities[f"api_invocations_{name}{suffix}"] = calls[name] / jobs
            quantities[f"api_gb_s_{name}{suffix}"] = wall * memory_gb / jobs
            line += f"  {transport} {wall * memory_gb / jobs:10.6f} GB-s ({cpu * memory_gb / jobs:.6f})"
        print(line)
    item = results["event item"][0]
    print(f"  largest event item the API wrote: {item} bytes = {-(-item // 1024)} write request unit(s)")
    quantities["api_event_item_bytes"] = item
    size = job_bytes()
    quantities["kafka_bytes_per_job"] = size["total"]
    print(
        f"  bytes per job on Kafka: {size['total']} (JSON value {size['value']} + key {size['key']}"
        f" + headers {size['headers']}; record framing not counted)"
    )
    largest = max(int(results[f"sqs sends {name}"][1]) for name in PATHS)
    sends = {name: results[f"sqs sends {name}"][0] / results[f"sqs {name}"][0] for name in PATHS}
    for name in PATHS:
        quantities[f"sqs_sends_per_job_{name}"] = sends[name]
    quantities["sqs_send_request_bytes"] = largest
    print(
        "  SQS SendMessageBatch requests per job: "
        + ", ".join(f"{name} {sends[name]:.3f}" for name in PATHS)
        + f"; the largest request {largest:,} bytes = {-(-largest // 65536)} billed request(s) (64 KB chunks)"
    )
    return quantities


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

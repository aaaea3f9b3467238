"""Ingestion: accepted jobs per CPU-second of the API process, next to the raw kafka-python producer.

moto server and Kafka (Tansu) run in their own processes, so the CPU time
measured here (``time.process_time``) is the API's own work: validation,
job expansion, the DynamoDB write, producing to Kafka and waiting for acks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import arguments
from bench.peers import peers
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


FULL = Sizes()
QUICK = Sizes(single=2, batch_calls=1, batch_events=5, wide=1, wide_recipients=10, raw=200)


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


def run(sizes: Sizes = FULL) -> dict[str, tuple[int, float, float]]:
    with peers() as stack:
        from api.app import lambda_handler

        headers = {"content-type": "application/json", "x-api-key": stack.config.api_key}

        def post(path: str, body: Any) -> dict[str, Any]:
            event = http_api_event("POST", path, headers=headers, body=json.dumps(body).encode())
            result = lambda_handler(event, LambdaContext("ApiFunction"))
            assert result["statusCode"] in (202, 207), result
            return dict(json.loads(result["body"]))

        post("/api/v1/events", _event(["warm-up"]))  # cold start and the producer's connection, not measured

        def single() -> int:
            return sum(len(post("/api/v1/events", _event([f"u{i}"]))["job_ids"]) for i in range(sizes.single))

        def batch() -> int:
            jobs = 0
            for c in range(sizes.batch_calls):
                body = {"events": [_event([f"b{c}-{i}"]) for i in range(sizes.batch_events)]}
                jobs += sum(len(r["job_ids"]) for r in post("/api/v1/events:batch", body)["results"])
            return jobs

        def wide() -> int:
            return sum(
                len(post("/api/v1/events", _event([f"w{c}-{i}" for i in range(sizes.wide_recipients)]))["job_ids"])
                for c in range(sizes.wide)
            )

        results = {"single": _cpu(single), "batch": _cpu(batch), "wide": _cpu(wide)}
        results["event item"] = (largest_item("EVT#"), 0.0, 0.0)
        results["raw"] = _cpu(lambda: _raw_producer(stack.bootstrap, "bench-raw", sizes.raw, sizes.raw))
        results["raw100"] = _cpu(lambda: _raw_producer(stack.bootstrap, "bench-raw", sizes.raw, 100))
        return results


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
    raw_rate = results["raw"][0] / results["raw"][1]
    print("ingestion: accepted jobs per CPU-second of the API process (moto and Kafka in other processes)")
    labels = {
        "raw": f"raw producer, one flush ({sizes.raw} msgs)",
        "raw100": "raw producer, a flush per 100 msgs",
        "single": f"POST /events, 1 job each ({sizes.single})",
        "batch": f"POST /events:batch, {sizes.batch_events} events × 1 job ({sizes.batch_calls})",
        "wide": f"POST /events, {sizes.wide_recipients:,} recipients ({sizes.wide})",
    }
    for name in ("raw", "raw100", "single", "batch", "wide"):
        jobs, cpu, wall = results[name]
        rate = jobs / cpu
        print(
            f"  {labels[name]:<46}{rate:10,.0f} jobs/CPU-s {jobs / wall:10,.0f} jobs/s wall   "
            f"{rate / raw_rate:6.0%} of raw"
        )
    # Lambda bills each invocation's wall time × MemorySize (wall time here includes waiting for moto and Kafka).
    memory_gb = template().functions()["ApiFunction"].memory_size / 1024
    calls = {"single": sizes.single, "batch": sizes.batch_calls, "wide": sizes.wide}
    quantities: dict[str, float] = {}
    print(f"  per accepted job ({memory_gb:g} GB API function): invocations, GB-s from wall time (from CPU time)")
    for name in ("single", "batch", "wide"):
        jobs, cpu, wall = results[name]
        quantities[f"api_invocations_{name}"] = calls[name] / jobs
        quantities[f"api_gb_s_{name}"] = wall * memory_gb / jobs
        print(
            f"    {labels[name]:<44}{calls[name] / jobs:9.4f} invocations {wall * memory_gb / jobs:10.6f} GB-s"
            f" ({cpu * memory_gb / jobs:.6f})"
        )
    item = results["event item"][0]
    print(f"  largest event item the API wrote: {item} bytes = {-(-item // 1024)} write request unit(s)")
    quantities["api_event_item_bytes"] = item
    size = job_bytes()
    quantities["kafka_bytes_per_job"] = size["total"]
    print(
        f"  bytes per job on Kafka: {size['total']} (JSON value {size['value']} + key {size['key']}"
        f" + headers {size['headers']}; record framing not counted)"
    )
    return quantities


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

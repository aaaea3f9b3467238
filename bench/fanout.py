"""Fan-out: a 100,000-user segment expanded into jobs, page by page, next to the raw producer.

The segment is served by the demo Auth service over HTTP (its paging
contract, 500 users a page); each page task goes through the worker's
handler exactly as Kafka would deliver it, producing its jobs and the next
page's task to Tansu with acks=all and recording the page in moto.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import arguments
from bench.ingest import _raw_producer
from bench.peers import peers
from local.events import kafka_record, msk_event
from local.invoke import LambdaContext
from local.processes import free_port


@dataclass(frozen=True)
class Sizes:
    """``make bench``'s sizes by default, :data:`QUICK`'s with ``--quick``."""

    users: int = 100_000  # in the segment
    raw: int = 20_000  # messages from the raw producer


FULL = Sizes()
QUICK = Sizes(users=1_000, raw=500)


AUTH_SERVER = """
import sys, threading
from local.auth_service import AuthService
service = AuthService(int(sys.argv[1]), users=int(sys.argv[2]))
service.start()
print("ready", flush=True)
threading.Event().wait()
"""


def run(sizes: Sizes = FULL) -> dict[str, Any]:
    with peers() as stack:
        # The Auth service runs in its own process here, so its CPU is not counted as the worker's.
        port = free_port()
        auth = subprocess.Popen(
            [sys.executable, "-c", AUTH_SERVER, str(port), str(sizes.users)], stdout=subprocess.PIPE, text=True
        )
        assert auth.stdout is not None and auth.stdout.readline().strip() == "ready"
        os.environ["AUTH_API_URL"] = f"http://127.0.0.1:{port}"
        try:
            return _measure(stack, sizes.users, sizes.raw)
        finally:
            auth.terminate()
            auth.wait(10)


def _measure(stack: Any, users: int, raw: int) -> dict[str, Any]:
    from api.context import services as api_services
    from notify.models import EventRequest
    from worker.app import kafka_processor
    from worker.app import lambda_handler as worker

    from local.infra import create_topic

    accepted = api_services().ingest.accept(
        EventRequest.model_validate(
            {
                "event_type": "new_film",
                "payload": {
                    "film_id": "f",
                    "title": "Dune",
                    "release_date": "2026-12-01",
                    "watch_url": "https://example.com/f",
                },
                "recipients": {"segment_id": "all"},
                "channels": ["email"],
            }
        )
    )
    create_topic(stack.bootstrap, "bench-fanout-tasks")
    expected = -(-users // int(os.environ["FANOUT_PAGE_SIZE"]))  # the Auth service's last page names no next
    pages = 0
    cpu = wall = 0.0
    while pages < expected:
        task = _next_task(stack.bootstrap, accepted.event_id, pages)
        if task is None:
            raise RuntimeError(f"the fan-out stopped after {pages} of {expected} pages")
        event = msk_event([kafka_record("notification-jobs", 0, pages, json.dumps(task).encode())], stack.bootstrap)
        _pause(True)  # the harness's own consumer must not run while the worker is measured
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        outcome = worker(event, LambdaContext("WorkerFunction", 120))
        cpu += time.process_time() - started_cpu
        wall += time.perf_counter() - started_wall
        _pause(False)
        assert outcome == {"batchItemFailures": []} and kafka_processor.outcomes == {"fanned_out": 1}, outcome
        pages += 1
    summary = api_services().status.event(accepted.event_id)
    jobs = int(summary["recipients"])
    raw_cpu, raw_wall = time.process_time(), time.perf_counter()
    raw_jobs = _raw_producer(stack.bootstrap, "bench-raw", raw, 500)
    raw_cpu, raw_wall = time.process_time() - raw_cpu, time.perf_counter() - raw_wall
    return {"pages": pages, "jobs": jobs, "cpu": cpu, "wall": wall, "raw": (raw_jobs, raw_cpu, raw_wall)}


_consumer: Any = None


def _tasks(bootstrap: str, event_id: str) -> list[dict[str, Any]]:
    """Every fan-out task of the event on the topic so far (page tasks are few: one per 500 users)."""
    from kafka import KafkaConsumer, TopicPartition

    global _consumer
    if _consumer is None:
        _consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
        parts = [TopicPartition("notification-jobs", p) for p in _consumer.partitions_for_topic("notification-jobs")]
        _consumer.assign(parts)
        _consumer.seek_to_beginning(*parts)
        _consumer._found = []
    batch = _consumer.poll(timeout_ms=500, max_records=100_000)
    for records in batch.values():
        for r in records:
            if b'"kind":"fanout"' in r.value and event_id.encode() in r.value:
                _consumer._found.append(json.loads(r.value))
    return list(_consumer._found)


def _pause(paused: bool) -> None:
    if _consumer is not None:
        parts = list(_consumer.assignment())
        _consumer.pause(*parts) if paused else _consumer.resume(*parts)


def _next_task(bootstrap: str, event_id: str, page: int) -> Any:
    for _ in range(20):
        found = [t for t in _tasks(bootstrap, event_id) if t["page"] == page]
        if found:
            return found[0]
    return None


def main(quick: bool = False) -> None:
    """Print the run (``quick``: :data:`QUICK`'s sizes)."""
    sizes = QUICK if quick else FULL
    r = run(sizes)
    raw_rate = r["raw"][0] / r["raw"][1]
    rate = r["jobs"] / r["cpu"]
    print(f"fan-out: a {sizes.users:,}-user segment from the Auth service's paging, {r['pages']} pages of 500")
    print(f"  raw producer (a flush per 500 msgs)  {raw_rate:10,.0f} jobs/CPU-s")
    print(
        f"  fan-out through the worker           {rate:10,.0f} jobs/CPU-s  {rate / raw_rate:5.0%} of raw;"
        f" {r['jobs']:,} jobs in {r['wall']:.1f} s of worker time ({r['jobs'] / r['wall']:,.0f} jobs/s)"
    )


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

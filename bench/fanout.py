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
from typing import Any

from bench.ingest import _raw_producer
from bench.peers import peers
from local.events import kafka_record, msk_event
from local.invoke import LambdaContext
from local.processes import free_port

USERS = 100_000


AUTH_SERVER = """
import sys, threading
from local.auth_service import AuthService
service = AuthService(int(sys.argv[1]), users=int(sys.argv[2]))
service.start()
print("ready", flush=True)
threading.Event().wait()
"""


def run() -> dict[str, Any]:
    with peers() as stack:
        # The Auth service runs in its own process here, so its CPU is not counted as the worker's.
        port = free_port()
        auth = subprocess.Popen(
            [sys.executable, "-c", AUTH_SERVER, str(port), str(USERS)], stdout=subprocess.PIPE, text=True
        )
        assert auth.stdout is not None and auth.stdout.readline().strip() == "ready"
        os.environ["AUTH_API_URL"] = f"http://127.0.0.1:{port}"
        try:
            return _measure(stack)
        finally:
            auth.terminate()
            auth.wait(10)


def _measure(stack: Any) -> dict[str, Any]:
    if True:
        from api.context import services as api_services
        from notify.models import EventRequest
        from worker.app import kafka_processor
        from worker.app import lambda_handler as worker

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
        from local.infra import create_topic

        create_topic(stack.bootstrap, "bench-fanout-tasks")
        task = _first_task(stack.bootstrap, stack.config, accepted.event_id)
        pages = 0
        cpu = wall = 0.0
        while task is not None:
            event = msk_event([kafka_record("notification-jobs", 0, pages, json.dumps(task).encode())], stack.bootstrap)
            _pause(True)  # the harness's own consumer must not run while the worker is measured
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            outcome = worker(event, LambdaContext("WorkerFunction", 120))
            cpu += time.process_time() - started_cpu
            wall += time.perf_counter() - started_wall
            _pause(False)
            assert outcome == {"batchItemFailures": []} and kafka_processor.outcomes == {"fanned_out": 1}, outcome
            pages += 1
            task = _next_task(stack.bootstrap, accepted.event_id, pages)
        summary = api_services().status.event(accepted.event_id)
        jobs = int(summary["recipients"])
        raw_jobs, raw_cpu, raw_wall = (
            lambda c, w: (
                _raw_producer(stack.bootstrap, "bench-raw", 500),
                time.process_time() - c,
                time.perf_counter() - w,
            )
        )(time.process_time(), time.perf_counter())
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


def _first_task(bootstrap: str, config: Any, event_id: str) -> dict[str, Any]:
    return next(t for t in _tasks(bootstrap, event_id) if t["page"] == 0)


def _next_task(bootstrap: str, event_id: str, page: int) -> Any:
    for _ in range(20):
        found = [t for t in _tasks(bootstrap, event_id) if t["page"] == page]
        if found:
            return found[0]
    return None


def main() -> None:
    r = run()
    raw_rate = r["raw"][0] / r["raw"][1]
    rate = r["jobs"] / r["cpu"]
    print(f"fan-out: a {USERS:,}-user segment from the Auth service's paging, {r['pages']} pages of 500")
    print(f"  raw producer (a flush per 500 msgs)  {raw_rate:10,.0f} jobs/CPU-s")
    print(
        f"  fan-out through the worker           {rate:10,.0f} jobs/CPU-s  {rate / raw_rate:5.0%} of raw;"
        f" {r['jobs']:,} jobs in {r['wall']:.1f} s of worker time ({r['jobs'] / r['wall']:,.0f} jobs/s)"
    )


if __name__ == "__main__":
    main()

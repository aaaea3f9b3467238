"""Ingestion with Kafka down: the latency of ``POST /api/v1/events`` with Kafka up, then with the broker stopped.

moto server and Tansu run in their own processes; the API's handler runs here, one request at a time, with the
template's ``KAFKA_TIMEOUT_SECONDS``. With Kafka up a request waits for Kafka's acknowledgement; once Tansu is
stopped the first request waits for Kafka until the timeout and opens the publisher's circuit, and the rest go
straight to the delay queue. Tansu is then started again and requests go on until one reaches Kafka: how long
the circuit took to close.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import arguments
from bench.peers import peers
from local.events import http_api_event
from local.invoke import LambdaContext
from local.stack import LocalStack

COUNT = 300
EVENT = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/confirm/bench"},
    "recipients": {"user_ids": ["demo-user-1"]},
}


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * len(ordered)) - 1)]


def _end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of the topic's partitions' end offsets: it grows with each record Kafka takes."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 8, 0), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def run(count: int) -> dict[str, Any]:
    with peers() as stack:
        from api.app import lambda_handler

        # The circuit's warning and the fallback's go with the handlers' output (.bench/handlers.log).
        notify_log = logging.getLogger("notify")
        handler = logging.StreamHandler(sys.stdout)
        notify_log.addHandler(handler)
        try:
            return _measure(stack, lambda_handler, count)
        finally:
            notify_log.removeHandler(handler)


def _measure(stack: LocalStack, lambda_handler: Callable[..., dict[str, Any]], count: int) -> dict[str, Any]:
    assert stack.kafka is not None
    headers = {"content-type": "application/json", "x-api-key": stack.config.api_key}
    env = stack.environments["ApiFunction"]

    def post() -> float:
        started = time.perf_counter()
        event = http_api_event("POST", "/api/v1/events", headers=headers, body=json.dumps(EVENT).encode())
        result = lambda_handler(event, LambdaContext("ApiFunction"))
        elapsed = (time.perf_counter() - started) * 1000
        assert result["statusCode"] == 202, result
        return elapsed

    post()  # cold start and the producer's connection, not measured
    up = [post() for _ in range(count)]
    stack.kafka.stop(timeout=1.0)
    first = post()
    down = [post() for _ in range(count)]
    stack.kafka.start()
    back = time.perf_counter()
    ends = _end_offsets(stack.bootstrap, env["KAFKA_TOPIC"])
    after: list[float] = []
    while _end_offsets(stack.bootstrap, env["KAFKA_TOPIC"]) == ends:
        if time.perf_counter() - back > 120:
            raise RuntimeError("no publish reached Kafka within 2 minutes of its restart")
        after.append(post())
    return {
        "timeout": float(env["KAFKA_TIMEOUT_SECONDS"]),
        "up": up,
        "first": first,
        "down": down,
        "recovered_s": time.perf_counter() - back,
        "requests_until_recovered": len(after),
    }


def main(quick: bool = False) -> dict[str, float]:
    """Print p50 and p99 with Kafka up and down, the first request's wait and the recovery (``quick``: 3 each)."""
    count = 3 if quick else COUNT
    results = run(count)
    up, down = _percentiles(results["up"]), _percentiles(results["down"])
    print(
        f"ingestion with Kafka down: POST /api/v1/events, 1 job, {count} one at a time each way "
        f"(KAFKA_TIMEOUT_SECONDS {results['timeout']:g})"
    )
    print(f"  Kafka up                          p50 {up[0]:8.1f} ms   p99 {up[1]:8.1f} ms")
    print(f"  Kafka stopped, first request          {results['first']:8.1f} ms   (waits for Kafka, opens the circuit)")
    print(f"  Kafka stopped, the {count} after it     p50 {down[0]:8.1f} ms   p99 {down[1]:8.1f} ms")
    print(
        f"  Kafka started again: a publish reached it after {results['recovered_s']:.1f} s "
        f"({results['requests_until_recovered']} requests to the delay queue meanwhile)"
    )
    return {"kafka_down_p50_ms": down[0], "kafka_down_p99_ms": down[1]}


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

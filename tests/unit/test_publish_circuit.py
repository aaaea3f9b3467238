"""The jobs topic's circuit breaker: after a failure no publish waits for Kafka, probes run in the background."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pytest
from notify.errors import IngestUnavailable, TransientError
from notify.models import Message
from notify.ports import JobPublisher
from notify.publish_circuit import CircuitPublisher
from notify.resilience import CircuitOpen
from notify.services.ingest import publish_durably

from .fakes import MemoryPublisher, MemoryQueue

JOBS: list[Message] = []  # what is published does not matter here: how many calls reach the topic does


@dataclass
class CountingPublisher:
    """The topic: counts the publishes that reach it."""

    fail: bool = False
    calls: int = 0

    def publish(self, jobs: Sequence[Message]) -> None:
        self.calls += 1
        if self.fail:
            raise TransientError("Kafka did not acknowledge the jobs: KafkaTimeoutError")


@dataclass
class Harness:
    """A circuit with a hand-moved clock; probes are queued, not run, until the test runs them."""

    topic: CountingPublisher = field(default_factory=CountingPublisher)
    now: float = 1000.0
    down: bool = True  # what the probe finds
    probes: list[Callable[[], None]] = field(default_factory=list)
    probed: int = 0
    unavailable: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.circuit = CircuitPublisher(
            self.topic,
            self.probe,
            probe_every=5.0,
            probe_stale_after=60.0,
            unavailable=self.unavailable.append,
            monotonic=lambda: self.now,
            start=self.probes.append,
        )

    def probe(self) -> None:
        self.probed += 1
        if self.down:
            raise TransientError("Kafka unreachable: KafkaTimeoutError")

    def run_probes(self) -> None:
        while self.probes:
            self.probes.pop(0)()

    def trip(self, circuit: Optional[CircuitPublisher] = None) -> None:
        """The topic fails, and so does a publish through ``circuit`` (the harness's by default): that opens it."""
        self.topic.fail = True
        with pytest.raises(TransientError):
            (circuit or self.circuit).publish(JOBS)

    def refused(self, after: float = 0.0, circuit: Optional[CircuitPublisher] = None) -> None:
        """``after`` seconds on, a publish through ``circuit`` (the harness's by default) is refused: CircuitOpen."""
        self.now += after
        with pytest.raises(CircuitOpen):
            (circuit or self.circuit).publish(JOBS)


_check: JobPublisher = CircuitPublisher(MemoryPublisher(), lambda: None)


def test_a_failure_opens_the_circuit_and_later_publishes_never_reach_the_topic() -> None:
    h = Harness()
    h.circuit.publish(JOBS)
    assert (h.topic.calls, h.circuit.state) == (1, "closed")
    h.topic.fail = True
    with pytest.raises(TransientError) as first:
        h.circuit.publish(JOBS)
    assert not isinstance(first.value, CircuitOpen)  # the failure itself is the topic's
    assert h.circuit.state == "open"
    for _ in range(100):
        h.now += 0.01
        with pytest.raises(CircuitOpen, match="Kafka is unreachable"):
            h.circuit.publish(JOBS)
    assert h.topic.calls == 2  # the first publish and the one that failed: none of the 100 waited for Kafka


def test_a_probe_is_started_at_most_every_probe_every_seconds_and_one_at_a_time() -> None:
    h = Harness()
    h.trip()
    h.refused(after=4.9)
    assert h.probes == []  # the failure was just now: no probe yet
    h.now += 0.1
    for _ in range(3):
        h.refused()
    assert len(h.probes) == 1  # due, started once, and the publishes did not run it
    h.refused(after=30)  # the probe has not finished (a frozen container, a slow broker): no second one
    assert len(h.probes) == 1
    h.run_probes()  # it fails 30 s later; the next is due 5 s after it ended
    assert (h.probed, h.circuit.state) == (1, "open")
    h.refused(after=4.9)
    assert h.probes == []
    h.refused(after=0.1)
    assert len(h.probes) == 1
    assert h.topic.calls == 1


def test_a_probe_that_never_ends_stops_blocking_the_next_after_the_stale_limit() -> None:
    h = Harness()
    h.trip()
    h.refused(after=5)
    lost = h.probes.pop()
    h.refused(after=59.9)
    assert h.probes == []
    h.refused(after=0.1)
    assert len(h.probes) == 1
    h.down = False
    lost()  # the lost one ends after all: its success counts, it started after the circuit opened
    assert h.circuit.state == "closed"


def test_a_successful_probe_closes_the_circuit_and_publishes_go_to_the_topic_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="notify.publish_circuit")
    h = Harness()
    h.trip()
    for _ in range(20):  # 20 publishes over 10 s: a probe is due at +5 s and at +10 s
        h.refused(after=0.5)
        if h.probes and h.now < 1007:
            h.run_probes()  # the first finds Kafka still down
    h.down = h.topic.fail = False
    h.run_probes()
    assert (h.probed, h.circuit.state) == (2, "closed")
    h.circuit.publish(JOBS)
    assert h.topic.calls == 2
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert [level for level, _ in records] == ["WARNING", "INFO"]  # one when it opened, one when it closed
    assert "20 publishes went around it" in records[1][1]
    assert h.unavailable == [0] * 21  # every publish that did not reach Kafka counted its messages (none here)


def test_a_probe_older_than_the_failure_that_reopened_the_circuit_does_not_close_it() -> None:
    h = Harness()
    h.trip()
    h.refused(after=5)
    slow = h.probes.pop()
    h.down = False
    h.now += 1
    h.run_probes()
    # A second probe closes it, Kafka fails again at once, and then the first, slow probe succeeds.
    h.refused(after=60)
    h.run_probes()
    assert h.circuit.state == "closed"
    h.now += 1
    with pytest.raises(TransientError):
        h.circuit.publish(JOBS)
    slow()
    assert h.circuit.state == "open"


def test_a_probe_that_raises_anything_leaves_the_circuit_open() -> None:
    h = Harness()

    def broken() -> None:
        raise RuntimeError("a bug in the probe")

    circuit = CircuitPublisher(h.topic, broken, monotonic=lambda: h.now, start=h.probes.append)
    h.trip(circuit)
    h.refused(after=5, circuit=circuit)
    h.run_probes()
    assert circuit.state == "open"


def test_publish_durably_parks_in_the_delay_queue_at_once_while_open_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness()
    queue = MemoryQueue()
    h.topic.fail = True
    for _ in range(10):
        publish_durably(h.circuit, queue, JOBS)
    assert (h.topic.calls, len([r for r in caplog.records if r.levelno >= logging.WARNING])) == (1, 2)
    # 2: the circuit opening, and publish_durably's own for the failure that opened it; none for the 9 after


def test_both_down_is_still_ingest_unavailable_without_waiting_for_kafka() -> None:
    h = Harness()
    h.topic.fail = True
    queue = MemoryQueue(fail=True)
    with pytest.raises(IngestUnavailable, match="delay queue: queue down"):
        publish_durably(h.circuit, queue, JOBS)
    with pytest.raises(IngestUnavailable, match=r"transport: Kafka is unreachable \(circuit open"):
        publish_durably(h.circuit, queue, JOBS)
    assert h.topic.calls == 1


def test_a_probe_that_cannot_be_started_does_not_fail_the_publish_and_is_tried_again() -> None:
    h = Harness()
    starts: list[int] = []

    def no_thread(probe: Callable[[], None]) -> None:
        starts.append(1)
        if len(starts) == 1:
            raise RuntimeError("can't start new thread")
        h.probes.append(probe)

    circuit = CircuitPublisher(h.topic, h.probe, monotonic=lambda: h.now, start=no_thread)
    h.trip(circuit)
    h.refused(after=5, circuit=circuit)
    h.refused(circuit=circuit)
    assert (len(starts), len(h.probes)) == (2, 1)

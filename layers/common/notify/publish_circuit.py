"""A circuit breaker around the jobs topic: while it is known to be down, publishes fail at once.

Without it every publish during a Kafka outage waits ``KAFKA_TIMEOUT_SECONDS`` for a broker that cannot answer
before :func:`notify.services.ingest.publish_durably` parks the jobs in the delay queue. With it, the first
failure opens the circuit; later publishes raise :class:`~notify.resilience.CircuitOpen` without calling the
topic, so they cost the delay queue's latency only. The topic is probed again in the background, and the circuit
closes when a probe succeeds.

Lambda runs a container's threads only while it handles an invocation, and a SnapStart snapshot must hold no
thread. So nothing starts at init and nothing runs on a timer: a publish that finds the circuit open starts one
probe thread when the last probe is older than ``probe_every`` seconds (and none is running), and never waits
for it. A probe frozen with its container resumes with the next invocation; one that has not finished after
``probe_stale_after`` seconds no longer blocks the next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Optional

from notify.errors import TransientError
from notify.models import Message
from notify.ports import JobPublisher
from notify.resilience import CircuitOpen

log = logging.getLogger(__name__)


def start_daemon(target: Callable[[], None]) -> None:
    """Run ``target`` on a daemon thread of its own (a probe: nothing waits for it)."""
    threading.Thread(target=target, name="publisher-probe", daemon=True).start()


class CircuitPublisher:
    """A :class:`~notify.ports.JobPublisher` that stops calling ``inner`` after a failure until ``probe`` succeeds.

    ``probe`` checks that the topic answers (cheaply, publishing nothing) and raises if it does not. ``unavailable``
    is told how many messages each publish that did not reach the topic held (the one that failed, and every
    one refused while the circuit is open): a metric. ``monotonic`` and ``start`` (how a probe is run) are
    injected so the schedule is tested without threads or waiting.
    """

    def __init__(
        self,
        inner: JobPublisher,
        probe: Callable[[], None],
        *,
        name: str = "Kafka",
        probe_every: float = 5.0,
        probe_stale_after: float = 60.0,
        unavailable: Optional[Callable[[int], None]] = None,
        monotonic: Callable[[], float] = time.monotonic,
        start: Callable[[Callable[[], None]], None] = start_daemon,
    ) -> None:
        self.name = name
        self._inner = inner
        self._probe = probe
        self._every = probe_every
        self._stale = probe_stale_after
        self._unavailable = unavailable
        self._now = monotonic
        self._start = start
        self._lock = threading.Lock()
        self._opened_at: Optional[float] = None
        self._last_probe = 0.0  # when the last probe started, or the last one failed
        self._probing: Optional[float] = None  # when the running probe started
        self._generation = 0  # which probe is the running one
        self._refused = 0  # publishes refused since the circuit opened
        self._reason = ""

    @property
    def state(self) -> str:
        """``closed`` (publishes go to the topic) or ``open`` (they fail at once while probes run)."""
        return "closed" if self._opened_at is None else "open"

    def publish(self, jobs: Sequence[Message]) -> None:
        """Publish through ``inner`` while closed; raise :class:`CircuitOpen` at once while open (starting a probe
        when one is due). A :class:`TransientError` from ``inner`` opens the circuit and is raised as it is."""
        probe: Optional[Callable[[], None]] = None
        reason = ""
        with self._lock:
            opened_at = self._opened_at
            if opened_at is not None:
                self._refused += 1
                probe = self._due_probe()
                reason = self._reason
        if opened_at is not None:
            if probe is not None:
                self._start_probe(probe)
            self._count(len(jobs))
            open_for = self._now() - opened_at
            raise CircuitOpen(f"{self.name} is unreachable (circuit open for {open_for:.0f} s): {reason}")
        try:
            self._inner.publish(jobs)
        except TransientError as exc:
            self._count(len(jobs))
            self._trip(exc)
            raise

    def _due_probe(self) -> Optional[Callable[[], None]]:
        """The probe to start now, if one is due (under the lock)."""
        now = self._now()
        if self._probing is not None and now - self._probing < self._stale:
            return None
        if now - self._last_probe < self._every:
            return None
        self._generation += 1
        self._probing = self._last_probe = now
        generation = self._generation
        return lambda: self._run_probe(generation, now)

    def _start_probe(self, probe: Callable[[], None]) -> None:
        try:
            self._start(probe)
        except Exception:  # noqa: BLE001 - no thread to be had (say): the publish still goes to the delay queue
            log.warning("%s probe could not be started; the next publish tries again", self.name, exc_info=True)
            with self._lock:
                self._probing = None
                self._last_probe = 0.0

    def _run_probe(self, generation: int, started: float) -> None:
        try:
            self._probe()
        except Exception as exc:  # noqa: BLE001 - on a thread of its own: any failure means "still down"
            with self._lock:
                if generation == self._generation:
                    self._probing = None
                    self._last_probe = self._now()  # the next one waits probe_every after this one ended
            log.debug("%s probe failed; the circuit stays open: %s", self.name, exc)
            return
        with self._lock:
            if generation == self._generation:
                self._probing = None
            # A probe that started before the failure that opened the circuit proves nothing about it.
            if self._opened_at is None or started < self._opened_at:
                return
            down_for = self._now() - self._opened_at
            refused, self._refused = self._refused, 0
            self._opened_at = None
        log.info(
            "%s answers again: circuit closed after %.1f s; %d publishes went around it meanwhile",
            self.name,
            down_for,
            refused,
            extra={"circuit": self.name, "state": "closed", "open_seconds": round(down_for, 3), "refused": refused},
        )

    def _trip(self, exc: TransientError) -> None:
        with self._lock:
            if self._opened_at is not None:
                return
            self._opened_at = self._last_probe = self._now()
            self._refused = 0
            self._reason = str(exc)
        log.warning(
            "%s publish failed: circuit open, publishes go around it until a probe (every %g s) finds it: %s",
            self.name,
            self._every,
            exc,
            extra={"circuit": self.name, "state": "open"},
        )

    def _count(self, messages: int) -> None:
        if self._unavailable is not None:
            self._unavailable(messages)

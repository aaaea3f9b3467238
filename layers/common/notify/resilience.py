"""A circuit breaker and a small TTL cache, with injected time."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Optional, TypeVar

from notify.errors import TransientError

V = TypeVar("V")


class CircuitOpen(TransientError):
    """The dependency failed repeatedly; calls are refused until the cool-down ends."""


class CircuitBreaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after ``reset_seconds``."""

    def __init__(
        self,
        name: str,
        threshold: int = 5,
        reset_seconds: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = threshold
        self._reset = reset_seconds
        self._now = monotonic
        self._failures = 0
        self._opened_at: Optional[float] = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """The circuit's state: "closed", "open" (calls refused), or "half-open" once ``reset_seconds`` have passed."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._now() - self._opened_at >= self._reset else "open"

    def before(self) -> None:
        """Raise :class:`CircuitOpen` while the circuit is open."""
        if self.state == "open":
            raise CircuitOpen(f"{self.name} circuit is open after {self._failures} consecutive failures")

    def success(self) -> None:
        """Record a call that worked: the failure count restarts and the circuit closes."""
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def failure(self) -> None:
        """Record a failed call; the ``threshold``-th in a row opens the circuit, and one while half-open reopens it."""
        with self._lock:
            self._failures += 1
            if self._failures >= self._threshold:
                self._opened_at = self._now()


class TtlCache(Generic[V]):
    """A bounded least-recently-used cache whose entries expire."""

    def __init__(
        self, ttl_seconds: float, max_items: int = 10_000, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_items
        self._now = monotonic
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[V]:
        """The value stored under ``key``, or None if there is none or it is older than the TTL (then it is dropped)."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if self._now() - hit[0] > self._ttl:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: V) -> None:
        """Store ``value`` as of now, evicting the least recently used entries beyond ``max_items``."""
        with self._lock:
            self._items[key] = (self._now(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def update(self, key: str, change: Callable[[V], V]) -> None:
        """Replace a live entry's value with ``change(value)``, keeping its age: a write of this container's own,
        applied to what it read, is trusted no longer than the read. Nothing when there is no live entry."""
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and self._now() - hit[0] <= self._ttl:
                self._items[key] = (hit[0], change(hit[1]))

    def pop(self, key: str) -> None:
        """Forget ``key`` (after a write, so this container reads the new value next)."""
        with self._lock:
            self._items.pop(key, None)

"""Retry policy: capped exponential backoff with full jitter, per priority."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from notify.models import Priority

MAX_SQS_DELAY = 900


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a job is tried.

    ``max_attempts`` in all; before attempt n + 1, a random wait of up to ``base_seconds * 2**n``, at most
    ``cap_seconds``.
    """

    base_seconds: float
    cap_seconds: float
    max_attempts: int

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> int:
        """Seconds to wait before attempt ``attempt + 1`` (full jitter, at least one second)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2**attempt))
        return max(1, int(ceiling * rand()))

    def exhausted(self, attempt: int) -> bool:
        """True when ``attempt`` (0-based) was the last one allowed."""
        return attempt + 1 >= self.max_attempts


DEFAULT_POLICIES: dict[Priority, RetryPolicy] = {
    Priority.HIGH: RetryPolicy(base_seconds=5, cap_seconds=300, max_attempts=8),
    Priority.NORMAL: RetryPolicy(base_seconds=15, cap_seconds=900, max_attempts=6),
    Priority.LOW: RetryPolicy(base_seconds=60, cap_seconds=3600, max_attempts=5),
}

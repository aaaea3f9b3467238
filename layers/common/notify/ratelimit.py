"""A send-rate limit: a token bucket shared by the delivery threads of one container.

SES caps an account's sends per second (its "maximum send rate", account- and region-specific); going over it
answers ``Throttling`` and costs a retry. The worker wraps its email sender in :class:`RateLimitedEmailSender`
so one container stays under ``SES_MAX_SEND_RATE``. The limit is per container: the account sees the rate times
the number of concurrent worker containers (see docs/WORKER.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Optional, ParamSpec, TypeVar

from notify.errors import TransientError
from notify.ports import EmailSender

P = ParamSpec("P")
R = TypeVar("R")


class RateLimited(TransientError):
    """No send slot within the longest wait allowed: nothing was sent, the job retries later."""


class TokenBucket:
    """``rate`` tokens a second, up to ``burst`` saved; thread-safe, with an injected clock and sleep.

    :meth:`acquire` reserves the next token and sleeps (outside the lock) until it is due, so waiting threads
    are served in the order they asked, at exactly ``rate`` a second. It never waits longer than ``max_wait``
    seconds: when the next free token is further away it takes nothing and raises :class:`RateLimited`.
    """

    def __init__(
        self,
        rate: float,
        burst: Optional[float] = None,
        *,
        max_wait: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
            if wait > self.max_wait:
                raise RateLimited(f"send rate {self.rate:g}/s reached; no slot within {self.max_wait:g} s")
            self._tokens -= 1  # may go negative: the threads behind this one wait for later tokens
        if wait > 0:
            self._sleep(wait)
        return wait


def metered(send: Callable[P, R], bucket: TokenBucket) -> Callable[P, R]:
    """``send`` with the same parameters, taking a token from ``bucket`` first (waiting for it; RateLimited, and
    nothing sent, if none is due within ``max_wait``)."""

    def take_a_token_then_send(*args: P.args, **kwargs: P.kwargs) -> R:
        bucket.acquire()
        return send(*args, **kwargs)

    return take_a_token_then_send


class RateLimitedEmailSender:
    """An :class:`~notify.ports.EmailSender` that takes a token from ``bucket`` before each send: its
    ``send_email`` is ``sender``'s, metered, so the port's signature is written once (in the port)."""

    def __init__(self, sender: EmailSender, bucket: TokenBucket) -> None:
        self.send_email = metered(sender.send_email, bucket)

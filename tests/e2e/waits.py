"""How the end-to-end tests wait: for a condition, polled, with a ceiling that a loaded machine may use in full and
a fast one never waits out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float, every: float = 0.5) -> T:
    """``read()`` again until ``done`` holds for what it returned; that value. AssertionError, with the last one,
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s; last seen: {value!r}")
        time.sleep(every)

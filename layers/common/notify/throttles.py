"""Throttles (issue 23): at most ``limit`` notifications of a category on a channel per ``period_seconds``, per user.

Pure: the rule as ``PUT /api/v1/throttle-rules/{category}`` takes it, and the counter's arithmetic; the worker
wires them in. Account notifications are never throttled.

**A fixed window anchored at the first admitted send**, not a sliding one. The window opens at a send that finds
no open window and lasts ``period_seconds``; it admits ``limit`` sends, refuses the rest (refused jobs do not
count), and the first send after it ends opens the next. Its state is two numbers (and the last few jobs it
admitted, below), so it fits one attribute of the user's item that the worker already reads, whatever the limit
(writing it takes the place of the job's SENDING write, docs/WORKER.md#throttles). A sliding log would keep up to
``limit`` (10,000) timestamps on that item (its size, so every read and write of it, would grow with the limit), and a
sliding-window estimate from two counters is approximate. The cost of the choice: sends at the end of one window
and the start of the next can come closer together than the period, up to ``2 × limit`` in a short span. For a
limit of 1 (the common "at most one a day") the anchored window is exact: two admitted sends are always at least
``period_seconds`` apart.

**Storage**: one top-level attribute per (category, channel) on the user's item, named by :func:`attribute_name`
(``throttle#marketing#email``), holding :meth:`ThrottleWindow.as_item` (``{"s": start in Unix seconds, "n":
count, "j": the jobs admitted last}``). A top-level attribute rather than a ``throttles`` map: DynamoDB cannot
``SET`` a key of a map the item does not have yet, and the first throttled send would need a second write to create
it. The worker's write is a conditional ``UpdateItem`` on the state it read (``attribute_not_exists``, or ``s`` and
``n`` unchanged: an admission always changes one of them), so two workers cannot both take a window's last slot.
Reading the state costs nothing (it comes with the preferences read every non-account job makes); the write replaces
the job's SENDING write for an admitted first attempt, and there is none where no rule applies (docs/WORKER.md).

**A job counts once, and its count is its send's mark.** The counter keeps the ids of the last
:data:`MAX_TRACKED` jobs it admitted (``j``, carried over from window to window), and :func:`admit` given one of
them again admits it without counting it. The worker counts a send right before the provider call, in place of the
job's ``SENDING`` entry (docs/WORKER.md#throttles): a job that finds itself among the admitted ones reached its
provider call before (a worker stopped after the write), so it is not sent again. That keeps a throttled send at
the three writes of any send. (The worker does not count retries at all: docs/WORKER.md.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from pydantic import Field

from notify.models import Category, Channel, Strict

MAX_LIMIT = 10_000
MIN_PERIOD_SECONDS = 60
MAX_PERIOD_SECONDS = 30 * 24 * 3600
ATTRIBUTE_PREFIX = "throttle#"
# How many of the jobs a counter admitted last it remembers (each id 36 bytes on the user's item): a job run again
# after a worker stopped is found among them unless more than this many other sends of its user, category and
# channel were admitted meanwhile (a minute or two: the claim's lease). Limits up to this are exact.
MAX_TRACKED = 10


def throttle_category(value: str) -> Category:
    """The category named ``value``, or a ValueError when it is unknown or ``account`` (the API answers 422)."""
    try:
        category = Category(value)
    except ValueError:
        known = ", ".join(c.value for c in Category if c is not Category.ACCOUNT)
        raise ValueError(f"unknown category {value!r}; categories that take a throttle: {known}") from None
    if category is Category.ACCOUNT:
        raise ValueError("account notifications (sign-up, password reset) are never throttled")
    return category


class ThrottleRule(Strict):
    """Body of ``PUT /api/v1/throttle-rules/{category}``: at most ``limit`` per ``period_seconds`` on ``channel``."""

    channel: Channel = Field(examples=["email"])
    limit: int = Field(ge=1, le=MAX_LIMIT, examples=[1])
    period_seconds: int = Field(ge=MIN_PERIOD_SECONDS, le=MAX_PERIOD_SECONDS, examples=[86400])


def attribute_name(category: Category | str, channel: Channel | str) -> str:
    """The user-item attribute that holds the counter of ``category`` on ``channel``."""
    return f"{ATTRIBUTE_PREFIX}{Category(category).value}#{Channel(channel).value}"


@dataclass(frozen=True)
class ThrottleWindow:
    """An open (or ended) window: when its first send was (aware, whole seconds), how many it admitted, and the last
    :data:`MAX_TRACKED` jobs the counter admitted, oldest first (in this window or before)."""

    started_at: datetime
    count: int
    jobs: tuple[str, ...] = ()

    @property
    def last_job(self) -> Optional[str]:
        """The job admitted last, if known."""
        return self.jobs[-1] if self.jobs else None

    def ends_at(self, rule: ThrottleRule) -> datetime:
        """The first instant the window no longer covers: it covers [started_at, started_at + period)."""
        return self.started_at + timedelta(seconds=rule.period_seconds)

    def as_item(self) -> dict[str, Any]:
        """The attribute's value: ``{"s": start in Unix seconds, "n": count}``, and ``"j"``: the jobs, if known."""
        item: dict[str, Any] = {"s": int(self.started_at.timestamp()), "n": self.count}
        if self.jobs:
            item["j"] = list(self.jobs)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ThrottleWindow:
        """The window an attribute holds (DynamoDB's numbers come back as Decimals; an older counter kept one job as
        a string)."""
        kept = item.get("j")
        jobs = (str(kept),) if isinstance(kept, str) else tuple(str(j) for j in kept or ())
        return cls(datetime.fromtimestamp(int(item["s"]), UTC), int(item["n"]), jobs)


def admit(
    state: Optional[ThrottleWindow], rule: ThrottleRule, now: datetime, job_id: Optional[str] = None
) -> tuple[bool, ThrottleWindow]:
    """Whether a send at ``now`` (aware) is within the rule, and the counter's state after it.

    A counter that admitted ``job_id`` already (one of its last :data:`MAX_TRACKED`) admits it again without
    counting it, and is returned as is (nothing to store). Otherwise: no window, or one that has ended (``now`` at or
    past its end): a new one opens at ``now`` (to the second) with this send. An open window below the limit counts
    the send; one at the limit refuses it and is returned as is. An admitted ``job_id`` joins the jobs remembered.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if job_id is not None and state is not None and job_id in state.jobs:
        return True, state
    known = state.jobs if state is not None else ()
    jobs = (*known, job_id)[-MAX_TRACKED:] if job_id is not None else known
    if state is None or now >= state.ends_at(rule):
        return True, ThrottleWindow(now.astimezone(UTC).replace(microsecond=0), 1, jobs)
    if state.count < rule.limit:
        return True, ThrottleWindow(state.started_at, state.count + 1, jobs)
    return False, state


@dataclass(frozen=True)
class CategoryThrottle:
    """A stored rule: at most ``rule.limit`` notifications of ``category`` on ``rule.channel`` per period."""

    category: Category
    rule: ThrottleRule
    updated_at: str

    def view(self) -> dict[str, Any]:
        """The public JSON shape (``GET /api/v1/throttle-rules``)."""
        return {"category": self.category.value, **self.rule.model_dump(mode="json"), "updated_at": self.updated_at}

"""Throttles (issue 23): at most ``limit`` notifications of a category on a channel per ``period_seconds``, per user.

Pure: the rule as ``PUT /api/v1/throttle-rules/{category}`` takes it, and the counter's arithmetic; the worker
wires them in. Account notifications are never throttled.

**A fixed window anchored at the first admitted send**, not a sliding one. The window opens at a send that finds
no open window and lasts ``period_seconds``; it admits ``limit`` sends, refuses the rest (refused jobs do not
count), and the first send after it ends opens the next. Its state is two numbers, so it fits one attribute of the
user's item that the worker already reads, whatever the limit (writing it is one more write per send under a rule:
the worker otherwise writes that item at most once a day, docs/WORKER.md#throttles). A sliding log would keep up to
``limit`` (10,000) timestamps on that item (its size, so every read and write of it, would grow with the limit), and a
sliding-window estimate from two counters is approximate. The cost of the choice: sends at the end of one window
and the start of the next can come closer together than the period, up to ``2 × limit`` in a short span. For a
limit of 1 (the common "at most one a day") the anchored window is exact: two admitted sends are always at least
``period_seconds`` apart.

**Storage**: one top-level attribute per (category, channel) on the user's item, named by :func:`attribute_name`
(``throttle#marketing#email``), holding :meth:`ThrottleWindow.as_item` (``{"s": start in Unix seconds, "n":
count, "j": the job last admitted}``). A top-level attribute rather than a ``throttles`` map: DynamoDB cannot
``SET`` a key of a map the item does not have yet, and the first throttled send would need a second write to create
it. The worker's write is a conditional ``UpdateItem`` on the state it read (``attribute_not_exists``, or ``s`` and
``n`` unchanged: an admission always changes one of them), so two workers cannot both take a window's last slot.
Reading the state costs nothing (it comes with the preferences read every non-account job makes); the write is one
more per admitted send of a throttled category and channel, and none where no rule applies (docs/WORKER.md).

**A job counts once.** The window keeps the id of the job it last admitted, and :func:`admit` given that id again
while the window is open admits it without counting it: a worker that stopped after the write and before the send
runs the same job again without using a second slot. (The worker does not count retries at all: docs/WORKER.md.)
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
    """An open (or ended) window: when its first send was (aware, whole seconds), how many it admitted, and the job
    it admitted last (None where no job id was given)."""

    started_at: datetime
    count: int
    last_job: Optional[str] = None

    def ends_at(self, rule: ThrottleRule) -> datetime:
        """The first instant the window no longer covers: it covers [started_at, started_at + period)."""
        return self.started_at + timedelta(seconds=rule.period_seconds)

    def as_item(self) -> dict[str, int | str]:
        """The attribute's value: ``{"s": start in Unix seconds, "n": count}``, and ``"j"``: the last job, if known."""
        item: dict[str, int | str] = {"s": int(self.started_at.timestamp()), "n": self.count}
        if self.last_job is not None:
            item["j"] = self.last_job
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ThrottleWindow:
        """The window an attribute holds (DynamoDB's numbers come back as Decimals)."""
        last = item.get("j")
        return cls(datetime.fromtimestamp(int(item["s"]), UTC), int(item["n"]), str(last) if last else None)


def admit(
    state: Optional[ThrottleWindow], rule: ThrottleRule, now: datetime, job_id: Optional[str] = None
) -> tuple[bool, ThrottleWindow]:
    """Whether a send at ``now`` (aware) is within the rule, and the window's state after it.

    No window, or one that has ended (``now`` at or past its end): a new one opens at ``now`` (to the second) with
    this send. An open window below the limit counts the send; one at the limit refuses it and is returned as is.
    ``job_id``, the job the send is for, is kept as the window's last; an open window whose last job it already is
    admits it again without counting it, and is returned as is (nothing to store).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if state is None or now >= state.ends_at(rule):
        return True, ThrottleWindow(now.astimezone(UTC).replace(microsecond=0), 1, job_id)
    if job_id is not None and state.last_job == job_id:
        return True, state
    if state.count < rule.limit:
        return True, ThrottleWindow(state.started_at, state.count + 1, job_id)
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

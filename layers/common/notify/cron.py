"""Cron schedules in a time zone: the one reading of a cron across the service, for campaigns and digests alike.

- A cron has the 5 fields ``minute hour day-of-month month day-of-week``, read by croniter, and must match some date.
- A time zone is an IANA name (``Europe/Berlin``); the cron runs on that zone's wall clock and its fire times are
  returned in UTC.
- DST (docs/CAMPAIGN.md, "Cron and time zones"): a fire time in a skipped local hour fires at the first valid time
  after the gap, croniter's rule (``30 2 * * *`` in Europe/Berlin on 29 March 2026 fires at 03:00 local, 01:00 UTC;
  ``15 2 * * *`` on Lord Howe Island, whose clocks move 30 minutes, at 02:30), so the day still gets its fire time;
  a fire time in a repeated local hour fires once, on its first pass (``30 1 * * *`` in America/New_York on
  1 November 2026 fires at 01:30 EDT, not again at 01:30 EST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter


def check_cron(value: str) -> str:
    """``value`` if it is a 5-field cron that fires on some date; else ValueError saying which rule it breaks.

    A pydantic validator as it is: the message is the 422's reason.
    """
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression (5 fields: minute hour day month weekday)")
    if len(value.split()) != 5:
        raise ValueError("use the 5-field form: minute hour day-of-month month day-of-week")
    try:
        croniter(value, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{value!r} never fires (no date matches it, such as February 31)") from None
    return value


def check_timezone(value: str) -> str:
    """``value`` if it is an IANA time zone name; else ValueError (a pydantic validator as it is)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (for example Europe/Berlin)") from None
    return value


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (aware), in UTC.

    A fire time in a skipped local hour comes at the first valid time after the gap. A repeated local time fires
    once: from its first pass, the next fire time is the cron's next one after the repeated hour, never the same
    wall-clock time's second pass.
    """
    zone = ZoneInfo(timezone)
    local_after = after.astimezone(zone)
    it = croniter(cron, local_after)
    candidate: datetime = it.get_next(datetime)
    while candidate.replace(tzinfo=None) == local_after.replace(tzinfo=None) or candidate <= local_after:
        candidate = it.get_next(datetime)  # the second occurrence of a wall-clock time on a DST fall-back
    return candidate.astimezone(UTC)


def latest_fire(cron: str, timezone: str, at_or_before: datetime) -> datetime:
    """The last fire time at or before ``at_or_before``, in UTC (the coalesced run of missed ones).

    A fire time in a skipped local hour is at the first valid time after the gap, as :func:`next_fire` has it.
    Inside a repeated local hour croniter's answer depends on where ``at_or_before`` falls (the first pass, the
    second, or the day before's): take it as a bound beside the fire time expected, as the campaign scheduler does
    (``max(next_run_at, latest_fire(...))``), not as a run of its own.
    """
    zone = ZoneInfo(timezone)
    moment = at_or_before.astimezone(zone)
    it = croniter(cron, moment + timedelta(seconds=1))
    fire: datetime = it.get_prev(datetime)
    return fire.astimezone(UTC)


def next_fires(cron: str, timezone: str, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``after``, in UTC: :func:`next_fire` applied in a chain."""
    out: list[datetime] = []
    moment = after
    for _ in range(count):
        moment = next_fire(cron, timezone, moment)
        out.append(moment)
    return out

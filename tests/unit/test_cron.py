"""The cron rule campaigns and digests share (notify.cron): validation, fire times in a zone, DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from notify.cron import check_cron, check_timezone, latest_fire, next_fire, next_fires

T0 = datetime(2026, 11, 24, 8, 59, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("61 * * * *", "not a valid cron expression"),
        ("0 9 * *", "not a valid cron expression"),
        ("0 0 9 * * *", "5-field form"),
        ("0 9 31 2 *", "never fires"),
    ],
)
def test_a_cron_that_is_not_5_fields_or_never_fires_is_refused_saying_why(cron: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_cron(cron)


def test_a_good_cron_and_an_iana_zone_are_returned_as_given_and_any_other_zone_is_refused() -> None:
    assert check_cron("0 9 * * 1") == "0 9 * * 1"
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    for zone in ("Mars/Olympus", "+02:00", "", "../etc/passwd"):
        with pytest.raises(ValueError, match="not an IANA time zone"):
            check_timezone(zone)


def test_timezones_and_dst_edges() -> None:
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert next_fire("0 9 * * *", "Europe/Berlin", T0) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert next_fire("0 9 * * *", "Europe/Berlin", datetime(2026, 7, 1, tzinfo=UTC)) == datetime(
        2026, 7, 1, 7, 0, tzinfo=UTC
    )
    # Spring forward: 02:30 does not exist in Berlin on 29 March 2026; it fires at 03:00 local (01:00 UTC).
    spring = next_fire("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert spring == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # Fall back: 01:30 happens twice in New York on 1 November 2026; it fires once, then the next day.
    first = next_fire("30 1 * * *", "America/New_York", datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_fire("30 1 * * *", "America/New_York", first) == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    assert latest_fire("0 9 * * 1", "UTC", datetime(2026, 11, 26, tzinfo=UTC)) == datetime(
        2026, 11, 23, 9, 0, tzinfo=UTC
    )
    assert [t.hour for t in next_fires("0 */6 * * *", "UTC", T0, 3)] == [12, 18, 0]

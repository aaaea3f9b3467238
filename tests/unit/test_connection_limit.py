"""At most N live connections per user: $connect closes the oldest beyond N, and every read of a user's connections
(the worker's frames, the API's counts) reads at most N records. In-memory ports; the management API's 410 for a
connection still in its handshake is played by the fake poster's ``gone`` set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from notify.catalog import EVENT_TYPES
from notify.clock import iso
from notify.errors import StoreUnavailable, TransientError
from notify.jobs import EventPlan, new_event_id
from notify.models import Channel, NotificationJob
from notify.records import Connection, RenderedMessage
from notify.services.inbox import HANDSHAKE_GRACE, Connected, InboxService
from notify.settings import InAppSettings, SettingsError, load

from .fakes import MemoryConnections, MemoryInboxStore, MemoryPoster

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
ENV = {"INBOX_TABLE": "inbox", "CONNECTIONS_TABLE": "connections"}


class World:
    def __init__(self, limit: int, poster: bool = True) -> None:
        self.now = T0
        self.connections = MemoryConnections()
        self.poster = MemoryPoster()
        self.inbox = MemoryInboxStore()
        self.service = InboxService(
            self.inbox, self.connections, self.poster if poster else None, lambda: self.now, max_connections=limit
        )

    def connect(self, connection_id: str, user: str = "u1") -> Connected:
        """A connect one second after the previous one."""
        self.now += timedelta(seconds=1)
        return self.service.connect(user, connection_id)

    def record(self, connection_id: str, ago: timedelta, user: str = "u1") -> None:
        """A record written earlier (an established connection, or one whose $disconnect was lost)."""
        at = self.now - ago
        self.connections.add(Connection(connection_id, user, iso(at), iso(at + timedelta(hours=2))))

    def ids(self, user: str = "u1") -> set[str]:
        return {c.connection_id for c in self.connections.connections.values() if c.user_id == user}


def test_the_connect_past_the_limit_closes_the_oldest_and_keeps_the_rest() -> None:
    world = World(limit=3)
    for n in (1, 2, 3):
        assert world.connect(f"c{n}").closed == ()
    world.connect("theirs", user="u2")
    connected = world.connect("c4")
    assert connected.connection.connection_id == "c4"
    assert connected.closed == ("c1",) and connected.gone == () and connected.kept == {}
    assert world.poster.closed == ["c1"]
    # Told first, so that its client does not reconnect and push out the newer one in turn.
    assert world.poster.frames("c1") == [{"type": "closed", "reason": "connection_limit"}]
    assert world.poster.frames("c4") == [] and world.poster.frames("c2") == []
    assert world.ids() == {"c2", "c3", "c4"} and world.ids("u2") == {"theirs"}
    assert world.connections.reads[-1] == ("u1", 3 + 50)  # the limit and the margin for racing connects


def test_a_partition_over_the_limit_is_brought_back_to_it_oldest_first() -> None:
    # Records from before the limit existed, or left by connects that failed to trim.
    world = World(limit=2)
    for n, minutes in enumerate((50, 40, 30, 20, 10)):
        world.record(f"old{n}", timedelta(minutes=minutes))
    connected = world.connect("new")
    assert connected.closed == ("old0", "old1", "old2", "old3")
    assert world.ids() == {"old4", "new"}


def test_the_limit_of_one_keeps_only_the_new_connection() -> None:
    world = World(limit=1)
    world.connect("first")
    assert world.connect("second").closed == ("first",)
    assert world.ids() == {"second"}


def test_expired_records_are_forgotten_without_a_close_and_do_not_count() -> None:
    world = World(limit=2)
    world.record("expired", timedelta(hours=3))  # API Gateway closed it an hour ago; TTL has not deleted it
    world.record("live", timedelta(minutes=5))
    connected = world.connect("new")
    assert connected.closed == () and connected.gone == ("expired",)
    assert world.poster.closed == [] and world.ids() == {"live", "new"}


def test_a_connection_closed_already_is_forgotten_and_one_still_opening_is_kept() -> None:
    world = World(limit=1)
    world.record("closed", timedelta(minutes=10))  # its $disconnect was lost: API Gateway answers 410
    world.poster.gone.add("closed")
    assert world.connect("c1").gone == ("closed",)
    # A connect racing this one: its record is there, its handshake is not complete, so a close answers 410.
    world.record("opening", timedelta(seconds=0))
    world.poster.gone.add("opening")
    connected = world.connect("c2")
    assert connected.closed == ("c1",) and "handshake" in connected.kept["opening"]
    assert world.ids() == {"opening", "c2"}  # one over the limit, until the next connect
    world.poster.gone.discard("opening")
    world.now += HANDSHAKE_GRACE
    assert set(world.connect("c3").closed) == {"opening", "c2"}
    assert world.ids() == {"c3"}


def test_a_close_that_fails_keeps_the_record_for_the_next_connect() -> None:
    world = World(limit=1)
    world.connect("c1")
    world.poster.errors["c1"] = TransientError("LimitExceededException")
    connected = world.connect("c2")
    assert connected.closed == () and connected.kept == {"c1": "LimitExceededException"}
    assert world.ids() == {"c1", "c2"}
    del world.poster.errors["c1"]
    assert set(world.connect("c3").closed) == {"c1", "c2"}
    assert world.ids() == {"c3"}


class UnreadableConnections(MemoryConnections):
    def records_of(self, user_id: str, limit: int) -> list[Connection]:
        raise StoreUnavailable("DynamoDB throttled the read")


def test_a_read_that_fails_after_the_connection_is_recorded_does_not_refuse_it() -> None:
    world = World(limit=1)
    world.connections = UnreadableConnections()
    world.service = InboxService(world.inbox, world.connections, world.poster, lambda: world.now, max_connections=1)
    world.record("older", timedelta(minutes=1))
    connected = world.connect("new")
    assert connected.closed == () and "throttled" in connected.kept["*"]
    assert world.ids() == {"older", "new"}


def test_without_a_management_api_the_oldest_are_only_forgotten() -> None:
    world = World(limit=1, poster=False)
    world.connect("c1")
    assert world.connect("c2").closed == ("c1",)
    assert world.ids() == {"c2"} and world.poster.closed == []


class RacingConnections(MemoryConnections):
    """A store whose next read of ``u1``'s records lets another connect run in full, before or after the read."""

    race: Callable[[], object] | None = None
    race_first = True

    def records_of(self, user_id: str, limit: int) -> list[Connection]:
        race, self.race = self.race, None
        if race is not None and self.race_first:
            race()
        found = super().records_of(user_id, limit)
        if race is not None and not self.race_first:
            race()
        return found


@pytest.mark.parametrize("race_first", [True, False], ids=["other-reads-first", "other-reads-after"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_two_connects_at_once_leave_at_most_one_over_the_limit_and_the_next_connect_trims(
    limit: int, race_first: bool
) -> None:
    world = World(limit=limit)
    racing = RacingConnections()
    world.connections = racing
    world.service = InboxService(world.inbox, racing, world.poster, lambda: world.now, max_connections=limit)
    for n in range(limit):
        world.record(f"old{n}", timedelta(minutes=10 - n))
    # Both handshakes are in progress while the other's $connect runs: a close of either answers 410.
    world.poster.gone.update({"a", "b"})
    racing.race_first = race_first
    racing.race = lambda: world.service.connect("u1", "b")
    world.service.connect("u1", "a")
    assert {"a", "b"} <= world.ids()  # neither new connection closed the other
    assert len(world.ids()) <= limit + 1
    world.poster.gone.difference_update({"a", "b"})  # both handshakes complete
    world.now += timedelta(minutes=1)
    world.connect("next")
    assert len(world.ids()) == limit and "next" in world.ids()


def _job(user: str = "u1") -> NotificationJob:
    spec = EVENT_TYPES["review_liked"]
    plan = EventPlan(
        new_event_id(), spec, spec.sample_payload(), [user], [Channel.WEBSOCKET], spec.priority, T0, T0 + spec.ttl
    )
    return plan.jobs()[0]


def test_a_user_with_a_flood_of_records_is_read_and_posted_to_at_most_the_limit() -> None:
    world = World(limit=4)
    for n in range(60):
        world.record(f"stale{n:02}", timedelta(minutes=30))
    job = _job()
    delivery = world.service.deliver(job, RenderedMessage("tpl", 1, "en", title="t", body="b"))
    assert len(delivery.reached) == 4 and world.connections.reads == [("u1", 4)]
    world.service.push_counts("u1")
    assert world.connections.reads[-1] == ("u1", 4)
    assert len(world.poster.posted) == 8


def test_the_limit_is_a_setting_from_1_to_100_defaulting_to_10() -> None:
    assert load(InAppSettings, ENV).max_connections_per_user == 10
    assert load(InAppSettings, {**ENV, "MAX_CONNECTIONS_PER_USER": "2"}).max_connections_per_user == 2
    for bad in ("0", "101", "ten"):
        with pytest.raises(SettingsError, match="MAX_CONNECTIONS_PER_USER"):
            load(InAppSettings, {**ENV, "MAX_CONNECTIONS_PER_USER": bad})
    with pytest.raises(ValueError):
        InboxService(MemoryInboxStore(), MemoryConnections(), None, lambda: T0, max_connections=0)

"""The in-app channel with in-memory ports: stored once, pushed once, 410s forgotten, frames cut to fit, counts
pushed after every change; and the user tokens that open a socket and an inbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

import pytest
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.catalog import EVENT_TYPES
from notify.clock import iso
from notify.errors import NotFound, StoreUnavailable, TransientError, ValidationFailed
from notify.jobs import EventPlan, new_event_id
from notify.limits import FRAME_BYTES
from notify.models import Category, Channel, Contact, Message, NotificationJob, Status, WebhookTask
from notify.records import (
    Connection,
    InboxAction,
    InboxCounts,
    InboxFilter,
    InboxItem,
    UserPreferences,
    UserProfile,
    WebhookEndpoint,
)
from notify.services.delivery import Outcome
from notify.services.inbox import InboxService
from notify.services.webhook_emitter import WebhookEmitter
from notify.signing import BadToken, Signer
from notify.throttles import CategoryThrottle, ThrottleRule, attribute_name
from notify.unsubscribe import UnsubscribeLinks
from notify.usertokens import UserTokens
from notify.webhooks import message_id

from .fakes import (
    DeliveryWorld,
    MemoryConnections,
    MemoryInboxStore,
    MemoryPoster,
    MemoryPreferences,
    MemoryQueue,
    MemoryThrottleRules,
    MemoryWebhookStore,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class World(DeliveryWorld):
    preferences: MemoryPreferences
    in_app: InboxService

    def __init__(self) -> None:
        users = {"u1": UserProfile("u1", email="u1@example.com", first_name="Ada", locale="en")}
        super().__init__(T0, users)
        self.preferences = MemoryPreferences()
        self.inbox = MemoryInboxStore()
        self.connections = MemoryConnections()
        self.poster = MemoryPoster()
        self.in_app = InboxService(self.inbox, self.connections, self.poster, lambda: self.now)
        self.wire()

    def job(self, event_type: str = "review_liked", user: str = "u1", **changes: Any) -> NotificationJob:
        spec = EVENT_TYPES[event_type]
        plan = EventPlan(
            new_event_id(), spec, spec.sample_payload(), [user], [Channel.WEBSOCKET], spec.priority, T0, T0 + spec.ttl
        )
        return plan.jobs()[0].model_copy(update=changes)

    def connect(self, connection_id: str, user: str = "u1", ago: timedelta = timedelta(minutes=1)) -> None:
        at = self.now - ago
        self.connections.add(Connection(connection_id, user, iso(at), iso(at + timedelta(hours=2))))

    def sent_detail(self, job: NotificationJob) -> dict[str, Any]:
        last = self.store.jobs[job.job_id]["history"][-1]
        assert last.status is Status.SENT
        return dict(last.detail)


@pytest.fixture
def world() -> World:
    return World()


def test_a_websocket_job_is_stored_once_and_sent_with_the_connections_it_reached(world: World) -> None:
    world.connect("c1", ago=timedelta(minutes=5))
    world.connect("c2")
    world.connect("elsewhere", user="u2")
    job = world.job()
    assert world.service.handle(job) is Outcome.SENT
    (item,) = world.inbox.of("u1")
    assert item.job_id == job.job_id and item.event_type == "review_liked" and item.title and item.body
    assert item.data == job.payload and item.read_at is None
    detail = world.sent_detail(job)
    assert detail["inbox_item_id"] == item.id and detail["connections_reached"] == 2
    assert detail["provider_message_id"] == item.id and "inbox_item_existed" not in detail
    assert [c for c, _ in world.poster.posted] == ["c2", "c1"]  # newest first
    frame = world.poster.frames("c1")[0]
    assert frame == {
        "type": "notification",
        "item": item.document(),
        "counts": {"type": "counts", "unseen": 1, "unread": 1, "total": 1},
    }
    assert world.store.statuses(job.job_id) == [Status.PROCESSING, Status.SENDING, Status.SENT]

    assert world.service.handle(job) is Outcome.DUPLICATE  # a redelivered copy
    assert len(world.inbox.of("u1")) == 1 and len(world.poster.posted) == 2


def test_a_worker_that_stopped_after_pushing_neither_stores_nor_pushes_again(world: World) -> None:
    world.connect("c1")
    world.store.crash_on = Status.SENT  # stored and pushed, then the worker stopped
    job = world.job()
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)  # stored and pushed, but SENT was never recorded
    assert len(world.inbox.of("u1")) == 1 and len(world.poster.posted) == 1

    world.now = T0 + timedelta(minutes=5)  # the claim's lease has run out: the next copy finds it ABANDONED
    assert world.service.handle(job) is Outcome.SENT
    assert len(world.inbox.of("u1")) == 1 and len(world.poster.posted) == 1
    detail = world.sent_detail(job)
    assert detail["inbox_item_existed"] is True and detail["connections_reached"] == 0
    assert detail["inbox_item_id"] == world.inbox.of("u1")[0].id
    assert world.dlq.letters == []


def test_an_in_app_job_run_again_after_a_worker_stopped_is_not_throttled_again(world: World) -> None:
    rule = ThrottleRule(channel=Channel.WEBSOCKET, limit=2, period_seconds=86400)
    world.throttles = MemoryThrottleRules()
    world.throttles.put(CategoryThrottle(Category.SOCIAL, rule, "2026-11-24T00:00:00Z"))
    world.wire()
    world.connect("c1")
    world.store.crash_on = Status.SENT
    job = world.job()
    with pytest.raises(StoreUnavailable):
        world.service.handle(job)  # counted, stored and pushed, but SENT was never recorded
    assert world.service.handle(world.job()) is Outcome.SENT  # another job takes the window's last slot

    world.now = T0 + timedelta(minutes=5)  # the first job's lease has run out: its next copy finds it ABANDONED
    assert world.service.handle(job) is Outcome.SENT  # counted when it first ran: not throttled, not counted again
    assert world.sent_detail(job)["inbox_item_existed"] is True
    assert world.preferences.items["u1"].throttles[attribute_name(Category.SOCIAL, Channel.WEBSOCKET)].count == 2


def test_a_gone_connection_is_forgotten_and_is_not_an_error(world: World) -> None:
    world.connect("live")
    world.connect("closed", ago=timedelta(minutes=2))
    world.connect("flaky", ago=timedelta(minutes=3))
    world.poster.gone.add("closed")
    world.poster.errors["flaky"] = TransientError("throttled")
    job = world.job()
    assert world.service.handle(job) is Outcome.SENT
    detail = world.sent_detail(job)
    assert detail["connections_reached"] == 1 and detail["connections_gone"] == 1
    assert detail["connections_failed"] == {"flaky": "throttled"}
    assert set(world.connections.connections) == {"live", "flaky"}  # a failure is not a 410: kept
    assert world.dlq.letters == [] and len(world.inbox.of("u1")) == 1


def test_a_410_from_a_connection_still_opening_does_not_forget_it(world: World) -> None:
    # $connect records the connection before API Gateway completes the handshake; until then a post gets 410.
    world.connect("opening", ago=timedelta(seconds=2))
    world.poster.gone.add("opening")
    job = world.job()
    assert world.service.handle(job) is Outcome.SENT
    detail = world.sent_detail(job)
    assert detail["connections_reached"] == 0 and "connections_gone" not in detail
    assert "handshake" in detail["connections_failed"]["opening"]
    assert set(world.connections.connections) == {"opening"}  # kept: its frames will reach it once it is open
    world.poster.gone.clear()
    world.in_app.push_counts("u1")
    assert world.poster.frames("opening") == [{"type": "counts", "unseen": 1, "unread": 1, "total": 1}]


def test_a_job_naming_another_users_connection_is_never_posted_there(world: World) -> None:
    world.connect("mine")
    world.connect("theirs", user="u2")
    job = world.job(contact=Contact(connection_id="theirs"))
    assert world.service.handle(job) is Outcome.SENT
    assert world.poster.posted == [] and world.sent_detail(job)["connections_reached"] == 0
    named = world.job(contact=Contact(connection_id="mine"))
    assert world.service.handle(named) is Outcome.SENT
    assert [c for c, _ in world.poster.posted] == ["mine"]


def test_a_user_with_no_connection_still_gets_the_item_and_no_letter(world: World) -> None:
    world.connect("old", ago=timedelta(hours=3))  # past API Gateway's 2 hours: not live
    job = world.job("new_episode")
    assert world.service.handle(job) is Outcome.SENT
    assert world.sent_detail(job)["connections_reached"] == 0
    assert world.poster.posted == [] and world.dlq.letters == []
    (item,) = world.inbox.of("u1")
    assert world.in_app.counts("u1") == InboxCounts(unseen=1, unread=1, total=1)
    assert world.in_app.page("u1", InboxFilter.UNREAD, 10, None).items == [item]


def test_a_frame_too_big_for_api_gateway_goes_out_truncated(world: World) -> None:
    world.connect("c1")
    big = world.job(payload={**EVENT_TYPES["review_liked"].sample_payload(), "comment": "é" * 40_000})
    assert world.service.handle(big) is Outcome.SENT
    ((_, data),) = world.poster.posted
    assert len(data) <= FRAME_BYTES
    frame = json.loads(data)
    item = world.inbox.of("u1")[0]
    assert frame["item"] == {**item.document(), "body": None, "data": {}, "truncated": True}
    assert frame["counts"]["unread"] == 1
    assert item.data["comment"] == "é" * 40_000  # the inbox keeps it whole

    normal = world.job()
    assert world.service.handle(normal) is Outcome.SENT
    frame = world.poster.frames()[-1]
    assert "truncated" not in frame["item"] and frame["item"]["body"] and frame["item"]["data"] == normal.payload
    assert frame["counts"] == {"type": "counts", "unseen": 2, "unread": 2, "total": 2}


def test_a_user_who_turned_websocket_off_is_skipped(world: World) -> None:
    world.connect("c1")
    world.preferences.put(UserPreferences("u1", channels={"websocket": False}))
    job = world.job()
    assert world.service.handle(job) is Outcome.SKIPPED
    last = world.store.jobs[job.job_id]["history"][-1]
    assert last.status is Status.SKIPPED
    assert last.detail == {"reason": "opted_out", "category": Category.SOCIAL.value}
    assert world.inbox.items == {} and world.poster.posted == []


def test_every_change_pushes_fresh_counts_to_each_live_connection(world: World) -> None:
    for job in (world.job(), world.job(), world.job("new_episode")):
        world.service.handle(job)
    world.connect("c1")
    world.connect("c2", ago=timedelta(minutes=2))
    world.connect("expired", ago=timedelta(hours=2, seconds=1))
    world.connect("theirs", user="u2")
    first = world.inbox.of("u1")[0]

    item, counts = world.in_app.mark("u1", first.id, InboxAction.READ)
    assert item.read_at == iso(T0) and counts == InboxCounts(unseen=2, unread=2, total=3)
    frame = {"type": "counts", "unseen": 2, "unread": 2, "total": 3}
    assert world.poster.frames("c1") == [frame] and world.poster.frames("c2") == [frame]
    assert world.poster.frames("expired") == [] and world.poster.frames("theirs") == []

    world.poster.gone.add("c2")
    changed, counts = world.in_app.read_all("u1")
    assert changed == 2 and counts == InboxCounts(unseen=0, unread=0, total=3)
    assert world.poster.frames("c1")[-1] == {"type": "counts", "unseen": 0, "unread": 0, "total": 3}
    assert "c2" not in world.connections.connections  # its 410 removed it

    _, counts = world.in_app.mark("u1", first.id, InboxAction.ARCHIVE)
    assert counts.total == 2 and world.poster.frames("c1")[-1]["total"] == 2
    pushed = len(world.poster.posted)
    with pytest.raises(NotFound):
        world.in_app.mark("u1", "f" * 32, InboxAction.READ)
    with pytest.raises(NotFound):
        world.in_app.mark("u2", first.id, InboxAction.READ)  # another user's item is nobody's
    assert len(world.poster.posted) == pushed


def test_connect_records_two_hours_and_disconnect_forgets(world: World) -> None:
    connection = world.in_app.connect("u1", "abc=").connection
    assert connection.expires_at == iso(T0 + timedelta(hours=2))
    assert world.connections.user_of("abc=") == "u1"
    world.in_app.disconnect("abc=")
    assert world.connections.of_user("u1", T0, 10) == []


# -- user tokens ---------------------------------------------------------------------


def test_a_user_token_names_its_user_until_it_expires() -> None:
    tokens = UserTokens(lambda: "key one" * 5)
    token, expires = tokens.issue("demo-user-5", T0)
    assert expires == T0 + timedelta(hours=1)
    assert tokens.verify(token, T0) == "demo-user-5"
    assert tokens.verify(token, expires - timedelta(seconds=1)) == "demo-user-5"
    with pytest.raises(BadToken):
        tokens.verify(token, expires)
    _, capped = tokens.issue("demo-user-5", T0, ttl=timedelta(days=7))
    assert capped == T0 + timedelta(hours=24)


def test_a_forged_or_altered_user_token_is_refused() -> None:
    token, _ = UserTokens(lambda: "key one" * 5).issue("u1", T0)
    with pytest.raises(BadToken):
        UserTokens(lambda: "someone else's key" * 2).verify(token, T0)
    body, _, signature = token.partition(".")
    other, _ = UserTokens(lambda: "key one" * 5).issue("u2", T0)
    for altered in (other.partition(".")[0] + "." + signature, body + "." + signature[::-1], body, "", "x" * 5000):
        with pytest.raises(BadToken):
            UserTokens(lambda: "key one" * 5).verify(altered, T0)


def test_a_rotated_key_keeps_the_tokens_already_issued_valid() -> None:
    old_token, _ = UserTokens(lambda: "old key" * 5).issue("u1", T0)
    rotated = UserTokens(lambda: f"{'new key' * 5},{'old key' * 5}")
    assert rotated.verify(old_token, T0) == "u1"
    new_token, _ = rotated.issue("u1", T0)
    assert UserTokens(lambda: "new key" * 5).verify(new_token, T0) == "u1"  # signed under the first key
    with pytest.raises(BadToken):
        UserTokens(lambda: "old key" * 5).verify(new_token, T0)


def test_a_cursor_or_an_unsubscribe_token_is_not_a_user_token() -> None:
    key = "shared key" * 4
    exp = int((T0 + timedelta(hours=1)).timestamp())
    payload = {"v": 1, "u": "u1", "exp": exp}
    tokens = UserTokens(lambda: key)
    assert tokens.verify(Signer(lambda: key, "user").sign(payload), T0) == "u1"  # the shape a user token has
    for purpose in ("cursor", "unsubscribe"):
        with pytest.raises(BadToken):
            tokens.verify(Signer(lambda: key, purpose).sign(payload), T0)
    link = UnsubscribeLinks(lambda: key, "https://x.io").link("u1", Category.SOCIAL, Channel.WEBSOCKET)
    with pytest.raises(BadToken):
        tokens.verify(link.rsplit("/", 1)[1], T0)
    cursor = CursorCodec(lambda: key).encode({"user_id": {"S": "u1"}, "item_id": {"S": "f" * 32}})
    assert cursor is not None
    with pytest.raises(BadToken):
        tokens.verify(cursor, T0)
    user_token, _ = tokens.issue("u1", T0)
    with pytest.raises(ValidationFailed):
        CursorCodec(lambda: key).decode(user_token)  # nor the other way round
    for nobody in ({"v": 1, "u": "", "exp": exp}, {"v": 2, "u": "u1", "exp": exp}, {"v": 1, "u": "u1"}):
        with pytest.raises(BadToken):
            tokens.verify(Signer(lambda: key, "user").sign(nobody), T0)


# -- status webhooks: inbox.read -----------------------------------------------------------------------------------


class Reads:
    """An inbox whose first reads are emitted to one endpoint subscribed to inbox.read (and one that is not)."""

    def __init__(self) -> None:
        self.inbox = MemoryInboxStore()
        self.queue = MemoryQueue()
        endpoints = MemoryWebhookStore()
        for webhook_id, events in (("wh_reads", ("inbox.read",)), ("wh_sends", ("notification.sent",))):
            endpoints.put(WebhookEndpoint(webhook_id, "https://hooks.example.com/", events, ("whsec_x",), "t", "t"))
        emitter = WebhookEmitter(endpoints, self.queue, lambda: T0)
        self.service = InboxService(self.inbox, MemoryConnections(), None, lambda: T0, webhooks=emitter)

    def item(self, n: int, read_at: Optional[str] = None, archived_at: Optional[str] = None) -> InboxItem:
        item = InboxItem(
            id=f"{n:032x}",
            user_id="u1",
            job_id=f"job-{n}",
            event_type="review_liked",
            created_at=iso(T0),
            expires_at=iso(T0 + timedelta(days=1)),
            read_at=read_at,
            archived_at=archived_at,
        )
        self.inbox.put(item)
        return item

    def emitted(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(endpoint, message id, data) of each message queued, emptying the queue."""
        tasks = [t for t, _ in self.queue.sent if isinstance(t, WebhookTask)]
        self.queue.sent.clear()
        return [(t.webhook_id, t.message_id, t.data) for t in tasks]


def test_an_items_first_read_emits_inbox_read_with_the_jobs_identifiers_and_a_second_read_nothing() -> None:
    reads = Reads()
    item = reads.item(1)
    reads.service.mark("u1", item.id, InboxAction.SEEN)
    assert reads.emitted() == []
    reads.service.mark("u1", item.id, InboxAction.READ)
    data = {"job_id": "job-1", "event_type": "review_liked", "user_id": "u1", "channel": "websocket"}
    assert reads.emitted() == [("wh_reads", message_id("wh_reads", "inbox.read", "job-1#read"), data)]
    reads.service.mark("u1", item.id, InboxAction.READ)
    reads.service.mark("u1", item.id, InboxAction.ARCHIVE)
    assert reads.emitted() == []


def test_a_read_whose_message_cannot_be_queued_is_a_503_left_unread_and_its_retry_emits_the_same_id() -> None:
    reads = Reads()
    item = reads.item(1)
    reads.queue.fail = True
    with pytest.raises(StoreUnavailable):
        reads.service.mark("u1", item.id, InboxAction.READ)
    assert reads.inbox.items[("u1", item.id)].read_at is None  # emitted before the write: nothing written
    reads.queue.fail = False
    reads.service.mark("u1", item.id, InboxAction.READ)
    assert [m for _, m, _ in reads.emitted()] == [message_id("wh_reads", "inbox.read", "job-1#read")]
    assert reads.inbox.items[("u1", item.id)].read_at == iso(T0)


def test_read_all_emits_each_batch_before_marking_it_and_a_failed_batch_is_left_for_the_retry() -> None:
    reads = Reads()
    reads.item(1, read_at=iso(T0))
    reads.item(2, archived_at=iso(T0))
    for n in range(3, 7):
        reads.item(n)  # the fake store marks two at a time
    enqueue = reads.queue.enqueue

    def second_fails(jobs: Sequence[Message], delay_seconds: int = 0) -> None:
        reads.queue.fail = bool(reads.queue.sent)
        enqueue(jobs, delay_seconds)

    reads.queue.enqueue = second_fails  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        reads.service.read_all("u1")
    assert [i.job_id for i in reads.inbox.of("u1") if i.read_at is None] == ["job-2", "job-5", "job-6"]
    assert sorted(d["job_id"] for _, _, d in reads.emitted()) == ["job-3", "job-4"]
    reads.queue.enqueue = enqueue  # type: ignore[method-assign]
    reads.queue.fail = False
    changed, counts = reads.service.read_all("u1")
    assert changed == 2 and counts.unread == 0
    assert sorted(d["job_id"] for _, _, d in reads.emitted()) == ["job-5", "job-6"]
    assert reads.service.read_all("u1")[0] == 0 and reads.emitted() == []


def test_without_webhooks_a_read_emits_nothing_and_cannot_fail_for_them() -> None:
    inbox = MemoryInboxStore()
    service = InboxService(inbox, MemoryConnections(), None, lambda: T0)
    item = InboxItem("0" * 31 + "1", "u1", "job-1", "review_liked", iso(T0), iso(T0 + timedelta(days=1)))
    inbox.put(item)
    assert service.mark("u1", item.id, InboxAction.READ)[0].read_at == iso(T0)

"""The in-app stores against moto server: exact counts through every change, expiry, filters, paging, connections.

The tables come from template.yaml (InboxTable, ConnectionsTable) through the session's local stack; each test
uses users of its own. The management API poster is checked against a small HTTP server that answers the way API
Gateway does (moto's management API always accepts).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import unquote

import boto3
import pytest
from botocore.config import Config
from notify.adapters.apigw import ApiGatewayConnectionPoster
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.adapters.dynamodb.inbox import CHUNK, DynamoInboxStore
from notify.adapters.dynamodb.items import expression_values, to_item
from notify.clock import iso
from notify.errors import ConnectionGone, PermanentError, StoreUnavailable, TransientError, ValidationFailed
from notify.records import Connection, InboxAction, InboxCounts, InboxFilter, InboxItem

from local.stack import LocalStack

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(days=90)


@pytest.fixture(scope="module")
def dynamodb(local_stack: LocalStack) -> Any:
    return boto3.client("dynamodb", config=Config(parameter_validation=False))


@pytest.fixture(scope="module")
def inbox_table(local_stack: LocalStack) -> str:
    assert local_stack.infra is not None
    return local_stack.infra.tables["InboxTable"]


@pytest.fixture(scope="module")
def inbox(dynamodb: Any, inbox_table: str) -> DynamoInboxStore:
    return DynamoInboxStore(dynamodb, inbox_table, CursorCodec(lambda: "inbox test key" * 3), clock=lambda: NOW)


@pytest.fixture(scope="module")
def connections(local_stack: LocalStack, dynamodb: Any) -> DynamoConnectionStore:
    assert local_stack.infra is not None
    return DynamoConnectionStore(dynamodb, local_stack.infra.tables["ConnectionsTable"])


def _user() -> str:
    return f"inbox-{uuid.uuid4().hex[:10]}"


def _item(user: str, n: int, expires: datetime = LATER, **changes: Any) -> InboxItem:
    """The n-th item of a user, created n seconds after NOW - 1 hour (ids sort like the service's)."""
    created = NOW - timedelta(hours=1) + timedelta(seconds=n)
    job = f"job-{user}-{n}"
    item_id = f"{int(created.timestamp() * 1000):012x}{hashlib.sha256(job.encode()).hexdigest()[:20]}"
    fields: dict[str, Any] = {
        "id": item_id,
        "user_id": user,
        "job_id": job,
        "event_type": "review_liked",
        "created_at": iso(created),
        "expires_at": iso(expires),
        "title": f"Item {n}",
        "body": "Someone liked your review.",
        "data": {"n": n},
    }
    return InboxItem(**{**fields, **changes})


def _counts(unseen: int, unread: int, total: int) -> InboxCounts:
    return InboxCounts(unseen=unseen, unread=unread, total=total)


def test_a_put_is_stored_once_and_any_payload_round_trips(inbox: DynamoInboxStore) -> None:
    user = _user()
    data = {"nested": {"list": [1, 2.5, None, "ü ✓ 😀"], "empty": ""}, "big": 10**20, "flag": False}
    item = _item(user, 1, data=data, title=None)
    assert inbox.put(item) is True
    assert inbox.put(item) is False
    assert inbox.put(_item(user, 1, title="a redelivered copy")) is False  # same id: the first one stays
    assert inbox.get(user, item.id) == item
    assert inbox.get(_user(), item.id) is None  # another user's id is nobody's here
    assert inbox.counts(user, NOW) == _counts(1, 1, 1)


def test_counts_are_exact_through_seen_read_unread_archive_and_read_all(inbox: DynamoInboxStore) -> None:
    user = _user()
    a, b, c, d = (_item(user, n) for n in range(4))
    for item in (a, b, c, d):
        assert inbox.put(item)
    assert inbox.counts(user, NOW) == _counts(4, 4, 4)

    seen = inbox.mark(user, a.id, InboxAction.SEEN, NOW)
    assert seen is not None and seen.seen_at == iso(NOW) and seen.read_at is None
    assert inbox.counts(user, NOW) == _counts(3, 4, 4)

    first_read = NOW + timedelta(seconds=1)
    read = inbox.mark(user, b.id, InboxAction.READ, first_read)
    assert read is not None and read.read_at == read.seen_at == iso(first_read)
    assert inbox.counts(user, NOW) == _counts(2, 3, 4)
    again = inbox.mark(user, b.id, InboxAction.READ, NOW + timedelta(seconds=5))  # a no-op keeps the first read_at
    assert again is not None and again.read_at == iso(first_read)
    assert inbox.counts(user, NOW) == _counts(2, 3, 4)

    unread = inbox.mark(user, b.id, InboxAction.UNREAD, NOW)
    assert unread is not None and unread.read_at is None and unread.seen_at == iso(first_read)  # still seen
    assert inbox.counts(user, NOW) == _counts(2, 4, 4)

    archived = inbox.mark(user, a.id, InboxAction.ARCHIVE, NOW)  # seen, unread
    assert archived is not None and archived.archived_at == iso(NOW)
    assert inbox.counts(user, NOW) == _counts(2, 3, 3)
    assert inbox.mark(user, a.id, InboxAction.READ, NOW) is not None  # an archived item counts nowhere
    assert inbox.counts(user, NOW) == _counts(2, 3, 3)

    assert inbox.mark_all_read(user, NOW) == 3  # b, c, d (a is archived)
    assert inbox.counts(user, NOW) == _counts(0, 0, 3)
    assert inbox.mark_all_read(user, NOW) == 0
    assert inbox.get(user, d.id) == _item(user, 3, read_at=iso(NOW), seen_at=iso(NOW))

    assert inbox.mark(user, "0" * 32, InboxAction.READ, NOW) is None
    for nonsense in ("#counts", "", "x" * 5000, b.id.upper()):
        assert inbox.mark(user, nonsense, InboxAction.READ, NOW) is None
        assert inbox.get(user, nonsense) is None
    assert inbox.mark(_user(), b.id, InboxAction.READ, NOW) is None


def test_the_items_about_to_be_read_are_told_before_the_write_and_a_refusal_leaves_them_unread(
    inbox: DynamoInboxStore,
) -> None:
    user = _user()
    items = [_item(user, n) for n in range(CHUNK + 2)]
    for item in items:
        inbox.put(item)
    told: list[list[dict[str, str]]] = []

    def refuse(jobs: list[dict[str, str]]) -> None:
        told.append(jobs)
        raise StoreUnavailable("queue down")

    with pytest.raises(StoreUnavailable):
        inbox.mark(user, items[0].id, InboxAction.READ, NOW, before_read=refuse)
    assert told == [[{"job_id": items[0].job_id, "event_type": "review_liked"}]]
    assert inbox.counts(user, NOW) == _counts(CHUNK + 2, CHUNK + 2, CHUNK + 2)  # nothing written
    inbox.mark(user, items[0].id, InboxAction.SEEN, NOW, before_read=refuse)  # not a read: not told
    assert len(told) == 1

    batches: list[list[dict[str, str]]] = []

    def second_refused(jobs: list[dict[str, str]]) -> None:
        batches.append(jobs)
        if len(batches) == 2:
            raise StoreUnavailable("queue down")

    with pytest.raises(StoreUnavailable):
        inbox.mark_all_read(user, NOW, before_read=second_refused)
    assert [[j["job_id"] for j in b] for b in batches] == [
        [i.job_id for i in items[:CHUNK]],
        [i.job_id for i in items[CHUNK:]],
    ]
    assert inbox.counts(user, NOW).unread == 2  # the first batch is read, the refused one is not
    assert inbox.mark_all_read(user, NOW, before_read=batches.append) == 2
    assert batches[-1] == [{"job_id": i.job_id, "event_type": "review_liked"} for i in items[CHUNK:]]
    inbox.mark(user, items[0].id, InboxAction.READ, NOW, before_read=refuse)  # read already: not told


def test_read_all_marks_more_than_one_transaction_holds(inbox: DynamoInboxStore) -> None:
    user = _user()
    for n in range(130):
        inbox.put(_item(user, n))
    inbox.mark(user, _item(user, 5).id, InboxAction.SEEN, NOW)
    inbox.mark(user, _item(user, 6).id, InboxAction.READ, NOW)
    assert inbox.mark_all_read(user, NOW) == 129
    assert inbox.counts(user, NOW) == _counts(0, 0, 130)
    unread, _ = inbox.page(user, InboxFilter.UNREAD, 100, None, NOW)
    assert unread == []


def test_concurrent_marks_of_one_item_count_once(inbox: DynamoInboxStore) -> None:
    user = _user()
    items = [_item(user, n) for n in range(3)]
    for item in items:
        inbox.put(item)
    barrier = threading.Barrier(8)

    def mark(n: int) -> Optional[InboxItem]:
        barrier.wait()
        return inbox.mark(user, items[0].id, InboxAction.READ, NOW + timedelta(milliseconds=n))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(mark, range(8)))
    assert all(r is not None for r in results)
    assert len({r.read_at for r in results if r is not None}) == 1  # one of them read it; the others saw that
    assert inbox.counts(user, NOW) == _counts(2, 2, 3)

    def archive(n: int) -> Optional[InboxItem]:
        barrier.wait()
        action = InboxAction.ARCHIVE if n % 2 else InboxAction.READ
        return inbox.mark(user, items[1].id, action, NOW)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(archive, range(8)))
    assert inbox.counts(user, NOW) == _counts(1, 1, 2)


def test_concurrent_puts_and_marks_of_different_items_are_all_counted(inbox: DynamoInboxStore) -> None:
    user = _user()
    barrier = threading.Barrier(8)

    def put_and_read(n: int) -> None:
        barrier.wait()
        item = _item(user, n)
        assert inbox.put(item)
        if n % 2:
            assert inbox.mark(user, item.id, InboxAction.READ, NOW) is not None

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put_and_read, range(8)))
    assert inbox.counts(user, NOW) == _counts(4, 4, 8)


def test_expired_items_are_neither_listed_nor_counted(inbox: DynamoInboxStore, dynamodb: Any, inbox_table: str) -> None:
    user = _user()
    gone = [_item(user, n, expires=NOW - timedelta(minutes=n + 1)) for n in range(2)]
    soon = _item(user, 2, expires=NOW + timedelta(minutes=10))
    live = _item(user, 3)
    for item in (*gone, soon, live):
        assert inbox.put(item)
    assert inbox.counts(user, NOW) == _counts(2, 2, 2)  # recounted: two of the four had expired
    items, cursor = inbox.page(user, InboxFilter.ALL, 10, None, NOW)
    assert [i.id for i in items] == [live.id, soon.id] and cursor is None
    assert inbox.get(user, gone[0].id) is None
    assert inbox.mark(user, gone[0].id, InboxAction.READ, NOW) is None
    assert inbox.mark_all_read(user, NOW) == 2
    assert inbox.counts(user, NOW) == _counts(0, 0, 2)

    # Ten minutes on, the next one has expired too: the counts follow without any write.
    assert inbox.counts(user, NOW + timedelta(minutes=11)) == _counts(0, 0, 1)
    assert [i.id for i in inbox.page(user, InboxFilter.ALL, 10, None, NOW + timedelta(minutes=11))[0]] == [live.id]

    # A mark made on a clock behind the last recount never takes the expired item off the counts a second time.
    assert inbox.mark(user, soon.id, InboxAction.UNREAD, NOW + timedelta(minutes=5)) is None
    assert inbox.counts(user, NOW + timedelta(minutes=11)) == _counts(0, 0, 1)

    # Counts that make no sense (written by hand here) are recounted, never shown negative.
    dynamodb.update_item(
        TableName=inbox_table,
        Key=to_item({"user_id": user, "item_id": "#counts"}),
        UpdateExpression="SET unread = :bad",
        ExpressionAttributeValues=expression_values({":bad": -3}),
    )
    assert inbox.counts(user, NOW + timedelta(minutes=11)) == _counts(0, 0, 1)


def test_an_item_that_expires_before_those_counted_already_is_uncounted_when_it_does(inbox: DynamoInboxStore) -> None:
    user = _user()
    late, early = _item(user, 0), _item(user, 1, expires=NOW + timedelta(minutes=10))  # stored in that order
    assert inbox.put(late) and inbox.put(early)
    assert inbox.counts(user, NOW) == _counts(2, 2, 2)
    assert inbox.counts(user, NOW + timedelta(minutes=10)) == _counts(1, 1, 1)


def test_a_listing_filters_on_status(inbox: DynamoInboxStore) -> None:
    user = _user()
    fresh, seen, read, archived = (_item(user, n) for n in range(4))
    for item in (fresh, seen, read, archived):
        inbox.put(item)
    inbox.mark(user, seen.id, InboxAction.SEEN, NOW)
    inbox.mark(user, read.id, InboxAction.READ, NOW)
    inbox.mark(user, archived.id, InboxAction.ARCHIVE, NOW)

    def ids(status: InboxFilter) -> list[str]:
        items, cursor = inbox.page(user, status, 10, None, NOW)
        assert cursor is None
        return [i.id for i in items]

    assert ids(InboxFilter.ALL) == [read.id, seen.id, fresh.id]  # newest first
    assert ids(InboxFilter.UNSEEN) == [fresh.id]
    assert ids(InboxFilter.UNREAD) == [seen.id, fresh.id]
    assert ids(InboxFilter.ARCHIVED) == [archived.id]
    assert inbox.page(_user(), InboxFilter.ALL, 10, None, NOW) == ([], None)


def test_cursor_paging_returns_every_item_once_newest_first(inbox: DynamoInboxStore) -> None:
    user = _user()
    stored = [_item(user, n) for n in range(45)]
    for item in stored:
        inbox.put(item)
    pages: list[list[str]] = []
    cursor: Optional[str] = None
    while True:
        items, cursor = inbox.page(user, InboxFilter.ALL, 20, cursor, NOW)
        pages.append([i.id for i in items])
        if cursor is None:
            break
    assert [len(p) for p in pages] == [20, 20, 5]
    assert sum(pages, []) == [i.id for i in reversed(stored)]

    # A filter that drops most of what it reads still fills its pages.
    for item in stored[::3]:
        inbox.mark(user, item.id, InboxAction.READ, NOW)
    unread_ids = [i.id for i in reversed(stored) if stored.index(i) % 3]
    seen_ids: list[str] = []
    cursor = None
    while True:
        items, cursor = inbox.page(user, InboxFilter.UNREAD, 7, cursor, NOW)
        assert len(items) == 7 or cursor is None
        seen_ids += [i.id for i in items]
        if cursor is None:
            break
    assert seen_ids == unread_ids


def test_a_forged_cursor_or_another_users_is_refused_on_the_cursor_field(inbox: DynamoInboxStore) -> None:
    user, other = _user(), _user()
    for n in range(3):
        inbox.put(_item(user, n))
        inbox.put(_item(other, n))
    _, theirs = inbox.page(other, InboxFilter.ALL, 1, None, NOW)
    assert theirs is not None
    forged = CursorCodec(lambda: "another key" * 3).encode(to_item({"user_id": user, "item_id": "f" * 32}))
    made_up = CursorCodec(lambda: "inbox test key" * 3).encode(to_item({"pk": user, "sk": "x"}))
    for cursor in (theirs, forged, made_up, "garbage", theirs[:-2]):
        with pytest.raises(ValidationFailed) as refused:
            inbox.page(user, InboxFilter.ALL, 1, cursor, NOW)
        assert [e.loc for e in refused.value.errors] == ["cursor"]


def test_connections_are_found_by_user_and_by_id_and_removed_both_ways(connections: DynamoConnectionStore) -> None:
    user = _user()
    ids = [f"conn-{uuid.uuid4().hex[:8]}=" for _ in range(3)]

    def connection(n: int, ago: timedelta) -> Connection:
        at = NOW - ago
        return Connection(ids[n], user, iso(at), iso(at + timedelta(hours=2)))

    connections.add(connection(0, timedelta(minutes=30)))
    connections.add(connection(1, timedelta(minutes=5)))
    connections.add(connection(2, timedelta(hours=3)))  # expired an hour ago (TTL has not deleted it)
    assert [c.connection_id for c in connections.of_user(user, NOW, 10)] == [ids[1], ids[0]]
    assert connections.of_user(user, NOW, 10)[0] == connection(1, timedelta(minutes=5))
    assert {c.connection_id for c in connections.records_of(user, 10)} == set(ids)  # the expired one too
    assert connections.user_of(ids[0]) == user
    assert connections.user_of("nobody") is None

    connections.remove(ids[1], user)  # after a 410: the caller knows the user
    connections.remove(ids[0])  # at $disconnect: found through by-connection
    assert connections.of_user(user, NOW, 10) == []
    assert connections.user_of(ids[0]) is None
    connections.remove("never-connected")  # nothing to do, no error
    assert connections.of_user(_user(), NOW, 10) == []


def test_a_read_of_a_users_connections_is_one_query_of_at_most_the_limit(
    local_stack: LocalStack, connections: DynamoConnectionStore
) -> None:
    # A user with a flood of records (say their $disconnects were lost): each read still reads `limit` records.
    user = _user()
    for n in range(40):
        at = NOW - timedelta(minutes=n)
        connections.add(Connection(f"flood-{n:02}=", user, iso(at), iso(at + timedelta(hours=2))))
    queries: list[dict[str, Any]] = []
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    client.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params))
    assert local_stack.infra is not None
    store = DynamoConnectionStore(client, local_stack.infra.tables["ConnectionsTable"])
    found = store.of_user(user, NOW, 3)
    assert [c.connection_id for c in found] == ["flood-00=", "flood-01=", "flood-02="]  # first 3 by id, newest first
    assert len(store.records_of(user, 7)) == 7
    assert [(q["Limit"], q["ConsistentRead"]) for q in queries] == [(3, True), (7, True)]


class _ManagementApi(BaseHTTPRequestHandler):
    """API Gateway's management API, answering each post with the next status queued (200 when none)."""

    answers: list[tuple[int, str]] = []
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append((self.path, body) if self.command == "POST" else (f"{self.command} {self.path}", body))
        status, code = self.answers.pop(0) if self.answers else (200, "")
        self.send_response(status)
        if code:
            self.send_header("x-amzn-ErrorType", code)
        payload = json.dumps({"message": code}).encode() if code else b""
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_DELETE = do_POST  # noqa: N815 - http.server's naming

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def management_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ManagementApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ManagementApi.answers, _ManagementApi.received = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_poster_maps_api_gateways_answers(management_api: str) -> None:
    # One attempt, as the worker's client makes; a minute to answer, as this server's thread may wait its turn.
    config = SEND_CONFIG.merge(Config(connect_timeout=60, read_timeout=60))
    poster = ApiGatewayConnectionPoster(_management_client(management_api, config))
    poster.post("abc=", b'{"type":"counts"}')
    assert [(unquote(path), body) for path, body in _ManagementApi.received] == [
        ("/@connections/abc=", b'{"type":"counts"}')
    ]
    for status, code, error in (
        (410, "GoneException", ConnectionGone),
        (429, "LimitExceededException", TransientError),
        (500, "InternalServerErrorException", TransientError),
        (413, "PayloadTooLargeException", PermanentError),
        (403, "ForbiddenException", PermanentError),
    ):
        _ManagementApi.answers.append((status, code))
        with pytest.raises(error) as raised:
            poster.post("abc=", b"{}")
        assert type(raised.value) is error, code
    sent = len(_ManagementApi.received)
    with pytest.raises(PermanentError):
        poster.post("abc=", b"x" * (128 * 1024 + 1))  # refused before the call
    assert len(_ManagementApi.received) == sent


def test_the_poster_closes_a_connection_with_delete_connection(management_api: str) -> None:
    config = SEND_CONFIG.merge(Config(connect_timeout=60, read_timeout=60))
    poster = ApiGatewayConnectionPoster(_management_client(management_api, config))
    _ManagementApi.answers.append((204, ""))
    poster.close("abc=")
    assert [(unquote(path), body) for path, body in _ManagementApi.received] == [("DELETE /@connections/abc=", b"")]
    for status, code, error in (
        (410, "GoneException", ConnectionGone),  # closed already, or its handshake not complete
        (429, "LimitExceededException", TransientError),
        (500, "InternalServerErrorException", TransientError),
        (403, "ForbiddenException", PermanentError),
    ):
        _ManagementApi.answers.append((status, code))
        with pytest.raises(error) as raised:
            poster.close("abc=")
        assert type(raised.value) is error, code


def test_the_poster_reports_an_unreachable_api_as_transient() -> None:
    client = _management_client("http://127.0.0.1:9", SEND_CONFIG.merge(Config(connect_timeout=1)))
    with pytest.raises(TransientError):
        ApiGatewayConnectionPoster(client).post("abc=", b"{}")


def _management_client(endpoint: str, config: Config) -> Any:
    """The worker's client for the management API (the region and keys are a signature's, nothing checks them)."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        config=config,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def test_every_read_of_an_inbox_is_consistent(inbox_table: str) -> None:
    # moto is always consistent, so the requests themselves are checked: DynamoDB answers a Query or GetItem
    # without ConsistentRead from a replica that may not have the latest mark yet.
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    reads: list[tuple[str, Any]] = []
    for operation in ("Query", "GetItem"):
        client.meta.events.register(
            f"provide-client-params.dynamodb.{operation}",
            lambda params, op=operation, **_: reads.append((op, params.get("ConsistentRead"))),
        )
    store = DynamoInboxStore(client, inbox_table)
    user = _user()
    store.put(_item(user, 1))
    store.page(user, InboxFilter.ALL, 10, None, NOW)
    store.counts(user, NOW)
    store.get(user, _item(user, 1).id)
    assert {op for op, _ in reads} == {"Query", "GetItem"}
    assert all(consistent is True for _, consistent in reads), reads

"""The inbox API and user tokens through ApiFunction's real handler against moto (docs/INBOX.md).

Items are put through the real store (DynamoInboxStore, the worker's); tokens come from the API itself, or, for
the expired and forged ones, from ``UserTokens`` under the stack's user-token keys and under another key. Counts frames
are observed on a small HTTP server standing in for API Gateway's management API (``POST /@connections/{id}``).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta
from typing import Any, Optional

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.secrets import SsmSecret
from notify.clock import iso, utc_now
from notify.records import Connection, InboxItem
from notify.services.access import hash_key
from notify.usertokens import UserTokens
from websockets.sync.client import connect

from local.events import http_api_event
from local.invoke import LambdaContext
from local.stack import LocalStack
from local.ws_gateway import WebSocketGateway, wait_connected

from .helpers import call_api, frames

pytestmark = pytest.mark.usefixtures("stack_env")  # the functions' environment, pointing at the peers
ITEM_KEYS = {"id", "job_id", "event_type", "title", "body", "data", "created_at", "seen_at", "read_at", "archived_at"}


def _user() -> str:
    return f"inbox-{uuid.uuid4().hex[:8]}"


def _key(*scopes: str) -> str:
    key = f"inbox-test-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "inbox test", list(scopes), iso(utc_now())
    )
    return key


def _put_items(user: str, count: int) -> list[str]:
    """``count`` items in the user's inbox through the real store; their ids, oldest first."""
    store = DynamoInboxStore(boto3.client("dynamodb"), os.environ["INBOX_TABLE"])
    now = utc_now()
    ids = []
    for n in range(count):
        created = now - timedelta(minutes=count - n)
        item_id = f"{int(created.timestamp() * 1000):012x}{uuid.uuid4().hex[:20]}"
        item = InboxItem(
            id=item_id,
            user_id=user,
            job_id=f"job-{uuid.uuid4().hex}",
            event_type="review_liked",
            created_at=iso(created),
            expires_at=iso(now + timedelta(days=90)),
            title=f"Like {n}",
            body=f"Someone liked your review {n}",
            data={"n": n},
        )
        assert store.put(item)
        ids.append(item_id)
    return ids


def iso_parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _token(user: str) -> str:
    status, issued = call_api("POST", f"/api/v1/users/{user}/tokens")
    assert status == 201, issued
    return str(issued["token"])


def request(
    method: str,
    path: str,
    authorization: Optional[str] = None,
    body: Optional[bytes] = None,
    **headers: str,
) -> tuple[int, dict[str, str], Any]:
    """The handler's answer to one request without an API key: (status, headers, parsed body)."""
    from api.app import lambda_handler

    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if authorization is not None:
        sent["authorization"] = authorization
    path, _, query = path.partition("?")
    result = lambda_handler(http_api_event(method, path, query, sent, body), LambdaContext("ApiFunction"))
    text = result.get("body")
    return int(result["statusCode"]), dict(result.get("headers") or {}), json.loads(text) if text else None


def as_user(token: str, method: str, path: str, body: Optional[bytes] = None) -> tuple[int, Any]:
    status, _, answer = request(method, path, f"Bearer {token}", body)
    return status, answer


def counts(token: str) -> dict[str, int]:
    status, answer = as_user(token, "GET", "/api/v1/inbox/counts")
    assert status == 200, answer
    return dict(answer)


# -- user tokens ---------------------------------------------------------------------------------------------


def _assert_expires(issued: dict[str, Any], before: datetime, after: datetime, ttl: timedelta) -> None:
    """The token expires ``ttl`` after it was issued, some time between ``before`` and ``after`` (in whole seconds,
    rounded down)."""
    expires = iso_parse(issued["expires_at"])
    assert (before + ttl).replace(microsecond=0) <= expires <= after + ttl, (before, issued, after)


def test_a_token_needs_the_users_token_scope_and_lives_as_long_as_asked() -> None:
    user = _user()
    assert call_api("POST", f"/api/v1/users/{user}/tokens", key=None)[0] == 401
    assert call_api("POST", f"/api/v1/users/{user}/tokens", key=_key("notifications:read"))[0] == 403
    key = _key("users:token")
    before = utc_now()
    status, issued = call_api("POST", f"/api/v1/users/{user}/tokens", key=key)
    after = utc_now()
    assert status == 201 and set(issued) == {"user_id", "token", "expires_at"} and issued["user_id"] == user
    _assert_expires(issued, before, after, timedelta(hours=1))  # USER_TOKEN_SECONDS' default
    before = utc_now()
    status, short = call_api("POST", f"/api/v1/users/{user}/tokens", {"ttl_seconds": 120})
    after = utc_now()
    assert status == 201
    _assert_expires(short, before, after, timedelta(seconds=120))
    assert counts(short["token"]) == {"unseen": 0, "unread": 0, "total": 0}


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        pytest.param("/api/v1/users/u/tokens", {"ttl_seconds": 59}, "ttl_seconds", id="ttl-too-short"),
        pytest.param("/api/v1/users/u/tokens", {"ttl_seconds": 86401}, "ttl_seconds", id="ttl-past-a-day"),
        pytest.param("/api/v1/users/u/tokens", {"ttl": 60}, "ttl", id="unknown-field"),
        pytest.param("/api/v1/users/%20%20/tokens", None, "path.user_id", id="blank-user"),
        pytest.param("/api/v1/users/a%00b/tokens", None, "path.user_id", id="control-character"),
        pytest.param(f"/api/v1/users/{'é' * 65}/tokens", None, "path.user_id", id="over-128-bytes"),
    ],
)
def test_a_bad_token_request_is_a_field_level_422(path: str, body: Any, loc: str) -> None:
    status, error = call_api("POST", path, body)
    assert status == 422, error
    assert any(f["loc"].startswith(loc) for f in error["error"]["fields"]), error


# -- the inbox with a bearer token ---------------------------------------------------------------------------


def test_the_inbox_lists_the_users_items_newest_first_page_by_page() -> None:
    user = _user()
    ids = _put_items(user, 5)
    token = _token(user)
    status, page = as_user(token, "GET", "/api/v1/inbox")
    assert status == 200 and [i["id"] for i in page["items"]] == ids[::-1], page
    assert page["next_cursor"] is None and page["counts"] == {"unseen": 5, "unread": 5, "total": 5}
    first = page["items"][0]
    assert set(first) == ITEM_KEYS and first["title"] == "Like 4" and first["data"] == {"n": 4}
    assert first["seen_at"] is None and first["read_at"] is None and first["archived_at"] is None
    seen, cursor = [], None
    for _ in range(5):
        query = "/api/v1/inbox?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, page = as_user(token, "GET", query)
        assert status == 200 and len(page["items"]) <= 2, page
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


def test_each_change_moves_the_counts_exactly_and_the_filters_follow() -> None:
    user = _user()
    a, b, c, d, e = _put_items(user, 5)
    token = _token(user)
    assert counts(token) == {"unseen": 5, "unread": 5, "total": 5}

    status, changed = as_user(token, "POST", f"/api/v1/inbox/{a}/seen", b"{}")  # an empty JSON body is fine
    assert status == 200 and changed["item"]["id"] == a and changed["item"]["seen_at"] is not None
    assert changed["item"]["read_at"] is None and changed["counts"] == {"unseen": 4, "unread": 5, "total": 5}
    status, changed = as_user(token, "POST", f"/api/v1/inbox/{b}/read")
    assert changed["item"]["read_at"] and changed["item"]["seen_at"], changed  # read is seen too
    assert changed["counts"] == {"unseen": 3, "unread": 4, "total": 5}
    first_read = changed["item"]["read_at"]
    status, again = as_user(token, "POST", f"/api/v1/inbox/{b}/read")  # idempotent
    assert status == 200 and again["item"]["read_at"] == first_read and again["counts"] == changed["counts"]
    status, changed = as_user(token, "POST", f"/api/v1/inbox/{b}/unread")
    assert changed["item"]["read_at"] is None and changed["item"]["seen_at"] is not None
    assert changed["counts"] == {"unseen": 3, "unread": 5, "total": 5}
    status, changed = as_user(token, "POST", f"/api/v1/inbox/{c}/archive")
    assert changed["item"]["archived_at"] is not None
    assert changed["counts"] == {"unseen": 2, "unread": 4, "total": 4}

    def listed(status_filter: str) -> list[str]:
        code, page = as_user(token, "GET", f"/api/v1/inbox?status={status_filter}")
        assert code == 200, page
        return [i["id"] for i in page["items"]]

    assert listed("all") == [e, d, b, a]
    assert listed("unseen") == [e, d]
    assert listed("unread") == [e, d, b, a]
    assert listed("archived") == [c]

    status, done = as_user(token, "POST", "/api/v1/inbox/read-all")
    assert status == 200 and done == {"updated": 4, "counts": {"unseen": 0, "unread": 0, "total": 4}}
    assert listed("unread") == [] and listed("unseen") == []
    assert as_user(token, "POST", "/api/v1/inbox/read-all")[1]["updated"] == 0
    assert counts(token) == {"unseen": 0, "unread": 0, "total": 4}


def test_a_user_never_reaches_another_users_items() -> None:
    owner, other = _user(), _user()
    (item,) = _put_items(owner, 1)
    token = _token(other)
    for action in ("seen", "read", "unread", "archive"):
        status, error = as_user(token, "POST", f"/api/v1/inbox/{item}/{action}")
        assert (status, error["error"]["code"]) == (404, "not_found"), (action, error)
    assert as_user(token, "GET", "/api/v1/inbox")[1]["items"] == []
    assert as_user(token, "POST", "/api/v1/inbox/read-all")[1]["updated"] == 0
    owner_token = _token(owner)
    assert counts(owner_token) == {"unseen": 1, "unread": 1, "total": 1}  # nothing the other did touched it
    # The owner's own cursor does not page another user's inbox either.
    _put_items(owner, 2)
    cursor = as_user(owner_token, "GET", "/api/v1/inbox?limit=1")[1]["next_cursor"]
    assert cursor
    status, error = as_user(token, "GET", f"/api/v1/inbox?limit=1&cursor={cursor}")
    assert status == 422, error


def test_an_unknown_or_malformed_item_id() -> None:
    token = _token(_user())
    status, error = as_user(token, "POST", f"/api/v1/inbox/{'0' * 32}/read")
    assert (status, error["error"]["code"]) == (404, "not_found")
    for bad in ("nope", "0" * 31, "0" * 33, "G" * 32, "A" * 32):
        status, error = as_user(token, "POST", f"/api/v1/inbox/{bad}/read")
        assert status == 422 and error["error"]["fields"][0]["loc"] == "path.item_id", (bad, error)
    status, error = as_user(token, "POST", f"/api/v1/inbox/{'0' * 32}/delete")
    assert status == 404


def _expired(user: str) -> str:
    tokens = UserTokens(SsmSecret(os.environ["USER_TOKEN_KEYS_PARAMETER"]))
    return tokens.issue(user, utc_now() - timedelta(hours=2), timedelta(hours=1))[0]


def _forged(user: str) -> str:
    return UserTokens(lambda: "not-the-service-key" * 2).issue(user, utc_now())[0]


def _altered(user: str) -> str:
    body, _, signature = _token(user).partition(".")
    other = _token(_user()).partition(".")[0]
    return f"{other}.{signature}"  # another user's payload under this one's signature


@pytest.mark.parametrize(
    ("header", "invalid"),
    [
        pytest.param(None, False, id="missing"),
        pytest.param("", False, id="empty"),
        pytest.param("Bearer", True, id="no-token"),
        pytest.param("Bearer ", True, id="blank-token"),
        pytest.param("Basic dXNlcjpwYXNz", True, id="basic"),
        pytest.param("Bearer not-a-token", True, id="garbage"),
        pytest.param("Bearer a.b", True, id="unsigned"),
        pytest.param("Bearer ünïcödé.tökén", True, id="unicode"),
        pytest.param("Bearer 🔑." + "x" * 40, True, id="emoji"),
        pytest.param("Bearer " + "a" * 9000 + ".b", True, id="huge"),
        pytest.param("Bearer a.b\x00", True, id="nul"),
        pytest.param("EXPIRED", True, id="expired"),
        pytest.param("FORGED", True, id="forged"),
        pytest.param("ALTERED", True, id="altered"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/inbox", "/api/v1/inbox/counts"])
def test_without_a_valid_token_the_inbox_is_a_401_with_a_bearer_challenge(
    header: Optional[str], invalid: bool, path: str
) -> None:
    user = _user()
    made = {"EXPIRED": _expired, "FORGED": _forged, "ALTERED": _altered}
    if header in made:
        header = f"Bearer {made[header](user)}"
    status, headers, body = request("GET", path, header)
    assert (status, body["error"]["code"]) == (401, "unauthorized"), body
    assert body["error"]["message"]
    challenge = {k.lower(): v for k, v in headers.items()}["www-authenticate"]
    assert challenge.startswith('Bearer realm="inbox"')
    assert ('error="invalid_token"' in challenge) == invalid, challenge


def test_an_api_key_does_not_open_the_bearer_inbox_and_the_scheme_is_case_insensitive() -> None:
    user = _user()
    _put_items(user, 1)
    status, _, body = request("GET", "/api/v1/inbox", None, x_api_key="local-dev-key")
    assert status == 401, body
    status, _, page = request("GET", "/api/v1/inbox", f"bearer {_token(user)}")
    assert status == 200 and len(page["items"]) == 1


def test_a_mark_and_read_all_refuse_a_missing_token_before_anything_changes() -> None:
    user = _user()
    (item,) = _put_items(user, 1)
    for path in (f"/api/v1/inbox/{item}/read", "/api/v1/inbox/read-all"):
        assert request("POST", path, f"Bearer {_forged(user)}")[0] == 401
    assert counts(_token(user)) == {"unseen": 1, "unread": 1, "total": 1}


# -- a service reading a user's inbox ------------------------------------------------------------------------


def test_a_service_reads_a_users_inbox_with_an_api_key() -> None:
    user = _user()
    ids = _put_items(user, 3)
    as_user(_token(user), "POST", f"/api/v1/inbox/{ids[0]}/archive")
    status, page = call_api("GET", f"/api/v1/users/{user}/inbox")
    assert status == 200 and [i["id"] for i in page["items"]] == ids[:0:-1]
    assert page["counts"] == {"unseen": 2, "unread": 2, "total": 2}
    status, page = call_api("GET", f"/api/v1/users/{user}/inbox?status=archived&limit=1")
    assert status == 200 and [i["id"] for i in page["items"]] == [ids[0]]
    if page["next_cursor"]:  # a full page may name a next one that turns out empty
        status, page = call_api("GET", f"/api/v1/users/{user}/inbox?status=archived&cursor={page['next_cursor']}")
        assert status == 200 and page["items"] == [] and page["next_cursor"] is None
    assert call_api("GET", f"/api/v1/users/{user}/inbox", key=None)[0] == 401
    assert call_api("GET", f"/api/v1/users/{user}/inbox", key=_key("users:token"))[0] == 403
    assert call_api("GET", f"/api/v1/users/{user}/inbox", key=_key("notifications:read"))[0] == 200
    for query in ("status=read", "limit=0", "limit=101", f"cursor={'x' * 2049}", "cursor=not-a-cursor"):
        status, error = call_api("GET", f"/api/v1/users/{user}/inbox?{query}")
        assert status == 422 and error["error"]["fields"], (query, error)


# -- the dev-only token route --------------------------------------------------------------------------------


def test_the_dev_token_route_is_a_404_unless_the_stack_enables_it(
    fresh_services: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = _user()
    monkeypatch.delenv("DEV_USER_TOKENS", raising=False)
    status, _, error = request("POST", f"/dev/users/{user}/tokens")
    assert (status, error["error"]["code"]) == (404, "not_found"), error
    monkeypatch.setenv("DEV_USER_TOKENS", "false")
    _clear_services()
    assert request("POST", f"/dev/users/{user}/tokens")[0] == 404
    monkeypatch.setenv("DEV_USER_TOKENS", "true")
    _clear_services()
    _put_items(user, 1)
    # No API key, no body: a JSON request all the same (415 otherwise, see the next test).
    status, _, issued = request("POST", f"/dev/users/{user}/tokens", content_type="application/json")
    assert status == 201 and issued["user_id"] == user, issued
    assert counts(issued["token"]) == {"unseen": 1, "unread": 1, "total": 1}
    status, _, short = request(
        "POST", f"/dev/users/{user}/tokens", body=b'{"ttl_seconds": 60}', content_type="application/json"
    )
    assert status == 201 and short["token"] != issued["token"]


def test_the_dev_token_route_answers_the_stacks_own_pages_and_clients_that_are_no_browser(
    local_stack: LocalStack,
) -> None:
    user, port = _user(), local_stack.config.api_port
    own = (f"http://127.0.0.1:{port}", f"http://localhost:{port}")
    path, as_json = f"/dev/users/{user}/tokens", {"content_type": "application/json"}
    # A page on another origin, whatever it sends; a sandboxed or privacy-stripped page says "null".
    for headers in (
        {"origin": "https://evil.example", **as_json},
        {"origin": f"http://127.0.0.1:{port + 1}", "sec_fetch_site": "same-site", **as_json},
        {"origin": "null", **as_json},
        {"sec_fetch_site": "cross-site", **as_json},  # an old browser's form POST sends no Origin
        {"origin": "https://evil.example"},
    ):
        status, _, answer = request("POST", path, **headers)
        assert (status, (answer.get("error") or {}).get("code")) == (403, "forbidden"), (headers, answer)
    # What a page can send without a preflight, its own origin's pages included: a browser asks no one first.
    for headers in ({"origin": own[0]}, {}, {"content_type": "text/plain"}):
        status, _, answer = request("POST", path, **headers)
        assert (status, (answer.get("error") or {}).get("code")) == (415, "unsupported_media_type"), (headers, answer)
    # The stack's own pages (the demo inbox, on either name of the host), and curl or a script.
    for headers in (
        {"origin": own[0], "sec_fetch_site": "same-origin", **as_json},
        {"origin": own[1], "sec_fetch_site": "cross-site", **as_json},
        as_json,
    ):
        status, _, issued = request("POST", path, **headers)
        assert status == 201 and issued["user_id"] == user, (headers, status, issued)


def _clear_services() -> None:
    from api import context

    context.services.cache_clear()


# -- counts frames -------------------------------------------------------------------------------------------


def test_every_change_pushes_the_counts_to_the_users_live_connections(gateway: WebSocketGateway) -> None:
    # The local WebSocket gateway is the management API here (WEBSOCKET_ENDPOINT), with real sockets behind it.
    user, other = _user(), _user()
    item, _ = _put_items(user, 2)
    connections = DynamoConnectionStore(boto3.client("dynamodb"), os.environ["CONNECTIONS_TABLE"])
    an_hour_ago = utc_now() - timedelta(hours=1)
    closed = f"closed-{uuid.uuid4().hex[:12]}="  # recorded, but API Gateway has no such socket any more: 410
    connections.add(Connection(closed, user, iso(an_hour_ago), iso(an_hour_ago + timedelta(hours=2))))
    token = _token(user)
    before = set(gateway.connection_ids())
    with connect(f"{gateway.url}?token={token}", open_timeout=60) as live:
        wait_connected(gateway, before)
        before = set(gateway.connection_ids())
        with connect(f"{gateway.url}?token={_token(other)}", open_timeout=60) as others:
            wait_connected(gateway, before)
            as_user(token, "POST", f"/api/v1/inbox/{item}/read")
            assert frames(live, 1) == [{"type": "counts", "unseen": 1, "unread": 1, "total": 2}]
            remaining = [c.connection_id for c in connections.of_user(user, utc_now())]
            assert closed not in remaining and len(remaining) == 1  # the 410 one is forgotten
            as_user(token, "POST", "/api/v1/inbox/read-all")
            as_user(token, "POST", f"/api/v1/inbox/{item}/archive")
            assert frames(live, 2) == [
                {"type": "counts", "unseen": 0, "unread": 0, "total": 2},
                {"type": "counts", "unseen": 0, "unread": 0, "total": 1},
            ]
            as_user(token, "GET", "/api/v1/inbox")
            assert frames(live, 0) == []  # reading changes nothing, pushes nothing
            assert frames(others, 0) == []  # another user's connection hears nothing


# -- hostile input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        pytest.param("POST", "/api/v1/inbox/read-all", b"\xff\xfe\x00", "application/json", id="non-utf8-body"),
        pytest.param("POST", f"/api/v1/inbox/{'0' * 32}/read", b"{not json", "application/json", id="bad-json"),
        pytest.param("POST", "/api/v1/inbox/read-all", b"x", "text/plain", id="text-body"),
        pytest.param("GET", f"/api/v1/inbox?cursor={'A' * 100_000}", None, None, id="huge-cursor"),
        pytest.param("GET", "/api/v1/inbox?cursor=%FF%FE", None, None, id="undecodable-cursor"),
        pytest.param("GET", "/api/v1/inbox?cursor=eyJ1IjoxfQ.AAAA", None, None, id="forged-cursor"),
        pytest.param("GET", "/api/v1/inbox?cursor=abc.%C3%A9", None, None, id="non-ascii-signature"),
        pytest.param("GET", "/api/v1/inbox?status=%00&limit=-1", None, None, id="bad-query"),
        pytest.param("GET", "/api/v1/inbox?limit=99999999999999999999999", None, None, id="huge-limit"),
        pytest.param("POST", "/api/v1/inbox/%E2%82%AC/read", None, None, id="unicode-item-id"),
        pytest.param("DELETE", "/api/v1/inbox", None, None, id="wrong-method"),
    ],
)
def test_no_input_makes_the_inbox_answer_a_5xx(
    method: str, path: str, body: Optional[bytes], content_type: Optional[str]
) -> None:
    token = _token(_user())
    headers = {"content_type": content_type} if content_type else {}
    status, _, answer = request(method, path, f"Bearer {token}", body, **headers)
    assert 400 <= status < 500 and answer["error"]["code"] and answer["error"]["message"], (status, answer)


def test_no_token_request_answers_a_5xx() -> None:
    for path, body in (
        ("/api/v1/users/u/tokens", b"\xff\xfe"),
        ("/api/v1/users/u/tokens", b"[1]"),
        ("/api/v1/users/u/tokens", b'{"ttl_seconds": "soon"}'),
        ("/api/v1/users/u/tokens", b'{"ttl_seconds": 1e400}'),
        ("/dev/users/u/tokens", b"\xff\xfe"),
        ("/api/v1/users/%FF/tokens", None),
    ):
        status, _, answer = request(
            "POST", path, None, body, content_type="application/json", x_api_key="local-dev-key"
        )
        assert 400 <= status < 500 and answer["error"]["message"], (path, body, status, answer)


@pytest.mark.parametrize(
    "body", [b"[null, null]", b"3", b'"x"', b"[]", b"[{}]", b'[{"ttl_seconds": 3600}]', b"[{}, []]"]
)
def test_a_token_body_that_is_not_an_object_is_a_422_on_body(body: bytes) -> None:
    status, answer = call_api("POST", "/api/v1/users/demo-user-1/tokens", body)
    assert status == 422
    assert [f["loc"] for f in answer["error"]["fields"]] == ["body"]

"""The preferences API through the real handler against moto: defaults, replace, strict 422s, scopes, import."""

from __future__ import annotations

import os
import uuid

import boto3
import pytest
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.services.access import hash_key

from .helpers import call_api

pytestmark = pytest.mark.usefixtures("stack_env")  # the functions' environment, pointing at the peers
NIGHTS = {"start": "22:00", "end": "08:00", "timezone": "Europe/Berlin"}


def _user() -> str:
    return f"pref-{uuid.uuid4().hex[:8]}"


def test_a_user_never_seen_has_everything_on_and_a_put_replaces_the_whole_document() -> None:
    user = _user()
    status, fresh = call_api("GET", f"/api/v1/users/{user}/preferences")
    assert status == 200 and fresh["updated_at"] is None and fresh["quiet_hours"] is None
    assert fresh["channels"] == {"email": True, "push": True, "websocket": True}
    assert set(fresh["categories"]) == {"account", "social", "content", "marketing"}
    document = {"categories": {"marketing": {"email": False}}, "quiet_hours": NIGHTS}
    status, stored = call_api("PUT", f"/api/v1/users/{user}/preferences", document)
    assert status == 200 and stored["categories"]["marketing"]["email"] is False and stored["quiet_hours"] == NIGHTS
    assert call_api("GET", f"/api/v1/users/{user}/preferences") == (200, stored)
    status, replaced = call_api("PUT", f"/api/v1/users/{user}/preferences", {"channels": {"push": False}})
    assert replaced["categories"]["marketing"]["email"] is True and replaced["quiet_hours"] is None


def test_a_bad_document_is_a_field_level_422_and_account_mail_cannot_be_turned_off() -> None:
    user = _user()
    for document, loc in (
        ({"categories": {"account": {"email": False}}}, "categories"),
        ({"quiet_hours": {"start": "25:00", "end": "08:00", "timezone": "UTC"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Nowhere/City"}}, "quiet_hours.timezone"),
        ({"channels": {"pigeon": True}}, "channels.pigeon"),
        ({"volume": 11}, "volume"),
    ):
        status, error = call_api("PUT", f"/api/v1/users/{user}/preferences", document)
        assert status == 422, (document, error)
        assert any(f["loc"].startswith(loc) for f in error["error"]["fields"]), (document, error)
    assert call_api("GET", f"/api/v1/users/{user}/preferences")[1]["updated_at"] is None  # nothing stored


def test_preferences_need_their_own_scopes() -> None:
    key = f"prefs-reader-{uuid.uuid4().hex}"
    DynamoApiKeyStore(boto3.client("dynamodb"), os.environ["API_KEYS_TABLE"]).put(
        hash_key(key), "prefs reader", ["preferences:read"], "now"
    )
    user = _user()
    assert call_api("GET", f"/api/v1/users/{user}/preferences", key=key)[0] == 200
    assert call_api("PUT", f"/api/v1/users/{user}/preferences", {}, key=key)[0] == 403
    assert call_api("GET", f"/api/v1/users/{user}/preferences", key=None)[0] == 401


def test_an_import_stores_every_document_or_none() -> None:
    users = [_user() for _ in range(3)]
    items = [{"user_id": u, "categories": {"content": {"push": False}}} for u in users]
    status, stored = call_api("PUT", "/api/v1/preferences", {"items": items})
    assert status == 200 and [i["user_id"] for i in stored["items"]] == users
    assert call_api("GET", f"/api/v1/users/{users[2]}/preferences")[1]["categories"]["content"]["push"] is False
    fresh = _user()
    bad = [{"user_id": fresh, "channels": {"email": False}}, {"user_id": "x", "quiet_hours": {"start": "1"}}]
    status, error = call_api("PUT", "/api/v1/preferences", {"items": bad})
    assert status == 422 and any(f["loc"].startswith("items.1") for f in error["error"]["fields"]), error
    assert call_api("GET", f"/api/v1/users/{fresh}/preferences")[1]["updated_at"] is None
    assert call_api("PUT", "/api/v1/preferences", {"items": [items[0]] * 101})[0] == 422


def test_the_document_get_returned_is_accepted_by_put_as_it_is() -> None:
    user = _user()
    status, first = call_api("PUT", f"/api/v1/users/{user}/preferences", {"quiet_hours": NIGHTS})
    assert status == 200 and first["updated_at"] is not None
    status, fetched = call_api("GET", f"/api/v1/users/{user}/preferences")
    assert status == 200 and set(fetched) >= {"user_id", "suppressed", "updated_at"}
    fetched["categories"]["marketing"]["push"] = False
    status, stored = call_api("PUT", f"/api/v1/users/{user}/preferences", fetched)
    assert status == 200, stored
    assert stored["categories"]["marketing"]["push"] is False and stored["quiet_hours"] == NIGHTS
    assert stored["user_id"] == user and stored["updated_at"] >= fetched["updated_at"]
    assert call_api("GET", f"/api/v1/users/{user}/preferences") == (200, stored)
    # read-only: updated_at and suppressed as sent are ignored, not stored
    status, stored = call_api(
        "PUT",
        f"/api/v1/users/{user}/preferences",
        {**stored, "updated_at": "2000-01-01T00:00:00.000Z", "suppressed": ["x@example.com"]},
    )
    assert status == 200 and stored["updated_at"] != "2000-01-01T00:00:00.000Z" and stored["suppressed"] == []
    # a never-seen user's defaults round trip too (updated_at is null there)
    fresh = _user()
    status, defaults = call_api("GET", f"/api/v1/users/{fresh}/preferences")
    assert call_api("PUT", f"/api/v1/users/{fresh}/preferences", defaults)[0] == 200


def test_a_put_naming_another_user_is_a_field_level_422_and_stores_nothing() -> None:
    user, other = _user(), _user()
    status, error = call_api("PUT", f"/api/v1/users/{user}/preferences", {"user_id": other, "channels": {}})
    assert status == 422, error
    (field,) = error["error"]["fields"]
    assert field["loc"] == "user_id" and user in field["msg"] and other in field["msg"], field
    assert call_api("GET", f"/api/v1/users/{user}/preferences")[1]["updated_at"] is None

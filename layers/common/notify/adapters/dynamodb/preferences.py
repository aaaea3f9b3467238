"""Users' notification preferences (NotificationsTable, ``PREF#<user_id>`` / ``PREF``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import batch_write, call, from_item, to_item
from notify.records import UserPreferences
from notify.resilience import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoPreferenceStore:
    """One item per user who set preferences; the worker's reads are cached per container.

    ``cache_seconds`` bounds how stale a worker's view of a user's preferences can be: a change (an opt-out, new
    quiet hours) applies to notifications delivered from at most that long after it. The API reads with
    ``cache_seconds=0``, so a GET after a PUT shows the PUT.
    """

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache: Optional[TtlCache[tuple[Optional[UserPreferences]]]] = (
            TtlCache(ttl_seconds=cache_seconds, max_items=10_000) if cache_seconds > 0 else None
        )

    def get(self, user_id: str) -> Optional[UserPreferences]:
        """A consistent GetItem of the user's item, through the per-container cache (a miss is cached too)."""
        if self._cache is not None:
            hit = self._cache.get(user_id)
            if hit is not None:
                return hit[0]
        resp = call(
            "read preferences",
            self._client.get_item,
            TableName=self._table,
            Key=to_item(_key(user_id)),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        found = _preferences(from_item(item)) if item else None
        if self._cache is not None:
            self._cache.put(user_id, (found,))
        return found

    def put(self, preferences: UserPreferences) -> None:
        """PutItem of the user's whole document."""
        call("store preferences", self._client.put_item, TableName=self._table, Item=to_item(_item(preferences)))
        if self._cache is not None:
            self._cache.put(preferences.user_id, (preferences,))

    def put_many(self, preferences: Sequence[UserPreferences]) -> None:
        """BatchWriteItem of the users' documents, 25 a request."""
        requests = [{"PutRequest": {"Item": to_item(_item(p))}} for p in preferences]
        batch_write(self._client, self._table, requests, "store preferences")


def _key(user_id: str) -> dict[str, str]:
    return {"pk": f"PREF#{user_id}", "sk": "PREF"}


def _item(p: UserPreferences) -> dict[str, Any]:
    return {
        **_key(p.user_id),
        "kind": "preferences",
        "user_id": p.user_id,
        "document": json.dumps(
            {"channels": p.channels, "categories": p.categories, "quiet_hours": p.quiet_hours}, sort_keys=True
        ),
        "updated_at": p.updated_at,
    }


def _preferences(item: Mapping[str, Any]) -> UserPreferences:
    doc = json.loads(item["document"])
    return UserPreferences(
        user_id=item["user_id"],
        channels=doc.get("channels") or {},
        categories=doc.get("categories") or {},
        quiet_hours=doc.get("quiet_hours"),
        updated_at=item.get("updated_at"),
    )

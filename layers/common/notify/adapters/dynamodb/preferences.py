"""Users' notification preferences and last known contact (NotificationsTable, ``PREF#<user_id>`` / ``PREF``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import (
    call,
    conditional,
    conditional_update,
    expression_values,
    from_item,
    to_item,
)
from notify.records import ContactSnapshot, UserPreferences, UserProfile
from notify.resilience import TtlCache
from notify.throttles import ATTRIBUTE_PREFIX, ThrottleWindow

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
        """A GetItem of the user's item, through the per-container cache (a miss is cached too)."""
        if self._cache is not None:
            hit = self._cache.get(user_id)
            if hit is not None:
                return hit[0]
        resp = call(
            "read preferences",
            self._client.get_item,
            TableName=self._table,
            Key=to_item(_key(user_id)),
            # Uncached (the API), a GET must show the PUT before it; cached (the worker), the cache is staler than
            # an eventually consistent read, which costs half a read unit.
            ConsistentRead=self._cache is None,
        )
        item = resp.get("Item")
        found = _preferences(from_item(item)) if item else None
        if self._cache is not None:
            self._cache.put(user_id, (found,))
        return found

    def put(self, preferences: UserPreferences) -> None:
        """UpdateItem of the user's document: the suppressed addresses (a separate string set) are kept."""
        call("store preferences", self._client.update_item, **self._update(preferences))
        if self._cache is not None:
            self._cache.pop(preferences.user_id)

    def put_many(self, preferences: Sequence[UserPreferences]) -> None:
        """One UpdateItem per user (BatchWriteItem would replace the items and drop their suppressed addresses)."""
        for p in preferences:
            call("store preferences", self._client.update_item, **self._update(p))

    def suppress(self, user_id: str, address: str, reason: str, at: str) -> None:
        """ADD the address to the user's string set, and record why in ``SUPP#<address>`` for operators."""
        call(
            "suppress an address",
            self._client.update_item,
            **self._update_item(user_id, {}, add={"suppressed": {address}}),
        )
        record = {"pk": f"SUPP#{address.lower()}", "sk": "SUPP", "address": address, "user_id": user_id}
        call(
            "record a suppression",
            self._client.put_item,
            TableName=self._table,
            Item=to_item({**record, "kind": "suppression", "reason": reason, "at": at}),
        )
        if self._cache is not None:
            self._cache.pop(user_id)

    def remember_contact(self, user_id: str, snapshot: ContactSnapshot) -> None:
        """One UpdateItem of ``contact`` (the profile as JSON) and ``contact_at``; the user's choices and suppressed
        addresses are kept. The cached read stays as it is (the worker remembers what it wrote itself)."""
        contact = json.dumps(_profile_data(snapshot.profile), sort_keys=True, ensure_ascii=False)
        update = self._update_item(user_id, {"contact": contact, "contact_at": snapshot.taken_at})
        call("keep the last known contact", self._client.update_item, **update)

    def forget_contact(self, user_id: str) -> None:
        """REMOVE the last known contact, if the user's item has one (conditional, so no item is created)."""
        conditional(
            "forget the last known contact",
            self._client.update_item,
            TableName=self._table,
            Key=to_item(_key(user_id)),
            UpdateExpression="REMOVE contact, contact_at",
            ConditionExpression="attribute_exists(contact)",
        )
        if self._cache is not None:
            self._cache.pop(user_id)  # read again next time: a forgotten contact must not be used from the cache

    def count_send(
        self, user_id: str, attribute: str, seen: Optional[ThrottleWindow], window: ThrottleWindow
    ) -> tuple[bool, Optional[ThrottleWindow]]:
        """One conditional UpdateItem of the counter (``attribute_not_exists``, or its ``s`` and ``n`` as seen: every
        admission changes one of them), which returns the item as it stood when the condition fails. Either way this
        container's cached read of the user's item is brought up to the counter, keeping the read's age."""
        update = self._update_item(user_id, {})
        update["UpdateExpression"] += ", #counter = :counter"
        update["ExpressionAttributeNames"] = {"#counter": attribute}
        values: dict[str, Any] = {":counter": window.as_item()}
        if seen is None:
            condition = "attribute_not_exists(#counter)"
        else:
            condition = "#counter.s = :seen_s AND #counter.n = :seen_n"
            values.update({":seen_s": int(seen.started_at.timestamp()), ":seen_n": seen.count})
        update["ExpressionAttributeValues"].update(expression_values(values))
        stored, item = conditional_update("count a send", self._client, ConditionExpression=condition, **update)
        current = window if stored else _throttles(item).get(attribute)
        if self._cache is not None:
            self._cache.update(user_id, lambda hit: (_with_counter(hit[0], user_id, attribute, current),))
        return stored, current

    def _update(self, p: UserPreferences) -> dict[str, Any]:
        document = {"channels": p.channels, "categories": p.categories, "quiet_hours": p.quiet_hours}
        return self._update_item(
            p.user_id, {"document": json.dumps(document, sort_keys=True), "updated_at": p.updated_at}
        )

    def _update_item(
        self, user_id: str, values: Mapping[str, Any], add: Optional[Mapping[str, Any]] = None
    ) -> dict[str, Any]:
        """UpdateItem's arguments: SET ``values`` (attribute → value) on the user's item, with its ``user_id`` and
        ``kind`` (a user's first write makes a whole preferences item), and ADD ``add``; every other attribute
        (the choices, the suppressed addresses, the last known contact) is kept."""
        sets = {"user_id": user_id, "kind": "preferences", **values}
        expression = "SET " + ", ".join(f"{name} = :{name}" for name in sets)
        add = add or {}
        if add:
            expression += " ADD " + ", ".join(f"{name} :{name}" for name in add)
        return {
            "TableName": self._table,
            "Key": to_item(_key(user_id)),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": expression_values({f":{k}": v for k, v in {**sets, **add}.items()}),
        }


def _key(user_id: str) -> dict[str, str]:
    return {"pk": f"PREF#{user_id}", "sk": "PREF"}


def _preferences(item: Mapping[str, Any]) -> UserPreferences:
    doc = json.loads(item["document"]) if item.get("document") else {}
    return UserPreferences(
        user_id=item["user_id"],
        channels=doc.get("channels") or {},
        categories=doc.get("categories") or {},
        quiet_hours=doc.get("quiet_hours"),
        updated_at=item.get("updated_at"),
        suppressed=frozenset(item.get("suppressed") or ()),
        contact=_snapshot(item),
        throttles=_throttles(item),
    )


def _throttles(item: Mapping[str, Any]) -> dict[str, ThrottleWindow]:
    """The item's throttle counters, by attribute (``throttle#<category>#<channel>``)."""
    return {k: ThrottleWindow.from_item(v) for k, v in item.items() if k.startswith(ATTRIBUTE_PREFIX)}


def _with_counter(
    preferences: Optional[UserPreferences], user_id: str, attribute: str, window: Optional[ThrottleWindow]
) -> UserPreferences:
    """``preferences`` (a user with none: the defaults) with the counter ``attribute`` as ``window`` (None: none)."""
    current = preferences if preferences is not None else UserPreferences(user_id)
    counters = {k: v for k, v in current.throttles.items() if k != attribute}
    if window is not None:
        counters[attribute] = window
    return replace(current, throttles=counters)


def _profile_data(profile: UserProfile) -> dict[str, Any]:
    data = {k: v for k, v in asdict(profile).items() if v not in (None, ())}
    if profile.push_endpoints:
        data["push_endpoints"] = list(profile.push_endpoints)
    return data


def _snapshot(item: Mapping[str, Any]) -> Optional[ContactSnapshot]:
    """The item's last known contact; None if it has none (or one this code cannot read: never a guess)."""
    if not item.get("contact") or not item.get("contact_at"):
        return None
    try:
        data = json.loads(item["contact"])
        profile = UserProfile(**{**data, "push_endpoints": tuple(data.get("push_endpoints") or ())})
    except (ValueError, TypeError):
        return None
    return ContactSnapshot(profile, item["contact_at"])

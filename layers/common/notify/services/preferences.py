"""Users' notification preferences: read with defaults, replaced whole, imported in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from notify.clock import Clock, iso
from notify.errors import FieldError, ValidationFailed
from notify.models import Category, Channel, PreferencesInput, UserId
from notify.ports import PreferenceStore
from notify.records import UserPreferences

MAX_BULK = 100  # users per import request


class PreferenceService:
    """The preferences API's use cases; answers are the public document (``UserPreferences.document``)."""

    def __init__(self, store: PreferenceStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def get(self, user_id: UserId) -> dict[str, Any]:
        """The user's preferences; a user who never set any has every channel and category on, no quiet hours."""
        return (self._store.get(user_id) or UserPreferences(user_id)).document()

    def replace(self, user_id: UserId, data: PreferencesInput) -> dict[str, Any]:
        """Store ``data`` as the user's whole document and return it as stored.

        The document may be the one GET returned: a ``user_id`` in it must be ``user_id`` (ValidationFailed on
        ``user_id``), and ``suppressed`` and ``updated_at`` are ignored.
        """
        if data.user_id is not None and data.user_id != user_id:
            message = f"is {data.user_id!r}, but this is the preferences of user {user_id!r} (the path's); leave it out"
            raise ValidationFailed([FieldError("user_id", message)])
        kept = self._store.get(user_id)  # a PUT changes the user's choices, never their suppressed addresses
        preferences = replace(
            _record(user_id, data, iso(self._clock())), suppressed=kept.suppressed if kept else frozenset()
        )
        self._store.put(preferences)
        return preferences.document()

    def opt_out(self, user_id: str, category: Category, channel: Channel) -> dict[str, Any]:
        """Turn one category off on one channel, keeping the rest of the user's choices (one-click unsubscribe).

        Idempotent: opting out twice stores the same document. Account notifications cannot be turned off.
        """
        if category is Category.ACCOUNT:
            raise ValueError("account notifications cannot be turned off")
        current = self._store.get(user_id) or UserPreferences(user_id)
        categories = {name: dict(chans) for name, chans in current.categories.items()}
        categories.setdefault(category.value, {})[channel.value] = False
        updated = replace(current, categories=categories, updated_at=iso(self._clock()))
        self._store.put(updated)
        return updated.document()

    def replace_many(self, items: Sequence[tuple[UserId, PreferencesInput]]) -> list[dict[str, Any]]:
        """Store many users' documents (an import from another provider); the documents as stored, in order."""
        now = iso(self._clock())
        records = [_record(user_id, data, now) for user_id, data in items]
        self._store.put_many(records)
        return [r.document() for r in records]


def _record(user_id: str, data: PreferencesInput, now: str) -> UserPreferences:
    return UserPreferences(
        user_id=user_id,
        channels={c.value: on for c, on in data.channels.items()},
        categories={cat.value: {c.value: on for c, on in chans.items()} for cat, chans in data.categories.items()},
        quiet_hours=data.quiet_hours.model_dump() if data.quiet_hours else None,
        updated_at=now,
    )

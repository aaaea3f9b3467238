"""Static segments as the API manages them: create, members, views, delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Optional

import pytest
from notify.errors import Conflict, NotFound
from notify.ports import StaticSegments
from notify.services.segments import SegmentService

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class MemoryStaticSegments:
    """StaticSegments in memory."""

    def __init__(self) -> None:
        self.meta_by_id: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}

    def create(self, segment_id: str, name: str, created_at: str) -> bool:
        if segment_id in self.meta_by_id:
            return False
        self.meta_by_id[segment_id] = {"segment_id": segment_id, "name": name, "created_at": created_at}
        self.members[segment_id] = set()
        return True

    def meta(self, segment_id: str) -> Optional[dict[str, Any]]:
        return self.meta_by_id.get(segment_id)

    def all(self) -> list[dict[str, Any]]:
        return list(self.meta_by_id.values())

    def add(self, segment_id: str, user_ids: Sequence[str]) -> None:
        self.members.setdefault(segment_id, set()).update(user_ids)

    def remove(self, segment_id: str, user_ids: Sequence[str]) -> None:
        self.members.get(segment_id, set()).difference_update(user_ids)

    def count(self, segment_id: str) -> int:
        return len(self.members.get(segment_id, ()))

    def delete(self, segment_id: str) -> None:
        self.meta_by_id.pop(segment_id, None)
        self.members.pop(segment_id, None)


def _service() -> SegmentService:
    store: StaticSegments = MemoryStaticSegments()
    return SegmentService(store, lambda: T0)


def test_a_segment_is_created_once_with_its_members_and_viewed_with_its_count() -> None:
    segments = _service()
    view = segments.create("vips", "VIPs", ["u1", "u2"])
    assert view == {"segment_id": "vips", "name": "VIPs", "created_at": "2026-11-24T12:00:00.000Z", "users": 2}
    with pytest.raises(Conflict):
        segments.create("vips", "again")
    assert segments.list() == [{"segment_id": "vips", "name": "VIPs", "created_at": view["created_at"]}]


def test_members_change_only_on_an_existing_segment() -> None:
    segments = _service()
    segments.create("vips", "VIPs")
    assert segments.add("vips", ["u1", "u2", "u1"])["users"] == 2
    assert segments.remove("vips", ["u2", "u9"])["users"] == 1
    for change in (segments.add, segments.remove):
        with pytest.raises(NotFound):
            change("nope", ["u1"])
    segments.delete("vips")
    with pytest.raises(NotFound):
        segments.get("vips")
    with pytest.raises(NotFound):
        segments.delete("vips")

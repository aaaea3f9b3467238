"""Segments: static lists of user ids managed here, and where a segment's users come from (a static
list, else the Auth service)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import Conflict, NotFound
from notify.ports import SegmentSource, StaticSegments
from notify.records import SegmentPage


class SegmentService:
    """Managing static segments; answers are the public views (``segment_id``, ``name``, ``created_at``,
    and ``users`` for one segment)."""

    def __init__(self, store: StaticSegments, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, segment_id: str, name: str, user_ids: Sequence[str] = ()) -> dict[str, Any]:
        """A new segment with its first members; Conflict if the id is taken."""
        if not self._store.create(segment_id, name, iso(self._clock())):
            raise Conflict(f"segment {segment_id} already exists")
        if user_ids:
            self._store.add(segment_id, user_ids)
        return self.get(segment_id)

    def list(self) -> list[dict[str, Any]]:
        """Every static segment, without its member count."""
        return [
            {"segment_id": m["segment_id"], "name": m["name"], "created_at": m["created_at"]} for m in self._store.all()
        ]

    def get(self, segment_id: str) -> dict[str, Any]:
        """The segment with its member count; NotFound if there is none."""
        meta = self._store.meta(segment_id)
        if meta is None:
            raise NotFound(f"segment {segment_id} not found")
        return {
            "segment_id": segment_id,
            "name": meta["name"],
            "created_at": meta["created_at"],
            "users": self._store.count(segment_id),
        }

    def add(self, segment_id: str, user_ids: Sequence[str]) -> dict[str, Any]:
        """Add members (idempotent) to an existing segment; its view after the change."""
        self.get(segment_id)
        self._store.add(segment_id, user_ids)
        return self.get(segment_id)

    def remove(self, segment_id: str, user_ids: Sequence[str]) -> dict[str, Any]:
        """Remove members from an existing segment; its view after the change."""
        self.get(segment_id)
        self._store.remove(segment_id, user_ids)
        return self.get(segment_id)

    def delete(self, segment_id: str) -> None:
        """Delete an existing segment and its members; NotFound if there is none."""
        self.get(segment_id)
        self._store.delete(segment_id)


class CompositeSegmentSource:
    """Static segments win; an id unknown there is resolved by the Auth service's paging contract.

    The cursor handed on records which source the segment came from (``s:`` or
    ``d:``), so every later page is read from the same one.
    """

    def __init__(self, static: Optional[SegmentSource], dynamic: SegmentSource) -> None:
        self._static = static
        self._dynamic = dynamic

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        """Up to ``limit`` users of the segment from ``cursor`` on; NotFound if neither source knows it."""
        if cursor is not None:
            source, _, inner = cursor.partition(":")
            if source == "s" and self._static is not None:
                return _tag("s", self._static.page(segment_id, inner, limit))
            return _tag("d", self._dynamic.page(segment_id, inner, limit))
        if self._static is not None:
            try:
                return _tag("s", self._static.page(segment_id, None, limit))
            except NotFound:
                pass
        return _tag("d", self._dynamic.page(segment_id, None, limit))


def _tag(source: str, page: SegmentPage) -> SegmentPage:
    return SegmentPage(page.user_ids, f"{source}:{page.next_cursor}" if page.next_cursor else None)

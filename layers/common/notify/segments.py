"""Where a segment's users come from: a static list stored here, else the Auth service."""

from __future__ import annotations

from typing import Optional

from notify.errors import NotFound
from notify.ports import SegmentSource
from notify.records import SegmentPage


class CompositeSegmentSource:
    """Static segments win; an id unknown there is resolved by the Auth service's paging contract.

    The cursor handed on records which source the segment came from (``s:`` or
    ``d:``), so every later page is read from the same one.
    """

    def __init__(self, static: Optional[SegmentSource], dynamic: SegmentSource) -> None:
        self._static = static
        self._dynamic = dynamic

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
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

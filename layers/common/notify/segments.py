"""Where a segment's users come from: a static list stored here, else the Auth service."""

from __future__ import annotations

from typing import Optional

from notify.errors import NotFound
from notify.ports import SegmentPage, SegmentSource


class CompositeSegmentSource:
    """Static segments win; an id unknown there is resolved by the Auth service's paging contract."""

    def __init__(self, static: Optional[SegmentSource], dynamic: SegmentSource) -> None:
        self._static = static
        self._dynamic = dynamic

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        if self._static is not None:
            try:
                return self._static.page(segment_id, cursor, limit)
            except NotFound:
                pass
        return self._dynamic.page(segment_id, cursor, limit)

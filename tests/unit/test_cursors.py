"""Signed page cursors: what the API issues comes back; anything else is a 422 on ``cursor``."""

from __future__ import annotations

import pytest
from notify.adapters.dynamodb.cursors import NO_PAGING, CursorCodec
from notify.adapters.dynamodb.items import to_item
from notify.errors import ValidationFailed

KEY = to_item({"pk": "JOB#1", "sk": "JOB", "gsi1pk": "USER#ana", "gsi1sk": "2026-11-25T10:00:00Z#1"})


def test_a_cursor_round_trips_and_reveals_no_key() -> None:
    codec = CursorCodec(lambda: "k" * 48)
    cursor = codec.encode(KEY)
    assert cursor is not None and "USER#" not in cursor
    assert codec.decode(cursor) == KEY
    assert codec.encode(None) is None and codec.decode(None) is None and codec.decode("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "e30.",  # {} with no signature
        "a" * 5000,
        "e30.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_anything_the_api_did_not_issue_is_refused(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        CursorCodec(lambda: "k" * 48).decode(cursor)
    assert refused.value.errors[0].loc == "cursor"


def test_a_cursor_signed_under_another_key_or_edited_is_refused() -> None:
    cursor = CursorCodec(lambda: "old key" * 5).encode(KEY)
    assert cursor is not None
    with pytest.raises(ValidationFailed):
        CursorCodec(lambda: "new key" * 5).decode(cursor)
    body, _, signature = cursor.partition(".")
    edited = body[:-4] + ("AAAA" if body[-4:] != "AAAA" else "BBBB") + "." + signature
    with pytest.raises(ValidationFailed):
        CursorCodec(lambda: "old key" * 5).decode(edited)


def test_a_store_built_without_a_codec_cannot_page() -> None:
    with pytest.raises(RuntimeError, match="cannot page"):
        NO_PAGING.encode(KEY)

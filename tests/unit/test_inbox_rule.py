"""The inbox's mark rule (notify.records.inbox_mark, InboxItem.marked): what each action does to an item and to the
user's counts, the one rule DynamoInboxStore and the tests' MemoryInboxStore both apply."""

from __future__ import annotations

import itertools

import pytest
from notify.records import InboxAction, InboxCounts, InboxItem, InboxMark, inbox_mark

EARLIER = "2024-05-01T10:00:00+00:00"
NOW = "2024-05-02T12:00:00+00:00"


def _item(seen: bool = False, read: bool = False, archived: bool = False) -> InboxItem:
    return InboxItem(
        id="0" * 32,
        user_id="u1",
        job_id="j1",
        event_type="billing.invoice_paid",
        created_at=EARLIER,
        expires_at="2024-08-01T10:00:00+00:00",
        title="Paid",
        seen_at=EARLIER if seen else None,
        read_at=EARLIER if read else None,
        archived_at=EARLIER if archived else None,
    )


def _counts(items: list[InboxItem]) -> InboxCounts:
    """The counts as a recount makes them: the items not archived, and which of those are unseen or unread."""
    counted = [i for i in items if i.archived_at is None]
    return InboxCounts(
        unseen=sum(i.seen_at is None for i in counted),
        unread=sum(i.read_at is None for i in counted),
        total=len(counted),
    )


def test_reading_a_new_item_marks_it_seen_too_and_takes_it_out_of_both_counts() -> None:
    marked, mark = _item().marked(InboxAction.READ, NOW)

    assert (marked.seen_at, marked.read_at, marked.archived_at) == (NOW, NOW, None)
    assert mark == InboxMark(sets=("read_at", "seen_at"), unseen=-1, unread=-1)


def test_reading_a_seen_item_keeps_the_moment_it_was_seen() -> None:
    marked, mark = _item(seen=True).marked(InboxAction.READ, NOW)

    assert (marked.seen_at, marked.read_at) == (EARLIER, NOW)
    assert mark == InboxMark(sets=("read_at",), unread=-1)


def test_marking_an_item_seen_leaves_it_unread() -> None:
    marked, mark = _item().marked(InboxAction.SEEN, NOW)

    assert (marked.seen_at, marked.read_at) == (NOW, None)
    assert mark == InboxMark(sets=("seen_at",), unseen=-1)


@pytest.mark.parametrize(
    ("action", "flags"),
    [
        (InboxAction.SEEN, {"seen": True}),
        (InboxAction.READ, {"seen": True, "read": True}),
        (InboxAction.UNREAD, {"seen": True}),
        (InboxAction.UNREAD, {}),
        (InboxAction.ARCHIVE, {"archived": True}),
    ],
)
def test_an_action_that_finds_its_work_done_changes_nothing_and_keeps_the_first_moments(
    action: InboxAction, flags: dict[str, bool]
) -> None:
    item = _item(**flags)

    assert item.marked(action, NOW) == (item, None)
    assert inbox_mark(action, seen=bool(item.seen_at), read=bool(item.read_at), archived=bool(item.archived_at)) is None


def test_marking_an_item_unread_clears_read_only_and_counts_it_unread_again() -> None:
    marked, mark = _item(seen=True, read=True).marked(InboxAction.UNREAD, NOW)

    assert (marked.seen_at, marked.read_at) == (EARLIER, None)
    assert mark == InboxMark(clears=("read_at",), unread=1)


def test_archiving_takes_the_item_out_of_every_count_it_was_in() -> None:
    marked, mark = _item(seen=True).marked(InboxAction.ARCHIVE, NOW)

    assert (marked.seen_at, marked.read_at, marked.archived_at) == (EARLIER, None, NOW)
    assert mark == InboxMark(sets=("archived_at",), total=-1, unread=-1)


@pytest.mark.parametrize("action", [InboxAction.SEEN, InboxAction.READ, InboxAction.UNREAD])
def test_a_mark_of_an_archived_item_changes_its_flags_but_no_count(action: InboxAction) -> None:
    marked, mark = _item(read=action is InboxAction.UNREAD, archived=True).marked(action, NOW)

    assert mark is not None and (mark.unseen, mark.unread, mark.total) == (0, 0, 0)
    assert marked.archived_at == EARLIER


@pytest.mark.parametrize(
    ("flags", "action"),
    [
        (dict(zip(("seen", "read", "archived"), states, strict=True)), action)
        for states in itertools.product((False, True), repeat=3)
        for action in InboxAction
    ],
)
def test_the_counts_plus_a_marks_deltas_are_the_counts_a_recount_finds_after_it(
    flags: dict[str, bool], action: InboxAction
) -> None:
    other = _item(seen=True)  # the user's other items are untouched by the mark
    item = _item(**flags)
    before = _counts([item, other])

    marked, mark = item.marked(action, NOW)

    after = _counts([marked, other])
    unseen, unread, total = (0, 0, 0) if mark is None else (mark.unseen, mark.unread, mark.total)
    assert InboxCounts(before.unseen + unseen, before.unread + unread, before.total + total) == after
    assert mark == inbox_mark(action, **flags)

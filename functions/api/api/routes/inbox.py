"""The in-app inbox (docs/INBOX.md): a user reads and marks their own items with a user token.

Every operation under ``/api/v1/inbox`` is authenticated by ``Authorization: Bearer <user token>`` (see
api.deps.bearer_user) and works on the inbox of the user the token names; no path names a user, so no token
reaches another user's items (another user's item id is a 404, like an unknown one). Each change pushes
``{"type": "counts", "unseen", "unread", "total"}`` to the user's live WebSocket connections. A service reads
a user's inbox with an API key through ``GET /api/v1/users/{user_id}/inbox``.
"""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from dataclasses import asdict
from typing import Annotated, Optional

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from notify.records import InboxAction, InboxCounts, InboxFilter, InboxItem, InboxPage
from notify.services.inbox import InboxService

from api.deps import Inbox, InboxUser, NotificationsReader
from api.openapi import BEARER_SECURITY, responses
from api.params import PathUserId
from api.views import InboxCountsView, InboxItemChange, InboxItemView, InboxPageView, ReadAllResult

tracer = Tracer()
router = Router()
TAGS = ["inbox"]
ITEM_ID_PATTERN = r"^[0-9a-f]{32}$"
ItemId = Annotated[str, Path(min_length=32, max_length=32, pattern=ITEM_ID_PATTERN)]
Status = Annotated[InboxFilter, Query(description="all: every item not archived")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[Optional[str], Query(max_length=2048, description="the previous page's next_cursor")]


def _counts(counts: InboxCounts) -> InboxCountsView:
    return InboxCountsView.model_validate(asdict(counts))


def _item(item: InboxItem) -> InboxItemView:
    return InboxItemView.model_validate(item.document())


def _page(page: InboxPage) -> InboxPageView:
    return InboxPageView(
        items=[_item(i) for i in page.items], next_cursor=page.next_cursor, counts=_counts(page.counts)
    )


def _mark(inbox: InboxService, user: str, item_id: str, action: InboxAction) -> InboxItemChange:
    item, counts = inbox.mark(user, item_id, action)
    return InboxItemChange(item=_item(item), counts=_counts(counts))


@router.get(
    "/api/v1/inbox",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "A page of the user's inbox, newest first, and the counts", bearer=True),
)
@tracer.capture_method
def list_inbox(
    user: InboxUser,
    inbox: Inbox,
    status: Status = InboxFilter.ALL,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> InboxPageView:
    """The token's user's inbox, newest first: every item not archived, or only the unseen, unread or archived."""
    return _page(inbox.page(user, status, limit, cursor))


@router.get(
    "/api/v1/inbox/counts",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "The user's badge numbers", bearer=True),
)
@tracer.capture_method
def inbox_counts(user: InboxUser, inbox: Inbox) -> InboxCountsView:
    """How many of the token's user's items are unseen, unread, and in the inbox (not archived)."""
    return _counts(inbox.counts(user))


@router.post(
    "/api/v1/inbox/<item_id>/seen",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "Seen; the item and the counts", 404, bearer=True),
)
@tracer.capture_method
def mark_seen(user: InboxUser, inbox: Inbox, item_id: ItemId) -> InboxItemChange:
    """Mark one item seen (shown in a list); idempotent, the first ``seen_at`` stays."""
    return _mark(inbox, user, item_id, InboxAction.SEEN)


@router.post(
    "/api/v1/inbox/<item_id>/read",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "Read; the item and the counts", 404, bearer=True),
)
@tracer.capture_method
def mark_read(user: InboxUser, inbox: Inbox, item_id: ItemId) -> InboxItemChange:
    """Mark one item read (and seen); idempotent, the first ``read_at`` stays."""
    return _mark(inbox, user, item_id, InboxAction.READ)


@router.post(
    "/api/v1/inbox/<item_id>/unread",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "Unread; the item and the counts", 404, bearer=True),
)
@tracer.capture_method
def mark_unread(user: InboxUser, inbox: Inbox, item_id: ItemId) -> InboxItemChange:
    """Mark one item unread again (it stays seen)."""
    return _mark(inbox, user, item_id, InboxAction.UNREAD)


@router.post(
    "/api/v1/inbox/<item_id>/archive",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "Archived; the item and the counts", 404, bearer=True),
)
@tracer.capture_method
def archive(user: InboxUser, inbox: Inbox, item_id: ItemId) -> InboxItemChange:
    """Archive one item: it leaves the counts and the default listing (``?status=archived`` still lists it)."""
    return _mark(inbox, user, item_id, InboxAction.ARCHIVE)


@router.post(
    "/api/v1/inbox/read-all",
    tags=TAGS,
    security=BEARER_SECURITY,
    responses=responses(200, "How many were marked read, and the counts", bearer=True),
)
@tracer.capture_method
def read_all(user: InboxUser, inbox: Inbox) -> ReadAllResult:
    """Mark every unread item of the token's user read (and seen)."""
    updated, counts = inbox.read_all(user)
    return ReadAllResult(updated=updated, counts=_counts(counts))


@router.get(
    "/api/v1/users/<user_id>/inbox",
    tags=TAGS,
    responses=responses(200, "A page of the user's inbox, newest first, and the counts"),
)
@tracer.capture_method
def list_user_inbox(
    _: NotificationsReader,
    inbox: Inbox,
    user_id: PathUserId,
    status: Status = InboxFilter.ALL,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> InboxPageView:
    """A user's inbox as the user sees it, for a service (an API key with ``notifications:read``); changes nothing."""
    return _page(inbox.page(user_id, status, limit, cursor))

"""Users' in-app inboxes (InboxTable: ``user_id`` / ``item_id``), with exact, strongly consistent counts.

Each user's partition holds their items (``item_id`` is 32 lowercase hex characters that sort by creation time)
and one ``#counts`` item, which sorts before every item id. Every write that changes what the counts count is one
``TransactWriteItems``: the item's write, conditioned on the state the change was computed from, and an ``ADD`` to
the counts that bumps their ``version``. So two concurrent marks of one item never both decrement, a redelivered
item is never counted twice, and a count read with ``ConsistentRead`` is exact.

Expiry: an item carries ``ttl`` (epoch seconds of its ``expires_at``), and DynamoDB's TTL deletes it, days late at
worst (moto never). Until then the store hides it: a listing filters on ``ttl``, and the counts item keeps
``oldest_expiry``, the earliest ``ttl`` among the items it counts. A counts read at or after that moment recounts the
partition (a consistent query of the flags only) and writes the counts back conditioned on the ``version`` it read,
so a put or a mark in between makes it read again rather than lose that change. ``reconciled_at`` records the moment
of the last recount: a mark made on a clock behind it, of an item the recount already treated as expired, is refused
instead of decrementing the counts twice.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.cursors import NO_PAGING, CursorCodec
from notify.adapters.dynamodb.items import call, expression_values, from_item, to_item, transact
from notify.clock import Clock, iso, utc_now
from notify.errors import FieldError, StoreUnavailable, ValidationFailed
from notify.records import InboxAction, InboxCounts, InboxFilter, InboxItem, InboxMark, inbox_mark

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from notify.ports import BeforeRead

COUNTS_ID = "#counts"  # sorts before every item id (hex digits are all above "#")
ITEM_ID = re.compile(r"[0-9a-f]{32}")  # what notify.services.inbox.item_id makes
FLAGS = ("seen_at", "read_at", "archived_at")
#: A transaction holds at most 100 actions: 99 items and the counts.
CHUNK = 99
#: How many times a write whose condition failed (someone changed the item or the counts) is computed again.
ATTEMPTS = 10
#: A listing reads at most this many query pages before it answers with what it has and a cursor.
ROUNDS = 10
MAX_READ = 1000  # items a query reads in one round at most

_NAMES = {"#ttl": "ttl"}  # ``ttl`` is a reserved word
_STATUS_FILTERS = {
    InboxFilter.ALL: "attribute_not_exists(archived_at)",
    InboxFilter.UNSEEN: "attribute_not_exists(seen_at) AND attribute_not_exists(archived_at)",
    InboxFilter.UNREAD: "attribute_not_exists(read_at) AND attribute_not_exists(archived_at)",
    InboxFilter.ARCHIVED: "attribute_exists(archived_at)",
}


class DynamoInboxStore:
    """The InboxStore port over a low-level DynamoDB client; every failure to reach DynamoDB is StoreUnavailable.

    ``cursors`` signs page cursors (the API's store); ``clock`` decides what has expired in :meth:`get`, the one
    call that is not given the time; ``sleep`` waits between attempts after a transaction conflict.
    """

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        cursors: CursorCodec = NO_PAGING,
        clock: Clock = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self._cursors = cursors
        self._clock = clock
        self._sleep = sleep

    # -- writes ---------------------------------------------------------------------

    def put(self, item: InboxItem) -> bool:
        """One transaction: the item if absent, and the counts (+1 each, ``oldest_expiry`` lowered to its ttl).

        False, and nothing counted, when an item with this id is stored already.
        """
        stored = to_item(_stored(item))
        ttl = stored["ttl"]
        lower = False  # whether the counts' oldest_expiry is above this item's ttl (then it is lowered)
        for attempt in range(ATTEMPTS):
            if lower:
                expiry = "SET oldest_expiry = :ttl"
                condition = "oldest_expiry > :ttl"
            else:
                expiry = "SET oldest_expiry = if_not_exists(oldest_expiry, :ttl)"
                condition = "attribute_not_exists(oldest_expiry) OR oldest_expiry <= :ttl"
            reasons = self._transact(
                "store an inbox item",
                [
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": stored,
                            "ConditionExpression": "attribute_not_exists(item_id)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": to_item(_key(item.user_id, COUNTS_ID)),
                            "UpdateExpression": f"ADD #total :one, unread :one, unseen :one, version :one {expiry}",
                            "ConditionExpression": condition,
                            "ExpressionAttributeNames": {"#total": "total"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}, ":ttl": ttl},
                        }
                    },
                ],
            )
            if reasons is None:
                return True
            if reasons[0] == "ConditionalCheckFailed":
                return False
            if reasons[1] == "ConditionalCheckFailed":
                lower = not lower  # the counts' oldest_expiry is on the other side of this ttl
            else:
                self._back_off(attempt)
        raise StoreUnavailable("cannot store an inbox item: the user's counts kept changing")

    def mark(
        self,
        user_id: str,
        item_id: str,
        action: InboxAction,
        at: datetime,
        before_read: Optional[BeforeRead] = None,
    ) -> Optional[InboxItem]:
        """A consistent read, then one transaction conditioned on the item still being as read (see the module);
        ``before_read`` is told of the item between the two when the action reads it."""
        return self._mark(user_id, item_id, action, at, before_read)[0]

    def mark_all_read(self, user_id: str, at: datetime, before_read: Optional[BeforeRead] = None) -> int:
        """Mark the user's unread, live items read, 99 to a transaction, ``before_read`` told of each chunk before
        its transaction; a chunk whose transaction is cancelled is marked one by one instead. Returns how many items
        changed."""
        now = _seconds(at)
        unread = self._query_all(
            user_id,
            "attribute_not_exists(read_at) AND attribute_not_exists(archived_at) AND #ttl > :now",
            {":now": now},
            jobs=before_read is not None,
        )
        changed = 0
        for i in range(0, len(unread), CHUNK):
            chunk = unread[i : i + CHUNK]
            if before_read is not None:
                before_read([_job_of(it) for it in chunk])
            if self._read_chunk(user_id, chunk, at):
                changed += len(chunk)
            else:  # one by one, before_read already told of them
                changed += sum(self._mark(user_id, it["item_id"], InboxAction.READ, at)[1] for it in chunk)
        return changed

    # -- reads ----------------------------------------------------------------------

    def get(self, user_id: str, item_id: str) -> Optional[InboxItem]:
        """A consistent GetItem; None if absent or expired (by the store's clock)."""
        if not ITEM_ID.fullmatch(item_id):
            return None  # no item has such an id (and an empty or huge key would be DynamoDB's 400)
        item = self._read(user_id, item_id)
        if item is None or int(item["ttl"]) <= _seconds(self._clock()):
            return None
        return _inbox_item(item)

    def counts(self, user_id: str, now: datetime) -> InboxCounts:
        """A consistent GetItem of ``#counts``; recounted first when an item it counts may have expired since, or
        if the counts make no sense (a negative number, more unread than in total)."""
        now_s = _seconds(now)
        fresh = InboxCounts()
        for attempt in range(ATTEMPTS):
            stored = self._read(user_id, COUNTS_ID)
            if stored is None:
                return InboxCounts()
            counts = InboxCounts(
                unseen=int(stored.get("unseen", 0)),
                unread=int(stored.get("unread", 0)),
                total=int(stored.get("total", 0)),
            )
            oldest = stored.get("oldest_expiry")
            if (oldest is None or now_s < int(oldest)) and _sane(counts):
                return counts
            fresh, next_expiry = self._recount(user_id, now_s)
            if self._write_counts(user_id, stored, fresh, next_expiry, now_s):
                return fresh
            self._back_off(attempt)
        return fresh  # the counts kept changing under the recount: the last recount was exact when it was made

    def page(
        self, user_id: str, status: InboxFilter, limit: int, cursor: Optional[str], now: datetime
    ) -> tuple[list[InboxItem], Optional[str]]:
        """Query the user's partition newest first, filtered on ``status`` and expiry, until ``limit`` items match,
        the partition ends, or :data:`ROUNDS` queries were made (then what was found, and a cursor)."""
        limit = max(1, limit)
        start = self._cursors.decode(cursor)
        if start is not None and (set(start) != {"user_id", "item_id"} or start["user_id"] != {"S": user_id}):
            raise ValidationFailed([FieldError("cursor", "not a cursor of this inbox")])
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "user_id = :user AND item_id > :counts",
            "FilterExpression": f"({_STATUS_FILTERS[status]}) AND #ttl > :now",
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": expression_values(
                {":user": user_id, ":counts": COUNTS_ID, ":now": _seconds(now)}
            ),
            "ScanIndexForward": False,
            # The listing answers with the counts, read consistently: an eventually consistent page could still show
            # an item as unread right after it was marked, beside counts that no longer count it.
            "ConsistentRead": True,
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        found: list[dict[str, Any]] = []
        last: Optional[Mapping[str, Any]] = None
        for round_ in range(ROUNDS):
            # The first round reads as many as asked for; a filter that drops many makes later rounds read more.
            kwargs["Limit"] = min(MAX_READ, (limit - len(found)) * 2**round_)
            resp = call("list the inbox", self._client.query, **kwargs)
            found += [from_item(raw) for raw in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            if len(found) >= limit or not last:
                break
            kwargs["ExclusiveStartKey"] = last
        if len(found) > limit:  # the last round read past the page: the next one starts after its last item
            found = found[:limit]
            last = to_item(_key(user_id, found[-1]["item_id"]))
        return [_inbox_item(it) for it in found], self._cursors.encode(last)

    # -- steps ----------------------------------------------------------------------

    def _mark(
        self, user_id: str, item_id: str, action: InboxAction, at: datetime, before_read: Optional[BeforeRead] = None
    ) -> tuple[Optional[InboxItem], bool]:
        """The item as stored after ``action`` (None if missing or expired), and whether this call changed it;
        ``before_read`` is told once, before the first write that would read the item."""
        if not ITEM_ID.fullmatch(item_id):
            return None, False
        now = _seconds(at)
        for attempt in range(ATTEMPTS):
            item = self._read(user_id, item_id)
            if item is None or int(item["ttl"]) <= now:
                return None, False
            marked, mark = _inbox_item(item).marked(action, iso(at))
            if mark is None:
                return marked, False
            if before_read is not None and "read_at" in mark.sets:
                before_read([_job_of(item)])
                before_read = None
            ttl = int(item["ttl"])
            reasons = self._transact(
                f"mark an inbox item {action.value}",
                [self._item_update(user_id, item, mark, iso(at)), self._counts_update(user_id, [mark], ttl)],
            )
            if reasons is None:
                return marked, True
            if reasons[1] == "ConditionalCheckFailed":
                return None, False  # a recount already treated the item as expired (its clock is ahead of ours)
            if reasons[0] != "ConditionalCheckFailed":
                self._back_off(attempt)  # a conflicting transaction, or throttled: wait a moment
        raise StoreUnavailable("cannot mark the inbox item: it kept changing")

    def _read_chunk(self, user_id: str, chunk: Sequence[Mapping[str, Any]], at: datetime) -> bool:
        """Mark up to 99 unread items read in one transaction; False if it was cancelled (nothing written)."""
        marks = [(it, _mark_of(it, InboxAction.READ)) for it in chunk]
        actions = [self._item_update(user_id, it, mark, iso(at)) for it, mark in marks if mark is not None]
        counted = [mark for _, mark in marks if mark is not None]
        if not actions:
            return True
        actions.append(self._counts_update(user_id, counted, min(int(it["ttl"]) for it in chunk)))
        return self._transact("mark the inbox read", actions) is None

    def _item_update(self, user_id: str, item: Mapping[str, Any], mark: InboxMark, at: str) -> dict[str, Any]:
        """The item's update (``mark``'s flags set to ``at`` or removed), conditioned on it existing with each flag
        as it was read, the state the mark was computed from."""
        conditions = ["attribute_exists(item_id)"]
        conditions += [f"attribute_exists({f})" if item.get(f) else f"attribute_not_exists({f})" for f in FLAGS]
        expression = ""
        if mark.sets:
            expression += "SET " + ", ".join(f"{name} = :{name}" for name in mark.sets)
        if mark.clears:
            expression += " REMOVE " + ", ".join(mark.clears)
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item(_key(user_id, item["item_id"])),
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(conditions),
        }
        if mark.sets:
            update["ExpressionAttributeValues"] = expression_values({f":{name}": at for name in mark.sets})
        return {"Update": update}

    def _counts_update(self, user_id: str, marks: Sequence[InboxMark], ttl: int) -> dict[str, Any]:
        """ADD the marks' deltas to the counts and bump their version, unless a recount already treated an item
        expiring at ``ttl`` as expired."""
        deltas = {
            "total": sum(m.total for m in marks),
            "unread": sum(m.unread for m in marks),
            "unseen": sum(m.unseen for m in marks),
            "version": 1,
        }
        kept = {k: v for k, v in deltas.items() if v}
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_item(_key(user_id, COUNTS_ID)),
                "UpdateExpression": "ADD " + ", ".join(f"#{k} :{k}" for k in kept),
                "ConditionExpression": "attribute_not_exists(reconciled_at) OR reconciled_at < :ttl",
                "ExpressionAttributeNames": {f"#{k}": k for k in kept},
                "ExpressionAttributeValues": expression_values({**{f":{k}": v for k, v in kept.items()}, ":ttl": ttl}),
            }
        }

    def _recount(self, user_id: str, now: int) -> tuple[InboxCounts, Optional[int]]:
        """Count the user's live items not archived, and the earliest ttl among them."""
        live = self._query_all(user_id, "attribute_not_exists(archived_at) AND #ttl > :now", {":now": now})
        counts = InboxCounts(
            unseen=sum(1 for it in live if not it.get("seen_at")),
            unread=sum(1 for it in live if not it.get("read_at")),
            total=len(live),
        )
        return counts, min((int(it["ttl"]) for it in live), default=None)

    def _write_counts(
        self, user_id: str, stored: Mapping[str, Any], counts: InboxCounts, expiry: Optional[int], now: int
    ) -> bool:
        """Replace the counts with a recount, conditioned on the version they were read at; False if it moved."""
        values: dict[str, Any] = {
            ":total": counts.total,
            ":unread": counts.unread,
            ":unseen": counts.unseen,
            ":at": max(now, int(stored.get("reconciled_at", 0))),
            ":one": 1,
        }
        sets = ["#total = :total", "unread = :unread", "unseen = :unseen", "reconciled_at = :at"]
        if expiry is not None:
            sets.append("oldest_expiry = :expiry")
            values[":expiry"] = expiry
        expression = "SET " + ", ".join(sets) + " ADD version :one"
        if expiry is None:
            expression += " REMOVE oldest_expiry"
        if "version" in stored:
            condition = "version = :version"
            values[":version"] = int(stored["version"])
        else:
            condition = "attribute_not_exists(version)"
        reasons = self._transact(
            "recount the inbox",
            [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item(_key(user_id, COUNTS_ID)),
                        "UpdateExpression": expression,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#total": "total"},
                        "ExpressionAttributeValues": expression_values(values),
                    }
                }
            ],
        )
        return reasons is None

    def _query_all(
        self, user_id: str, filter_expression: str, values: Mapping[str, Any], jobs: bool = False
    ) -> list[dict[str, Any]]:
        """Every item of the user's partition matching the filter: keys, flags and ttl only (and, with ``jobs``, its
        job's id and event type), read consistently."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "user_id = :user AND item_id > :counts",
            "FilterExpression": filter_expression,
            "ProjectionExpression": ", ".join(["item_id", *FLAGS, "#ttl", *(("job_id", "event_type") if jobs else ())]),
            "ExpressionAttributeNames": _NAMES,
            "ExpressionAttributeValues": expression_values({":user": user_id, ":counts": COUNTS_ID, **values}),
            "ConsistentRead": True,
        }
        out: list[dict[str, Any]] = []
        while True:
            resp = call("read the inbox", self._client.query, **kwargs)
            out += [from_item(raw) for raw in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _read(self, user_id: str, item_id: str) -> Optional[dict[str, Any]]:
        resp = call(
            "read the inbox",
            self._client.get_item,
            TableName=self._table,
            Key=to_item(_key(user_id, item_id)),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def _transact(self, what: str, actions: list[dict[str, Any]]) -> Optional[list[str]]:
        return transact(what, self._client, actions)

    def _back_off(self, attempt: int) -> None:
        self._sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


def _key(user_id: str, item_id: str) -> dict[str, str]:
    return {"user_id": user_id, "item_id": item_id}


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def _sane(counts: InboxCounts) -> bool:
    return 0 <= counts.unread <= counts.total and 0 <= counts.unseen <= counts.total


def _stored(item: InboxItem) -> dict[str, Any]:
    """The DynamoDB attributes of an item: ``data`` as a JSON string, so any payload round-trips."""
    expires = datetime.fromisoformat(item.expires_at)
    return {
        **_key(item.user_id, item.id),
        "job_id": item.job_id,
        "event_type": item.event_type,
        "created_at": item.created_at,
        "expires_at": item.expires_at,
        "title": item.title,
        "body": item.body,
        "data": json.dumps(item.data, ensure_ascii=False, separators=(",", ":")),
        "seen_at": item.seen_at,
        "read_at": item.read_at,
        "archived_at": item.archived_at,
        "ttl": math.ceil(expires.timestamp()),  # never hidden before its expires_at
    }


def _inbox_item(item: Mapping[str, Any]) -> InboxItem:
    return InboxItem(
        id=item["item_id"],
        user_id=item["user_id"],
        job_id=item["job_id"],
        event_type=item["event_type"],
        created_at=item["created_at"],
        expires_at=item["expires_at"],
        title=item.get("title"),
        body=item.get("body"),
        data=json.loads(item["data"]) if item.get("data") else {},
        seen_at=item.get("seen_at"),
        read_at=item.get("read_at"),
        archived_at=item.get("archived_at"),
    )


def _job_of(item: Mapping[str, Any]) -> dict[str, str]:
    """The job of a stored item, read whole or by :meth:`DynamoInboxStore._query_all`, as ``before_read`` is told."""
    return {"job_id": str(item["job_id"]), "event_type": str(item["event_type"])}


def _mark_of(item: Mapping[str, Any], action: InboxAction) -> Optional[InboxMark]:
    """What ``action`` does to a stored item, read whole or (by :meth:`DynamoInboxStore._query_all`) its flags only."""
    seen, read, archived = (bool(item.get(f)) for f in FLAGS)
    return inbox_mark(action, seen=seen, read=read, archived=archived)

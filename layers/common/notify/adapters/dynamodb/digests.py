"""Digest buckets (DigestStore) in NotificationsTable, beside the jobs they collect.

Keys (``pk``, ``sk``):

- ``DIG#<group key>``, ``HEAD``: the group's open bucket: ``gen`` (its generation), ``n`` (its members so far),
  ``flush_at``, ``first_at``, ``last_at`` and its owner (user, event type, channel, the rule's ``max_items``)
- ``DIG#<bucket id>``, ``M#<occurred at>#<job id>``: one member, its payload as JSON (oldest first in a query)
- ``DIG#<bucket id>``, ``BUCKET``: a closed bucket: its count, first and last times, owner and when it closed
- ``DIG#<group key>``, ``DUE#<generation>``: an open bucket's entry in the ``by-user`` index as ``gsi1pk``
  ``DIGEST-DUE#<shard>`` (notify.digests.due_shard), ``gsi1sk`` ``<flush at>#<group key>#<generation>``, and
  ``swept`` when its window is longer than the delay queue's 15 minutes: the scheduler's sweep queues those, and any
  bucket still open well after its time (a flush task lost); closing deletes it

Adding a member is one transaction of three writes: the head's count (on condition that its generation is still the
one read), the member (on condition it is new) and the job's ``DIGESTED`` entry (on condition its lease is still the
worker's); the member that opens a bucket adds its due entry as a fourth. Closing is one conditional UpdateItem of the
head (its generation still the one read, with a member), which moves it to the next generation and returns the count
it held at that instant: no member joins the generation after it, so the count is exact, and no stream of members
can hold the close off. The closed bucket's record (with its oldest and newest member's times, two one-item
queries: members are collected concurrently, so the head's first and last writers need not be them) is written
after it and the due entry deleted; a worker stopped in between leaves that to the next close of the same task,
which counts the members (final by then). Every item expires (``ttl``) RETENTION after its last write.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import (
    call,
    conditional,
    conditional_update,
    expression_values,
    from_item,
    query_all,
    to_item,
    transact,
)
from notify.adapters.dynamodb.status_items import RETENTION, StatusTable, get_item
from notify.clock import iso
from notify.digests import bucket_id, due_shard
from notify.errors import FieldError, StoreUnavailable, ValidationFailed
from notify.models import NotificationJob, Status
from notify.records import AddOutcome, BucketHead, BucketOwner, ClosedBucket, DigestMember, DueBucket

if TYPE_CHECKING:
    from notify.ports import DigestReads, DigestStore

# Closing retries while members keep joining the bucket it read (each retry reads the head again).
CLOSE_TRIES = 10
_NAMES = {"#gen": "gen", "#n": "n", "#ttl": "ttl"}


def _head_key(group_key: str) -> dict[str, str]:
    return {"pk": f"DIG#{group_key}", "sk": "HEAD"}


def _closed_key(bucket: str) -> dict[str, str]:
    return {"pk": f"DIG#{bucket}", "sk": "BUCKET"}


class DynamoDigestStore(StatusTable):
    """Digest buckets; see the module for the layout. Implements DigestStore, and DigestReads (the status reads,
    built with the API's cursor codec)."""

    def head(self, group_key: str) -> Optional[BucketHead]:
        """The group's head (a consistent GetItem), or None."""
        item = get_item(self._client, self._table, _head_key(group_key))
        if item is None:
            return None
        return BucketHead(group_key, int(item["gen"]), int(item.get("n", 0)), item.get("flush_at"))

    def add(
        self,
        head: BucketHead,
        owner: BucketOwner,
        member: DigestMember,
        job: NotificationJob,
        token: str,
        now: datetime,
        detail: dict[str, Any],
        swept: bool = False,
    ) -> tuple[AddOutcome, int]:
        """One transaction of the head, the member and the job's entry (see the module). The count after it is the
        head's as read plus one: concurrent members may make it more, never less."""
        bucket = bucket_id(head.group_key, head.generation)
        ttl = int(now.timestamp() + RETENTION.total_seconds())
        entry: dict[str, Any] = {"status": Status.DIGESTED.value, "at": iso(now), "attempt": job.attempt}
        entry["detail"] = detail
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_item(_head_key(head.group_key)),
                    "UpdateExpression": (
                        "SET #gen = :gen, #n = if_not_exists(#n, :zero) + :one, "
                        "flush_at = if_not_exists(flush_at, :flush), first_at = if_not_exists(first_at, :at), "
                        "last_at = :at, user_id = :user, event_type = :type, channel = :channel, "
                        "max_items = if_not_exists(max_items, :max), contact = :contact, #ttl = :ttl"
                    ),
                    "ConditionExpression": "attribute_not_exists(pk) OR #gen = :gen",
                    "ExpressionAttributeNames": _NAMES,
                    "ExpressionAttributeValues": expression_values(
                        {
                            ":gen": head.generation,
                            ":zero": 0,
                            ":one": 1,
                            ":flush": head.flush_at,
                            ":at": member.occurred_at,
                            ":user": owner.user_id,
                            ":type": owner.event_type,
                            ":channel": owner.channel,
                            ":max": owner.max_items,
                            ":contact": owner.contact,
                            ":ttl": ttl,
                        }
                    ),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(
                        {
                            "pk": f"DIG#{bucket}",
                            "sk": f"M#{member.occurred_at}#{member.job_id}",
                            "job_id": member.job_id,
                            "occurred_at": member.occurred_at,
                            "payload": json.dumps(member.payload, separators=(",", ":"), ensure_ascii=False),
                            "ttl": ttl,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                # The job's DIGESTED entry, as JobLedger.transition writes a final status. A DIGESTED job is never
                # written again, so its history may pass MAX_HISTORY by this one entry.
                "Update": {
                    "TableName": self._table,
                    "Key": to_item({"pk": f"JOB#{job.job_id}", "sk": "JOB"}),
                    "UpdateExpression": (
                        "SET #s = :s, updated_at = :now, history = list_append(history, :entry) "
                        "REMOVE lease_token, lease_until"
                    ),
                    "ConditionExpression": "lease_token = :token",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": expression_values(
                        {":s": Status.DIGESTED.value, ":now": iso(now), ":entry": [entry], ":token": token}
                    ),
                }
            },
        ]
        if head.count == 0 and head.flush_at is not None:
            actions.append({"Put": {"TableName": self._table, "Item": to_item(_due_item(head, swept, ttl))}})
        reasons = transact("add a member to a digest", self._client, actions)
        if reasons is None:
            return AddOutcome.ADDED, head.count + 1
        if reasons[2] == "ConditionalCheckFailed" or reasons[1] == "ConditionalCheckFailed":
            return AddOutcome.NOT_OURS, 0
        return AddOutcome.CLOSED, 0  # the head moved on, or a write to it was under way: read it again

    def close(self, group_key: str, generation: int, now: datetime) -> Optional[ClosedBucket]:
        """One conditional UpdateItem moves the head past ``generation`` and returns what it held (its count as it
        stood at that instant: no member joins the generation after it); the closed bucket's record is then written
        and its due entry deleted. A close that finds the head moved on already finishes that work if a worker
        stopped before it: the members are final by then, so they are counted (see the module)."""
        bucket = bucket_id(group_key, generation)
        for _ in range(CLOSE_TRIES):
            item = get_item(self._client, self._table, _head_key(group_key))
            if item is None or int(item["gen"]) < generation:
                return None
            if int(item["gen"]) > generation:
                return self.closed(bucket) or self._finish(bucket, group_key, generation, _owner(item), None, now)
            if int(item.get("n", 0)) == 0:
                return None
            old = self._move_head(group_key, generation, now)
            if old is not None:
                return self._finish(bucket, group_key, generation, _owner(old), int(old["n"]), now)
        raise StoreUnavailable(f"digest bucket {bucket} kept changing while it was being closed")

    def _move_head(self, group_key: str, generation: int, now: datetime) -> Optional[dict[str, Any]]:
        """The head moved to the next generation if it still has ``generation`` and a member: the head as it stood
        (``ReturnValues=ALL_OLD``), or None if it had changed (read it again)."""
        applied, old = conditional_update(
            "close a digest bucket",
            self._client,
            TableName=self._table,
            Key=to_item(_head_key(group_key)),
            UpdateExpression="SET #gen = :next, #ttl = :ttl REMOVE #n, flush_at, first_at, last_at",
            ConditionExpression="#gen = :gen AND #n > :zero",
            ExpressionAttributeNames=_NAMES,
            ExpressionAttributeValues=expression_values(
                {
                    ":gen": generation,
                    ":next": generation + 1,
                    ":zero": 0,
                    ":ttl": int(now.timestamp() + RETENTION.total_seconds()),
                }
            ),
            ReturnValues="ALL_OLD",
        )
        return old if applied else None

    def _finish(
        self,
        bucket: str,
        group_key: str,
        generation: int,
        owner: BucketOwner,
        count: Optional[int],
        now: datetime,
    ) -> Optional[ClosedBucket]:
        """Write a closed bucket's record (its count as the close took it, else counted from its members: final
        once the head has moved on) with its oldest and newest member's times, and delete its due entry. None for
        a generation with no member."""
        if count is None:
            count = self._count(bucket)
        first, last = self._edge(bucket, forward=True), self._edge(bucket, forward=False)
        if not count or first is None or last is None:
            return None
        closed = ClosedBucket(bucket, owner, count, first, last, iso(now))
        ttl = int(now.timestamp() + RETENTION.total_seconds())
        item = to_item({**_closed_key(bucket), **_closed_item(closed), "ttl": ttl})
        if not conditional(
            "record a closed digest bucket",
            self._client.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        ):
            return self.closed(bucket)  # another worker's close got there first: its record stands
        call(
            "delete a digest's due entry",
            self._client.delete_item,
            TableName=self._table,
            Key=to_item(_due_key(group_key, generation)),
        )
        return closed

    def _count(self, bucket: str) -> int:
        """How many members a bucket holds (a consistent COUNT query, every page)."""
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :m)",
            "ExpressionAttributeValues": expression_values({":pk": f"DIG#{bucket}", ":m": "M#"}),
            "ConsistentRead": True,
            "Select": "COUNT",
        }
        while True:
            resp = call("count a digest's members", self._client.query, **kwargs)
            total += int(resp.get("Count", 0))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def due(
        self, shard: int, until: datetime, after: Optional[datetime] = None, swept_only: bool = False
    ) -> list[DueBucket]:
        """A query of the ``by-user`` index's ``DIGEST-DUE#<shard>`` partition, after ``after`` (if given) up to
        ``until``, every page; ``swept_only``: only the windows too long for the delay queue."""
        values: dict[str, Any] = {":pk": f"DIGEST-DUE#{shard}", ":until": f"{iso(until)}~"}
        condition = "gsi1pk = :pk AND gsi1sk <= :until"
        if after is not None:
            values[":after"] = f"{iso(after)}~"
            condition = "gsi1pk = :pk AND gsi1sk BETWEEN :after AND :until"
        kwargs: dict[str, Any] = {}
        if swept_only:
            kwargs["FilterExpression"] = "swept = :swept"
            values[":swept"] = True
        items = query_all(
            "read the digests due",
            self._client,
            TableName=self._table,
            IndexName="by-user",
            KeyConditionExpression=condition,
            ExpressionAttributeValues=expression_values(values),
            **kwargs,
        )
        return [DueBucket(item["group_key"], int(item["gen"]), item["flush_at"]) for item in items]

    def members(self, bucket_id: str, limit: int) -> list[DigestMember]:
        """A consistent query of the bucket's partition, oldest first, paged until ``limit``."""
        items = query_all(
            "read a digest's members",
            self._client,
            limit=limit,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
            ExpressionAttributeValues=expression_values({":pk": f"DIG#{bucket_id}", ":m": "M#"}),
            ConsistentRead=True,
        )
        return [_member(item) for item in items]

    def _edge(self, bucket: str, *, forward: bool) -> Optional[str]:
        """The time of the bucket's oldest (``forward``) or newest member."""
        resp = call(
            "read a digest's members",
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :m)",
            ExpressionAttributeValues=expression_values({":pk": f"DIG#{bucket}", ":m": "M#"}),
            ConsistentRead=True,
            ScanIndexForward=forward,
            Limit=1,
            ProjectionExpression="occurred_at",
        )
        items = resp.get("Items", [])
        return str(from_item(items[0])["occurred_at"]) if items else None

    def closed(self, bucket_id: str) -> Optional[ClosedBucket]:
        """The bucket's closed record (a consistent GetItem), or None."""
        item = get_item(self._client, self._table, _closed_key(bucket_id))
        if item is None:
            return None
        return ClosedBucket(
            bucket_id, _owner(item), int(item["n"]), item["first_at"], item["last_at"], item["closed_at"]
        )

    def member_page(
        self, bucket_id: str, limit: int, cursor: Optional[str] = None
    ) -> tuple[list[DigestMember], Optional[str]]:
        """One consistent query of the bucket's members, oldest first; the cursor is signed (the API's store) and
        names a member of this bucket, or it is a 422 on ``cursor`` before DynamoDB sees it."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :m)",
            "ExpressionAttributeValues": expression_values({":pk": f"DIG#{bucket_id}", ":m": "M#"}),
            "ConsistentRead": True,
            "Limit": limit,
        }
        start = self._cursors.decode(cursor)
        if start is not None:
            key = from_item(start)
            if set(key) != {"pk", "sk"} or key["pk"] != f"DIG#{bucket_id}" or not str(key["sk"]).startswith("M#"):
                raise ValidationFailed([FieldError("cursor", "not a cursor of this digest's members")])
            kwargs["ExclusiveStartKey"] = start
        resp = call("read a digest's members", self._client.query, **kwargs)
        found = [_member(from_item(raw)) for raw in resp.get("Items", [])]
        return found, self._cursors.encode(resp.get("LastEvaluatedKey"))


def _due_key(group_key: str, generation: int) -> dict[str, str]:
    return {"pk": f"DIG#{group_key}", "sk": f"DUE#{generation}"}


def _due_item(head: BucketHead, swept: bool, ttl: int) -> dict[str, Any]:
    """An open bucket's entry in the due index (``by-user``, partition ``DIGEST-DUE#<shard>``, sorted by time);
    ``swept``: its window is too long for the delay queue, so the sweep queues its flush."""
    return {
        "swept": swept,
        **_due_key(head.group_key, head.generation),
        "gsi1pk": f"DIGEST-DUE#{due_shard(head.group_key)}",
        "gsi1sk": f"{head.flush_at}#{head.group_key}#{head.generation}",
        "group_key": head.group_key,
        "gen": head.generation,
        "flush_at": head.flush_at,
        "ttl": ttl,
    }


def _owner(item: dict[str, Any]) -> BucketOwner:
    return BucketOwner(
        item["user_id"], item["event_type"], item["channel"], int(item["max_items"]), item.get("contact")
    )


def _member(item: dict[str, Any]) -> DigestMember:
    return DigestMember(item["job_id"], item["occurred_at"], json.loads(item["payload"]))


def _closed_item(closed: ClosedBucket) -> dict[str, Any]:
    return {
        "contact": closed.owner.contact,
        "user_id": closed.owner.user_id,
        "event_type": closed.owner.event_type,
        "channel": closed.owner.channel,
        "max_items": closed.owner.max_items,
        "n": closed.count,
        "first_at": closed.first_at,
        "last_at": closed.last_at,
        "closed_at": closed.closed_at,
    }


if TYPE_CHECKING:

    def _plays(store: DynamoDigestStore) -> DigestStore:
        return store

    def _reads(store: DynamoDigestStore) -> DigestReads:
        return store

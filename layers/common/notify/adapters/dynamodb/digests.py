"""Digest buckets (DigestStore) in NotificationsTable, beside the jobs they collect.

Keys (``pk``, ``sk``):

- ``DIG#<group key>``, ``HEAD``: the group's open bucket: ``gen`` (its generation), ``n`` (its members so far),
  ``flush_at``, ``first_at``, ``last_at`` and its owner (user, event type, channel, the rule's ``max_items``)
- ``DIG#<bucket id>``, ``M#<occurred at>#<job id>``: one member, its payload as JSON (oldest first in a query)
- ``DIG#<bucket id>``, ``BUCKET``: a closed bucket: its count, first and last times, owner and when it closed
- ``DIG#<group key>``, ``DUE#<generation>``: an open bucket whose window is longer than the delay queue's 15
  minutes, in the ``by-user`` index as ``gsi1pk`` ``DIGEST-DUE#<shard>`` (notify.digests.due_shard), ``gsi1sk``
  ``<flush at>#<group key>#<generation>``: the scheduler's sweep finds it there, and closing deletes it

Adding a member is one transaction of three writes: the head's count (on condition that its generation is still the
one read), the member (on condition it is new) and the job's ``DIGESTED`` entry (on condition its lease is still the
worker's); the member that opens a long window's bucket adds its due entry as a fourth. Closing reads the head and
the bucket's oldest and newest member (two queries of one item: members are collected concurrently, so the head's
first and last writers need not be them), then is one transaction too: the head moves to the next generation (on
condition that it still has the generation and count read), the closed bucket is written with that count and the due
entry is deleted, so no member can join a bucket after its count was taken. Every item expires (``ttl``) RETENTION
after its last write.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import call, expression_values, from_item, query_all, to_item, transact
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
        indexed: bool = False,
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
        if indexed and head.count == 0 and head.flush_at is not None:
            actions.append({"Put": {"TableName": self._table, "Item": to_item(_due_item(head, ttl))}})
        reasons = transact("add a member to a digest", self._client, actions)
        if reasons is None:
            return AddOutcome.ADDED, head.count + 1
        if reasons[2] == "ConditionalCheckFailed" or reasons[1] == "ConditionalCheckFailed":
            return AddOutcome.NOT_OURS, 0
        return AddOutcome.CLOSED, 0  # the head moved on, or a write to it was under way: read it again

    def close(self, group_key: str, generation: int, now: datetime) -> Optional[ClosedBucket]:
        """A consistent read of the head, then one transaction conditioned on it (see the module), again while
        members keep joining; StoreUnavailable after CLOSE_TRIES such races (the task's record is retried)."""
        bucket = bucket_id(group_key, generation)
        for _ in range(CLOSE_TRIES):
            item = get_item(self._client, self._table, _head_key(group_key))
            if item is None or int(item["gen"]) < generation:
                return None
            if int(item["gen"]) > generation:
                return self.closed(bucket)
            count = int(item.get("n", 0))
            if count == 0:
                return None
            # The oldest and the newest member, not the head's first and last writers (members are collected
            # concurrently): their own query, each of one item; a member added meanwhile fails the close's condition.
            first, last = self._edge(bucket, forward=True), self._edge(bucket, forward=False)
            closed = ClosedBucket(
                bucket,
                _owner(item),
                count,
                first or item["first_at"],
                last or item["last_at"],
                iso(now),
            )
            ttl = int(now.timestamp() + RETENTION.total_seconds())
            actions: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_item(_head_key(group_key)),
                        "UpdateExpression": "SET #gen = :next, #ttl = :ttl REMOVE #n, flush_at, first_at, last_at",
                        "ConditionExpression": "#gen = :gen AND #n = :n",
                        "ExpressionAttributeNames": _NAMES,
                        "ExpressionAttributeValues": expression_values(
                            {":gen": generation, ":next": generation + 1, ":n": count, ":ttl": ttl}
                        ),
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_item({**_closed_key(bucket), **_closed_item(closed), "ttl": ttl}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {"Delete": {"TableName": self._table, "Key": to_item(_due_key(group_key, generation))}},
            ]
            if transact("close a digest bucket", self._client, actions) is None:
                return closed
        raise StoreUnavailable(f"digest bucket {bucket} kept changing while it was being closed")

    def due(self, shard: int, until: datetime) -> list[DueBucket]:
        """A query of the ``by-user`` index's ``DIGEST-DUE#<shard>`` partition up to ``until``, every page."""
        items = query_all(
            "read the digests due",
            self._client,
            TableName=self._table,
            IndexName="by-user",
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk <= :until",
            ExpressionAttributeValues=expression_values({":pk": f"DIGEST-DUE#{shard}", ":until": f"{iso(until)}~"}),
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


def _due_item(head: BucketHead, ttl: int) -> dict[str, Any]:
    """A long window's entry in the due index (``by-user``, partition ``DIGEST-DUE#<shard>``, sorted by time)."""
    return {
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

"""Static segments and their members (CampaignsTable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import batch_write, call, conditional, expression_values, from_item, to_item
from notify.errors import NotFound
from notify.records import SegmentPage

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoSegmentStore:
    """Static segments: ``SEG#<id>`` / ``META`` and one ``USER#<user_id>`` item per member."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def create(self, segment_id: str, name: str, created_at: str) -> bool:
        """PutItem of ``SEG#<id>`` / ``META`` if absent; False if the segment exists already."""
        item = {
            "pk": f"SEG#{segment_id}",
            "sk": "META",
            "kind": "segment",
            "segment_id": segment_id,
            "name": name,
            "created_at": created_at,
        }
        return conditional(
            "create the segment",
            self._client.put_item,
            TableName=self._table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def meta(self, segment_id: str) -> Optional[dict[str, Any]]:
        """The segment's META item (name, creation time), or None if it is not a static segment."""
        resp = call(
            "read the segment",
            self._client.get_item,
            TableName=self._table,
            Key=to_item({"pk": f"SEG#{segment_id}", "sk": "META"}),
        )
        item = resp.get("Item")
        return from_item(item) if item else None

    def all(self) -> list[dict[str, Any]]:
        """Every static segment's META item (a scan filtered on ``kind``)."""
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "kind = :k",
            "ExpressionAttributeValues": expression_values({":k": "segment"}),
        }
        while True:
            resp = call("list segments", self._client.scan, **kwargs)
            out += [from_item(i) for i in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _batch(self, requests: list[dict[str, Any]]) -> None:
        batch_write(self._client, self._table, requests, "change segment members")

    def add(self, segment_id: str, user_ids: Sequence[str]) -> None:
        """Put one ``USER#<id>`` item per member (BatchWriteItem; duplicates removed)."""
        self._batch(
            [
                {"PutRequest": {"Item": to_item({"pk": f"SEG#{segment_id}", "sk": f"USER#{u}", "user_id": u})}}
                for u in dict.fromkeys(user_ids)
            ]
        )

    def remove(self, segment_id: str, user_ids: Sequence[str]) -> None:
        """Delete the members' ``USER#<id>`` items (BatchWriteItem)."""
        self._batch(
            [
                {"DeleteRequest": {"Key": to_item({"pk": f"SEG#{segment_id}", "sk": f"USER#{u}"})}}
                for u in dict.fromkeys(user_ids)
            ]
        )

    def count(self, segment_id: str) -> int:
        """The number of members (a COUNT query over the ``USER#`` items, all pages)."""
        total = 0
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :u)",
            "ExpressionAttributeValues": expression_values({":pk": f"SEG#{segment_id}", ":u": "USER#"}),
            "Select": "COUNT",
        }
        while True:
            resp = call("count the segment", self._client.query, **kwargs)
            total += int(resp.get("Count", 0))
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def delete(self, segment_id: str) -> None:
        """Remove every member, then the META item."""
        while True:
            page = self.page(segment_id, None, 500)
            self.remove(segment_id, page.user_ids)
            if not page.next_cursor:
                break
        self._batch([{"DeleteRequest": {"Key": to_item({"pk": f"SEG#{segment_id}", "sk": "META"})}}])

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        """Up to ``limit`` members after ``cursor`` (the last user id of the previous page)."""
        if cursor is None and self.meta(segment_id) is None:
            raise NotFound(f"segment {segment_id} is not a static segment")
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :u)",
            "ExpressionAttributeValues": expression_values({":pk": f"SEG#{segment_id}", ":u": "USER#"}),
            "Limit": limit,
        }
        if cursor:
            kwargs["ExclusiveStartKey"] = to_item({"pk": f"SEG#{segment_id}", "sk": f"USER#{cursor}"})
        resp = call("read the segment", self._client.query, **kwargs)
        users = [from_item(i)["user_id"] for i in resp.get("Items", [])]
        more = "LastEvaluatedKey" in resp and len(users) == limit
        return SegmentPage(users, users[-1] if more and users else None)

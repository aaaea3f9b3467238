"""Short links (LinksTable): one item per code, ``ttl`` at its expiry, so DynamoDB deletes it a while after."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import batch_write, call, conditional, expression_values, from_item, to_item
from notify.records import ShortLink

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoLinkStore:
    """``code`` → the link: its URL, expiry, and its job and user (a template's) or maker and clicks (the API's)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def put_links(self, links: Sequence[ShortLink]) -> None:
        """BatchWriteItem of PutRequests: one write a link, the same item again when a job is rendered again."""
        requests = [{"PutRequest": {"Item": to_item(_item(link))}} for link in links]
        batch_write(self._client, self._table, requests, "store short links")

    def create(self, link: ShortLink) -> bool:
        """PutItem conditional on the code being new."""
        return conditional(
            "store a short link",
            self._client.put_item,
            TableName=self._table,
            Item=to_item(_item(link)),
            ConditionExpression="attribute_not_exists(code)",
        )

    def get(self, code: str) -> Optional[ShortLink]:
        """A consistent GetItem: a link is followed moments after the message carrying it went out."""
        resp = call(
            "read a short link",
            self._client.get_item,
            TableName=self._table,
            Key=to_item({"code": code}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return _link(from_item(item)) if item else None

    def count_click(self, code: str, at: str) -> bool:
        """One UpdateItem: ``ADD clicks 1`` and ``first_click_at`` if it has none, if the link exists."""
        return conditional(
            "count a click",
            self._client.update_item,
            TableName=self._table,
            Key=to_item({"code": code}),
            UpdateExpression="SET first_click_at = if_not_exists(first_click_at, :at) ADD clicks :one",
            ConditionExpression="attribute_exists(code)",
            ExpressionAttributeValues=expression_values({":at": at, ":one": 1}),
        )


def _item(link: ShortLink) -> dict[str, Any]:
    return {
        "code": link.code,
        "url": link.url,
        "expires_at": link.expires_at,
        "ttl": int(datetime.fromisoformat(link.expires_at).timestamp()),
        "job_id": link.job_id,
        "user_id": link.user_id,
        "created_by": link.created_by,
        "created_at": link.created_at,
    }


def _link(item: dict[str, Any]) -> ShortLink:
    return ShortLink(
        code=item["code"],
        url=item["url"],
        expires_at=item["expires_at"],
        job_id=item.get("job_id"),
        user_id=item.get("user_id"),
        created_by=item.get("created_by"),
        created_at=item.get("created_at"),
        clicks=int(item.get("clicks", 0)),
        first_click_at=item.get("first_click_at"),
    )

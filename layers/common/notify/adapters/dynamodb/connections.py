"""Live WebSocket connections (ConnectionsTable: ``user_id`` / ``connection_id``, GSI ``by-connection``)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from notify.adapters.dynamodb.items import call, expression_values, from_item, to_item
from notify.limits import DEFAULT_MAX_CONNECTIONS
from notify.records import Connection

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoConnectionStore:
    """The ConnectionStore port: one item per connection, under its user, with ``ttl`` at its ``expires_at``.

    API Gateway closes a connection after 2 hours at most, so the record's TTL matches it; until DynamoDB deletes
    an expired record (it may take a day or two), :meth:`of_user` leaves it out. Every read of a user's records is
    one Query with ``Limit``, so a user with a flood of records cannot make it unbounded. Every failure to reach
    DynamoDB is StoreUnavailable.
    """

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def add(self, connection: Connection) -> None:
        """PutItem of the connection (a reconnect with the same id replaces it)."""
        item = {
            "user_id": connection.user_id,
            "connection_id": connection.connection_id,
            "connected_at": connection.connected_at,
            "expires_at": connection.expires_at,
            "ttl": math.ceil(datetime.fromisoformat(connection.expires_at).timestamp()),
        }
        call("record a connection", self._client.put_item, TableName=self._table, Item=to_item(item))

    def remove(self, connection_id: str, user_id: Optional[str] = None) -> None:
        """DeleteItem of the connection; without ``user_id`` (at $disconnect) its user is found through
        ``by-connection`` first.

        That index is eventually consistent: a connection recorded a moment ago may not be found there yet and is
        then left behind. That is harmless: the next post to it answers 410 Gone, which removes it, and its TTL
        deletes it within hours anyway.
        """
        users = [user_id] if user_id is not None else self._users_of(connection_id)
        for user in users:
            call(
                "forget a connection",
                self._client.delete_item,
                TableName=self._table,
                Key=to_item({"user_id": user, "connection_id": connection_id}),
            )

    def of_user(self, user_id: str, now: datetime, limit: int = DEFAULT_MAX_CONNECTIONS) -> list[Connection]:
        """One consistent Query with ``Limit``: at most ``limit`` records, expired ones left out, newest first.

        The table sorts a user's records by connection id, not by time, so with more than ``limit`` records the ones
        read are the first by id. $connect keeps a user's records at the limit (InboxService.connect), so that
        happens only while a connect is closing the oldest; whatever the partition holds, one read stays bounded.
        """
        found = [c for c in self._query(user_id, limit) if datetime.fromisoformat(c.expires_at) > now]
        return sorted(found, key=lambda c: (c.connected_at, c.connection_id), reverse=True)

    def records_of(self, user_id: str, limit: int) -> list[Connection]:
        """One consistent Query with ``Limit``: at most ``limit`` records, expired ones included."""
        return self._query(user_id, limit)

    def _query(self, user_id: str, limit: int) -> list[Connection]:
        resp = call(
            "read connections",
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="user_id = :user",
            ExpressionAttributeValues=expression_values({":user": user_id}),
            ConsistentRead=True,
            Limit=limit,
        )
        items = (from_item(raw) for raw in resp.get("Items", []))
        return [Connection(i["connection_id"], i["user_id"], i["connected_at"], i["expires_at"]) for i in items]

    def user_of(self, connection_id: str) -> Optional[str]:
        """The user of a connection, from ``by-connection`` (eventually consistent), or None."""
        users = self._users_of(connection_id)
        return users[0] if users else None

    def _users_of(self, connection_id: str) -> list[str]:
        resp = call(
            "find a connection",
            self._client.query,
            TableName=self._table,
            IndexName="by-connection",
            KeyConditionExpression="connection_id = :id",
            ExpressionAttributeValues=expression_values({":id": connection_id}),
        )
        return [str(from_item(raw)["user_id"]) for raw in resp.get("Items", [])]

"""The status items of NotificationsTable, which the event log (``events``) and the job ledger (``jobs``) share.

Their keys (``pk``, ``sk``):

- ``EVT#<locator>``, ``EVT#<event id>``: one event's record (``kind`` ``event``); ``EVT#<event id>#P<page>`` (six
  digits): one expanded page of a segment event (``kind`` ``page``)
- ``EVT#<locator>``, ``EVB#<first event id>``: many events of one batch in one item (``kind`` ``batch``)
- ``JOB#<job id>``, ``JOB``: one job's state and history, its idempotency record; in the ``by-user`` index as
  ``gsi1pk`` ``USER#<user id>``, ``gsi1sk`` ``<created at>#<job id>``

An event's job ids start with its locator (notify.jobs), so a job's event is one query away. Every item expires
(``ttl``) RETENTION after it is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.cursors import NO_PAGING, CursorCodec
from notify.adapters.dynamodb.items import call, from_item, to_item
from notify.records import JOB_RETENTION

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETENTION = JOB_RETENTION  # a job's item and an event's record expire (TTL) this long after they are made


def get_item(client: DynamoDBClient, table: str, key: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """A consistent GetItem: the item as plain data, or None."""
    resp = call("read", client.get_item, TableName=table, Key=to_item(key), ConsistentRead=True)
    item = resp.get("Item")
    return from_item(item) if item else None


class StatusTable:
    """NotificationsTable as each of its adapters holds it: the client, the table's name, and the codec that signs
    page cursors (the job reads' ``user_jobs``)."""

    def __init__(self, client: DynamoDBClient, table: str, cursors: CursorCodec = NO_PAGING) -> None:
        self._client = client
        self._table = table
        self._cursors = cursors

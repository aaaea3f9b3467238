"""Event records and the pages of segment events (NotificationsTable's ``EVT#`` items, see ``status_items``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import batch_write, call, conditional, expression_values, from_item, to_item
from notify.adapters.dynamodb.status_items import RETENTION, StatusTable, get_item
from notify.errors import Conflict
from notify.jobs import job_id as derive_job_id
from notify.jobs import locator, locator_of_job
from notify.models import Channel
from notify.records import EventRecord

if TYPE_CHECKING:
    from notify.ports import EventLog, FanoutPages

# DynamoDB items stop at 400 KB; one event's record is at most ~140 KB (1,000 ids of 128 bytes), so a chunk
# closed before it passes 250 KB leaves room for the keys and attributes.
BATCH_ITEM_BYTES = 250_000


class DynamoEventReads(StatusTable):
    """An event's record (its own item, or its entry in a batch item), the event of a job, and a segment event's
    pages: what ingest reads back and what :class:`notify.adapters.dynamodb.status.DynamoStatusReader` shows."""

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        """The event's record: its own item, or its entry in the batch item of its locator."""
        try:
            uuid.UUID(event_id)
        except ValueError:
            return None
        item = get_item(self._client, self._table, _key(event_id))
        if item:
            return _event(item)
        for record in self._query(f"EVT#{locator(event_id)}", "EVB#"):  # sent in a batch
            if record.event_id == event_id:
                return record
        return None

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]:
        """The event (or fan-out page) record whose users and channels derive ``job_id``."""
        try:
            loc = locator_of_job(job_id)
        except ValueError:
            return None
        for record in self._query(f"EVT#{loc}", "EV"):
            for uid in record.user_ids:
                for ch in record.channels:
                    if derive_job_id(record.event_id, uid, ch) == job_id:
                        return record
        return None

    def event_pages(self, event_id: str) -> list[EventRecord]:
        """A query of the event's ``#P`` page records, in page order."""
        return self._query(f"EVT#{locator(event_id)}", f"EVT#{event_id}#P")

    def _query(self, pk: str, sk_prefix: str) -> list[EventRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
            "ExpressionAttributeValues": expression_values({":pk": pk, ":sk": sk_prefix}),
        }
        out: list[EventRecord] = []
        while True:
            resp = call("read events", self._client.query, **kwargs)
            for raw in resp.get("Items", []):
                item = from_item(raw)
                if item.get("kind") == "batch":
                    out += [_event(data) for data in json.loads(item["events"])]
                else:
                    out.append(_event(item))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


class DynamoEventLog(DynamoEventReads):
    """The EventLog (ingest's events, one item each or many per batch item) and FanoutPages (one item per expanded
    page of a segment event) ports."""

    def put_event(self, record: EventRecord) -> None:
        """PutItem of the event's record if absent; Conflict if an event with this id was recorded already."""
        if not conditional(
            "record event",
            self._client.put_item,
            TableName=self._table,
            Item=to_item(_event_item(record)),
            ConditionExpression="attribute_not_exists(pk)",
        ):
            raise Conflict(f"event {record.event_id} already exists")

    def put_events(self, records: Sequence[EventRecord]) -> None:
        """Store a batch's records compactly: those sharing a locator go into one item per ~300 KB.

        A batch's event ids share a locator (see notify.jobs.new_event_id), so a
        batch of 100 events costs one write, not 100.
        """
        groups: dict[str, list[EventRecord]] = {}
        for record in records:
            groups.setdefault(locator(record.event_id), []).append(record)
        items: list[dict[str, Any]] = []
        for loc, members in groups.items():
            chunk: list[dict[str, Any]] = []
            size = 0
            for record in members:
                data = _event_data(record)
                # Measured as stored: UTF-8 bytes, and a record that would overflow the item starts the next one.
                record_size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) + 1
                if chunk and size + record_size > BATCH_ITEM_BYTES:
                    items.append(_batch_item(loc, chunk))
                    chunk, size = [], 0
                size += record_size
                chunk.append(data)
            if chunk:
                items.append(_batch_item(loc, chunk))
        batch_write(self._client, self._table, [{"PutRequest": {"Item": item}} for item in items], "record events")

    def delete_event(self, event_id: str) -> None:
        """DeleteItem of the event's own record (a batch's shared item is never deleted)."""
        call("delete event", self._client.delete_item, TableName=self._table, Key=to_item(_key(event_id)))

    def put_page(self, record: EventRecord) -> bool:
        """Record one expanded page; False if it was recorded before (the page is done)."""
        item = _event_item(record)
        item["user_ids_json"] = json.dumps(item.pop("user_ids"), separators=(",", ":"))  # one string, not 500
        return conditional(
            "record the page",
            self._client.put_item,
            TableName=self._table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def page_done(self, event_id: str, page: int) -> bool:
        """Whether the page's record item exists."""
        return get_item(self._client, self._table, _key(event_id, page)) is not None


def _key(event_id: str, page: Optional[int] = None) -> dict[str, str]:
    """The key of an event's own record, or of one of its pages."""
    sk = f"EVT#{event_id}" if page is None else f"EVT#{event_id}#P{page:06d}"
    return {"pk": f"EVT#{locator(event_id)}", "sk": sk}


def _event_data(record: EventRecord) -> dict[str, Any]:
    data = {k: v for k, v in record.__dict__.items() if v is not None}
    data["channels"] = [c.value for c in record.channels]
    return data


def _batch_item(loc: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One item holding many events' records as a JSON string: cheap to write, read whole."""
    return to_item(
        {
            "pk": f"EVT#{loc}",
            "sk": f"EVB#{events[0]['event_id']}",
            "kind": "batch",
            "events": json.dumps(events, ensure_ascii=False, separators=(",", ":")),
            "ttl": int(time.time() + RETENTION.total_seconds()),
        }
    )


def _event_item(record: EventRecord) -> dict[str, Any]:
    return {
        **_key(record.event_id, record.page),
        "kind": "event" if record.page is None else "page",
        "event_id": record.event_id,
        "event_type": record.event_type,
        "user_ids": record.user_ids,
        "channels": [c.value for c in record.channels],
        "priority": record.priority,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "send_after": record.send_after,
        "segment_id": record.segment_id,
        "page": record.page,
        # One string, not a map: cheaper to write and read back exactly as the templates saw it.
        "payload_json": None if record.payload is None else _compact(record.payload),
        "template_key": record.template_key,
        "locale": record.locale,
        "contacts_digest": record.contacts_digest,
        "ttl": int(time.time() + RETENTION.total_seconds()),
    }


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _event(item: Mapping[str, Any]) -> EventRecord:
    users = json.loads(item["user_ids_json"]) if "user_ids_json" in item else item.get("user_ids", [])
    return EventRecord(
        event_id=item["event_id"],
        event_type=item["event_type"],
        user_ids=list(users),
        channels=[Channel(c) for c in item.get("channels", [])],
        priority=item["priority"],
        created_at=item["created_at"],
        expires_at=item["expires_at"],
        send_after=item.get("send_after"),
        segment_id=item.get("segment_id"),
        page=int(item["page"]) if item.get("page") is not None else None,
        payload=json.loads(item["payload_json"]) if item.get("payload_json") else item.get("payload"),
        template_key=item.get("template_key"),
        locale=item.get("locale"),
        contacts_digest=item.get("contacts_digest"),
    )


if TYPE_CHECKING:

    def _plays(log: DynamoEventLog) -> tuple[EventLog, FanoutPages]:
        """mypy checks that the class plays the ports its docstring names."""
        return log, log

"""Status webhook endpoints and their deliveries log (issue 24).

- Endpoints: TemplatesTable, ``WEBHOOK`` / ``<webhook id>``, one item each, beside the templates and the rules.
  Their signing secrets are attributes of the item (the table is encrypted at rest); nothing here logs them: a row
  this version cannot read is logged by its sort key and a message that names fields, never values.
- Deliveries: NotificationsTable, ``WHD#<webhook id>`` / ``<at>#<message id>#<attempt>``, one item per attempt,
  expiring (``ttl``) :data:`DELIVERY_RETENTION` after the attempt; read newest first, a page at a time, under signed
  cursors (:mod:`notify.adapters.dynamodb.cursors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.cursors import NO_PAGING, CursorCodec
from notify.adapters.dynamodb.items import call, conditional_update, expression_values, from_item, to_item
from notify.adapters.dynamodb.rules import PartitionRules
from notify.errors import Conflict, FieldError, NotFound, ValidationFailed
from notify.records import WebhookDelivery, WebhookEndpoint, WebhookOutcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from notify.ports import WebhookStore

DELIVERY_RETENTION = timedelta(days=30)  # an attempt stays in its endpoint's deliveries log this long
DELIVERIES_PREFIX = "WHD#"


class DynamoWebhookStore(PartitionRules[str, WebhookEndpoint, WebhookEndpoint]):
    """The WebhookStore port. Endpoints are read all at once and cached per container for ``cache_seconds``
    (:class:`PartitionRules`, like the throttle and digest rules: the emitters read them for every status change); a
    change applies to messages from at most that long after. :meth:`get` always reads the item itself (consistent),
    and the API builds the store with ``cache_seconds=0`` so its list shows its own writes. Deliveries' pages are
    signed by ``cursors`` (the worker, which only records, needs none)."""

    PARTITION = "WEBHOOK"
    NOUN = "webhook endpoint"

    def __init__(
        self,
        client: DynamoDBClient,
        templates_table: str,
        notifications_table: str,
        cursors: CursorCodec = NO_PAGING,
        cache_seconds: float = 30.0,
    ) -> None:
        super().__init__(client, templates_table, cache_seconds)
        self._notifications = notifications_table
        self._cursors = cursors

    # -- endpoints (TemplatesTable) -----------------------------------------------------------------------------

    def put(self, endpoint: WebhookEndpoint) -> None:
        """A PutItem that replaces the endpoint with its id."""
        self._put(endpoint.webhook_id, _endpoint_item(endpoint))

    def get(self, webhook_id: str) -> Optional[WebhookEndpoint]:
        """A consistent GetItem; None if there is no endpoint (or its row cannot be read: logged, as by ``all``)."""
        resp = call(
            f"read a {self.NOUN}",
            self._client.get_item,
            TableName=self._table,
            Key=to_item({"pk": self.PARTITION, "sk": webhook_id}),
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return self._readable(from_item(item)) if item else None

    def all(self) -> list[WebhookEndpoint]:
        """Every readable endpoint, oldest first, from one Query of the partition per cache period."""
        return sorted(self._lookup().values(), key=lambda e: (e.created_at, e.webhook_id))

    def delete(self, webhook_id: str) -> bool:
        """A DeleteItem; True if there was an endpoint. Its deliveries expire with their TTL."""
        return self._delete(webhook_id)

    def change(self, webhook_id: str, expected_updated_at: str, fields: Mapping[str, Any]) -> None:
        """One UpdateItem of ``fields`` alone, conditional on the endpoint's ``updated_at`` as read."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {":expected": expected_updated_at}
        sets, removes = [], []
        for alias, name in names.items():
            value = fields[name]
            if value is None:
                removes.append(alias)
            else:
                values[f":v{alias[2:]}"] = list(value) if isinstance(value, tuple) else value
                sets.append(f"{alias} = :v{alias[2:]}")
        update = " ".join(
            part
            for part in (
                f"SET {', '.join(sets)}" if sets else "",
                f"REMOVE {', '.join(removes)}" if removes else "",
            )
            if part
        )
        applied, found = conditional_update(
            f"change a {self.NOUN}",
            self._client,
            TableName=self._table,
            Key=to_item({"pk": self.PARTITION, "sk": webhook_id}),
            UpdateExpression=update,
            ConditionExpression="attribute_exists(pk) AND updated_at = :expected",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values(values),
        )
        if not applied:
            if not found:
                raise NotFound(f"no webhook {webhook_id}")
            raise Conflict(f"webhook {webhook_id} changed meanwhile: read it again and retry")

    def mark_failing(self, webhook_id: str, since: str) -> None:
        """One conditional UpdateItem of ``failing_since`` alone: set only if the endpoint exists without it."""
        self._set(
            webhook_id,
            "SET failing_since = :since",
            "attribute_exists(pk) AND attribute_not_exists(failing_since)",
            {":since": since},
        )

    def mark_recovered(self, webhook_id: str) -> None:
        """One conditional UpdateItem removing ``failing_since`` (no item is made for a deleted endpoint)."""
        self._set(webhook_id, "REMOVE failing_since", "attribute_exists(pk)", {})

    def disable(self, webhook_id: str, reason: str, at: str) -> None:
        """One conditional UpdateItem of ``enabled``, ``disabled_reason`` and ``updated_at``, if it is enabled."""
        self._set(
            webhook_id,
            "SET enabled = :off, disabled_reason = :reason, updated_at = :at",
            "attribute_exists(pk) AND enabled = :on",
            {":off": False, ":on": True, ":reason": reason, ":at": at},
        )

    def _set(self, webhook_id: str, update: str, condition: str, values: Mapping[str, Any]) -> None:
        """An UpdateItem of the endpoint's health alone (never its URL, events or secrets, which its owner may be
        changing at the same time); a condition that does not hold writes nothing."""
        extra: dict[str, Any] = {"ExpressionAttributeValues": expression_values(values)} if values else {}
        conditional_update(
            f"update a {self.NOUN}",
            self._client,
            TableName=self._table,
            Key=to_item({"pk": self.PARTITION, "sk": webhook_id}),
            UpdateExpression=update,
            ConditionExpression=condition,
            **extra,
        )

    def _from_item(self, item: Mapping[str, Any]) -> WebhookEndpoint:
        secrets = item["secrets"]
        if not isinstance(secrets, list) or not secrets or not all(isinstance(s, str) for s in secrets):
            raise TypeError("secrets is not a list of strings")  # never the value: it is a secret
        events = item["events"]
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise TypeError("events is not a list of strings")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise TypeError("enabled is not a boolean")
        return WebhookEndpoint(
            webhook_id=_text(item, "sk"),
            url=_text(item, "url"),
            events=tuple(events),
            secrets=tuple(secrets),
            created_at=_text(item, "created_at"),
            updated_at=_text(item, "updated_at"),
            description=_optional_text(item, "description"),
            enabled=enabled,
            disabled_reason=_optional_text(item, "disabled_reason"),
            previous_until=_optional_text(item, "previous_until"),
            failing_since=_optional_text(item, "failing_since"),
        )

    def _entry(self, stored: WebhookEndpoint) -> tuple[str, WebhookEndpoint]:
        return stored.webhook_id, stored

    # -- deliveries (NotificationsTable) ------------------------------------------------------------------------

    def record(self, delivery: WebhookDelivery) -> None:
        """A PutItem of one attempt (the same attempt recorded again replaces itself)."""
        expires = datetime.fromisoformat(delivery.at) + DELIVERY_RETENTION
        item = {
            **_delivery_key(delivery.webhook_id, f"{delivery.at}#{delivery.message_id}#{delivery.attempt}"),
            "kind": "webhook_delivery",
            "webhook_id": delivery.webhook_id,
            "at": delivery.at,
            "message_id": delivery.message_id,
            "message_type": delivery.message_type,
            "attempt": delivery.attempt,
            "outcome": delivery.outcome.value,
            "status_code": delivery.status_code,
            "latency_ms": delivery.latency_ms,
            "error": delivery.error,
            "ttl": int(expires.timestamp()),
        }
        call("record a webhook delivery", self._client.put_item, TableName=self._notifications, Item=to_item(item))

    def deliveries(
        self, webhook_id: str, limit: int, cursor: Optional[str]
    ) -> tuple[list[WebhookDelivery], Optional[str]]:
        """One Query of the endpoint's partition, newest first; the cursor is signed and must be this endpoint's
        (else a 422 on ``cursor``, before DynamoDB would refuse a start key outside the partition)."""
        partition = DELIVERIES_PREFIX + webhook_id
        start = self._cursors.decode(cursor)
        if start is not None and (set(start) != {"pk", "sk"} or start["pk"] != {"S": partition}):
            raise ValidationFailed([FieldError("cursor", "not a cursor of this webhook's deliveries")])
        kwargs: dict[str, Any] = {
            "TableName": self._notifications,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": expression_values({":pk": partition}),
            "ScanIndexForward": False,
            "Limit": max(1, limit),
        }
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        resp = call("read webhook deliveries", self._client.query, **kwargs)
        found = [_delivery(from_item(raw)) for raw in resp.get("Items", [])]
        return found, self._cursors.encode(resp.get("LastEvaluatedKey"))


def _endpoint_item(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "events": list(endpoint.events),
        "secrets": list(endpoint.secrets),
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "previous_until": endpoint.previous_until,
        "failing_since": endpoint.failing_since,
    }


def _delivery_key(webhook_id: str, sort_key: str) -> dict[str, str]:
    return {"pk": DELIVERIES_PREFIX + webhook_id, "sk": sort_key}


def _delivery(item: Mapping[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        webhook_id=item["webhook_id"],
        at=item["at"],
        message_id=item["message_id"],
        message_type=item["message_type"],
        attempt=int(item["attempt"]),
        outcome=WebhookOutcome(item["outcome"]),
        status_code=item.get("status_code"),
        latency_ms=int(item["latency_ms"]),
        error=item.get("error"),
    )


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _optional_text(item: Mapping[str, Any], name: str) -> Optional[str]:
    return _text(item, name) if item.get(name) is not None else None


if TYPE_CHECKING:

    def _plays(store: DynamoWebhookStore) -> WebhookStore:
        """mypy checks that the class plays the port."""
        return store

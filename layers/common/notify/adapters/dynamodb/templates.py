"""Versioned templates (TemplatesTable; its other items are throttle rules, ``adapters.dynamodb.throttles``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import call, conditional, expression_values, from_item, to_item
from notify.errors import Conflict
from notify.models import Channel
from notify.records import Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoTemplateStore:
    """Versioned templates: ``TPL#<type>#<channel>#<locale>`` / ``V#<000001>``; the newest wins.

    ``latest`` is cached for ``cache_seconds`` per container, so a worker reads
    each template about once a minute however many jobs it renders.
    """

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, str], tuple[float, Optional[Template]]] = {}

    def latest(self, event_type: str, channel: Channel, locale: str) -> Optional[Template]:
        """The newest version (a one-item query, newest first), cached for ``cache_seconds`` per container."""
        key = (event_type, channel.value, locale)
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self._cache_seconds:
            return hit[1]
        items = self._query(_tpl_pk(*key), newest_first=True, limit=1)
        template = items[0] if items else None
        self._cache[key] = (time.monotonic(), template)
        return template

    def version(self, event_type: str, channel: Channel, locale: str, version: int) -> Optional[Template]:
        """A GetItem of ``V#<version>``."""
        key = {"pk": _tpl_pk(event_type, channel.value, locale), "sk": f"V#{version:06d}"}
        resp = call("read templates", self._client.get_item, TableName=self._table, Key=to_item(key))
        item = resp.get("Item")
        return _template(from_item(item)) if item else None

    def versions(self, event_type: str, channel: Channel, locale: str) -> list[Template]:
        """A query of every version, newest first."""
        return self._query(_tpl_pk(event_type, channel.value, locale), newest_first=True)

    def keys(self) -> list[Template]:
        """The newest version of every key (a scan: the table holds types × channels × locales)."""
        newest: dict[str, Template] = {}
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            resp = call("read templates", self._client.scan, **kwargs)
            for raw in resp.get("Items", []):
                if not raw["pk"]["S"].startswith("TPL#"):
                    continue  # another kind of item of the table (a throttle rule)
                template = _template(from_item(raw))
                current = newest.get(template.template_id)
                if current is None or template.version > current.version:
                    newest[template.template_id] = template
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return sorted(newest.values(), key=lambda t: t.template_id)

    def save(self, template: Template) -> Template:
        """Store ``template`` as the next version of its key."""
        for _ in range(5):
            current = self._query(
                _tpl_pk(template.event_type, template.channel.value, template.locale), newest_first=True, limit=1
            )
            version = (current[0].version if current else 0) + 1
            saved = Template(**{**template.__dict__, "version": version})
            item = {
                "pk": _tpl_pk(template.event_type, template.channel.value, template.locale),
                "sk": f"V#{version:06d}",
                **{k: v for k, v in saved.__dict__.items() if k != "channel"},
                "channel": template.channel.value,
            }
            if conditional(
                "save template",
                self._client.put_item,
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(sk)",
            ):
                self._cache.pop((template.event_type, template.channel.value, template.locale), None)
                return saved
        raise Conflict("the template changed concurrently; try again")

    def _query(self, pk: str, newest_first: bool, limit: Optional[int] = None) -> list[Template]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
            "ExpressionAttributeValues": expression_values({":pk": pk, ":v": "V#"}),
            "ScanIndexForward": not newest_first,
        }
        if limit:
            kwargs["Limit"] = limit
        out: list[Template] = []
        while True:
            resp = call("read templates", self._client.query, **kwargs)
            out += [_template(from_item(raw)) for raw in resp.get("Items", [])]
            if limit or "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _tpl_pk(event_type: str, channel: str, locale: str) -> str:
    return f"TPL#{event_type}#{channel}#{locale}"


def _template(item: Mapping[str, Any]) -> Template:
    return Template(
        event_type=item["event_type"],
        channel=Channel(item["channel"]),
        locale=item["locale"],
        version=int(item["version"]),
        template_id=item["template_id"],
        subject=item.get("subject"),
        body_text=item.get("body_text"),
        body_html=item.get("body_html"),
        title=item.get("title"),
        body=item.get("body"),
        created_at=item.get("created_at", ""),
        deleted=bool(item.get("deleted", False)),
    )

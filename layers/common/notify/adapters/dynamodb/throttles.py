"""Throttle rules (TemplatesTable, ``THROTTLE`` / ``<category>#<channel>``), beside the templates they limit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import call, expression_values, from_item, to_item
from notify.models import Category, Channel
from notify.resilience import TtlCache
from notify.throttles import CategoryThrottle, ThrottleRule

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

# Every rule is in one partition: a category × channel has at most one, so it holds at most a dozen small items,
# and the worker reads them all with one Query.
PARTITION = "THROTTLE"


class DynamoThrottleRules:
    """The rules, one item each. The worker's :meth:`rule` reads them all at once, cached for ``cache_seconds`` per
    container (one thread reads them again when they expire; the others wait for its answer): a rule put or deleted
    applies to deliveries from at most that long after. The API reads with ``cache_seconds=0``."""

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache: Optional[TtlCache[dict[tuple[Category, Channel], ThrottleRule]]] = (
            TtlCache(ttl_seconds=cache_seconds, max_items=1) if cache_seconds > 0 else None
        )
        self._reading = threading.Lock()

    def rule(self, category: Category, channel: Channel) -> Optional[ThrottleRule]:
        """The rule of ``category`` on ``channel``, from every rule read at once (one Query per cache period)."""
        if self._cache is None:
            return self._by_key().get((category, channel))
        rules = self._cache.get(PARTITION)
        if rules is None:
            with self._reading:
                rules = self._cache.get(PARTITION)  # another thread's read, while this one waited
                if rules is None:
                    rules = self._by_key()
                    self._cache.put(PARTITION, rules)
        return rules.get((category, channel))

    def _by_key(self) -> dict[tuple[Category, Channel], ThrottleRule]:
        return {(r.category, r.rule.channel): r.rule for r in self.all()}

    def all(self) -> list[CategoryThrottle]:
        """One Query of the rules' partition (strongly consistent: the API's GET after a PUT shows it)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": expression_values({":pk": PARTITION}),
            "ConsistentRead": True,
        }
        found: list[CategoryThrottle] = []
        while True:
            resp = call("read throttle rules", self._client.query, **kwargs)
            found += [rule for raw in resp.get("Items", []) if (rule := _readable(from_item(raw))) is not None]
            if "LastEvaluatedKey" not in resp:
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def put(self, rule: CategoryThrottle) -> None:
        """A PutItem that replaces the rule of its category and channel."""
        item = {**_key(rule.category, rule.rule.channel), **rule.view(), "kind": "throttle_rule"}
        call("store a throttle rule", self._client.put_item, TableName=self._table, Item=to_item(item))

    def delete(self, category: Category, channel: Channel) -> bool:
        """A DeleteItem; True if there was a rule."""
        resp = call(
            "delete a throttle rule",
            self._client.delete_item,
            TableName=self._table,
            Key=to_item(_key(category, channel)),
            ReturnValues="ALL_OLD",
        )
        return bool(resp.get("Attributes"))


def _key(category: Category, channel: Channel) -> dict[str, str]:
    return {"pk": PARTITION, "sk": f"{category.value}#{channel.value}"}


def _readable(item: Mapping[str, Any]) -> Optional[CategoryThrottle]:
    """The rule an item holds, or None (logged) for one this version cannot read: a row written by hand, or one whose
    category, channel or bounds have since changed. Its jobs go unthrottled until it is put again or deleted; raising
    would fail every job the worker reads the rules for."""
    try:
        return _rule(item)
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("throttle rule %r cannot be read and is ignored: %s", item.get("sk"), exc)
        return None


def _rule(item: Mapping[str, Any]) -> CategoryThrottle:
    rule = ThrottleRule.model_validate({k: item[k] for k in ("channel", "limit", "period_seconds")})
    return CategoryThrottle(Category(item["category"]), rule, item["updated_at"])

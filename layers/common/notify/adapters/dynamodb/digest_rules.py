"""Digest rules (TemplatesTable, ``DIGEST`` / ``<event_type>``), beside the templates and the throttle rules."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import call, expression_values, from_item, to_item
from notify.digests import DigestRule, StoredDigestRule
from notify.models import Channel
from notify.resilience import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

# Every rule is in one partition: an event type has at most one (its channels are in the rule), so it holds at most
# a dozen small items, and the worker reads them all with one Query.
PARTITION = "DIGEST"
RULE_FIELDS = ("event_type", "channels", "window", "key", "max_items")


class DynamoDigestRules:
    """The rules, one item each. The worker's :meth:`rule` reads them all at once, cached for ``cache_seconds`` per
    container (one thread reads them again when they expire; the others wait for its answer): a rule put or deleted
    applies to deliveries from at most that long after. The API reads with ``cache_seconds=0``."""

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache: Optional[TtlCache[dict[str, DigestRule]]] = (
            TtlCache(ttl_seconds=cache_seconds, max_items=1) if cache_seconds > 0 else None
        )
        self._reading = threading.Lock()

    def rule(self, event_type: str, channel: Channel) -> Optional[DigestRule]:
        """The rule of ``event_type`` if it covers ``channel``, from every rule read at once (one Query per cache
        period)."""
        if self._cache is None:
            rules = self._by_type()
        else:
            cached = self._cache.get(PARTITION)
            if cached is None:
                with self._reading:
                    cached = self._cache.get(PARTITION)  # another thread's read, while this one waited
                    if cached is None:
                        cached = self._by_type()
                        self._cache.put(PARTITION, cached)
            rules = cached
        found = rules.get(event_type)
        return found if found is not None and channel in found.channels else None

    def _by_type(self) -> dict[str, DigestRule]:
        return {r.rule.event_type: r.rule for r in self.all()}

    def all(self) -> list[StoredDigestRule]:
        """One Query of the rules' partition, by event type (strongly consistent: the API's GET after a PUT shows
        it)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": expression_values({":pk": PARTITION}),
            "ConsistentRead": True,
        }
        found: list[StoredDigestRule] = []
        while True:
            resp = call("read digest rules", self._client.query, **kwargs)
            found += [rule for raw in resp.get("Items", []) if (rule := _readable(from_item(raw))) is not None]
            if "LastEvaluatedKey" not in resp:
                return sorted(found, key=lambda r: r.rule.event_type)
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def put(self, rule: StoredDigestRule) -> None:
        """A PutItem that replaces the rule of its event type."""
        item = {**_key(rule.rule.event_type), **rule.view(), "kind": "digest_rule"}
        call("store a digest rule", self._client.put_item, TableName=self._table, Item=to_item(item))

    def delete(self, event_type: str) -> bool:
        """A DeleteItem; True if there was a rule."""
        resp = call(
            "delete a digest rule",
            self._client.delete_item,
            TableName=self._table,
            Key=to_item(_key(event_type)),
            ReturnValues="ALL_OLD",
        )
        return bool(resp.get("Attributes"))


def _key(event_type: str) -> dict[str, str]:
    return {"pk": PARTITION, "sk": event_type}


def _readable(item: Mapping[str, Any]) -> Optional[StoredDigestRule]:
    """The rule an item holds, or None (logged) for one this version cannot read: a row written by hand, or one whose
    event type, channels, window or bounds have since changed. Its jobs are sent one by one until it is put again or
    deleted; raising would fail every job the worker reads the rules for."""
    try:
        return _rule(item)
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        log.warning("digest rule %r cannot be read and is ignored: %s", item.get("sk"), exc)
        return None


def _rule(item: Mapping[str, Any]) -> StoredDigestRule:
    return StoredDigestRule(DigestRule.model_validate({k: item[k] for k in RULE_FIELDS}), item["updated_at"])

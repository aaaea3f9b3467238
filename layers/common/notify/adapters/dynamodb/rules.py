"""Rules kept in one partition of TemplatesTable (the throttle rules and the digest rules): one item a rule, read all
at once with one Query and cached, rows this version cannot read skipped and logged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Optional, TypeVar

from notify.adapters.dynamodb.items import call, expression_values, query_all, to_item
from notify.resilience import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

K = TypeVar("K")  # what the worker looks a rule up by
R = TypeVar("R")  # the rule it applies
S = TypeVar("S")  # the rule as stored (with what it is for and when it was put)


class PartitionRules(Generic[K, R, S]):
    """The rules of one partition (``PARTITION`` / a sort key each). :meth:`_lookup` reads them all at once, cached
    for ``cache_seconds`` per container (one thread reads them again when they expire; the others wait for its
    answer): a rule put or deleted applies to deliveries from at most that long after. The API reads with
    ``cache_seconds=0``.

    A subclass says how an item becomes a stored rule (:meth:`_from_item`, raising KeyError, TypeError or ValueError
    for one it cannot read) and what the worker looks it up by (:meth:`_entry`)."""

    PARTITION: ClassVar[str]
    NOUN: ClassVar[str]  # "throttle rule": in the log and in StoreUnavailable's "cannot …"

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache: Optional[TtlCache[dict[K, R]]] = (
            TtlCache(ttl_seconds=cache_seconds, max_items=1) if cache_seconds > 0 else None
        )
        self._reading = threading.Lock()
        self._log = logging.getLogger(type(self).__module__)

    def _lookup(self) -> dict[K, R]:
        """Every readable rule by what it is looked up by (one Query per cache period)."""
        if self._cache is None:
            return self._index()
        rules = self._cache.get(self.PARTITION)
        if rules is None:
            with self._reading:
                rules = self._cache.get(self.PARTITION)  # another thread's read, while this one waited
                if rules is None:
                    rules = self._index()
                    self._cache.put(self.PARTITION, rules)
        return rules

    def _index(self) -> dict[K, R]:
        return dict(self._entry(stored) for stored in self._stored())

    def _stored(self) -> list[S]:
        """One Query of the partition, every page (strongly consistent: the API's GET after a PUT shows it)."""
        items = query_all(
            f"read {self.NOUN}s",
            self._client,
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=expression_values({":pk": self.PARTITION}),
            ConsistentRead=True,
        )
        return [rule for item in items if (rule := self._readable(item)) is not None]

    def _readable(self, item: Mapping[str, Any]) -> Optional[S]:
        """The rule an item holds, or None (logged) for one this version cannot read: a row written by hand, or one
        whose fields or bounds have since changed. Raising would fail every job the worker reads the rules for."""
        try:
            return self._from_item(item)
        except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            self._log.warning("%s %r cannot be read and is ignored: %s", self.NOUN, item.get("sk"), exc)
            return None

    def _put(self, sort_key: str, data: Mapping[str, Any]) -> None:
        """A PutItem that replaces the rule under ``sort_key``."""
        item = {"pk": self.PARTITION, "sk": sort_key, **data, "kind": self.NOUN.replace(" ", "_")}
        call(f"store a {self.NOUN}", self._client.put_item, TableName=self._table, Item=to_item(item))

    def _delete(self, sort_key: str) -> bool:
        """A DeleteItem; True if there was a rule."""
        resp = call(
            f"delete a {self.NOUN}",
            self._client.delete_item,
            TableName=self._table,
            Key=to_item({"pk": self.PARTITION, "sk": sort_key}),
            ReturnValues="ALL_OLD",
        )
        return bool(resp.get("Attributes"))

    def _from_item(self, item: Mapping[str, Any]) -> S:
        raise NotImplementedError

    def _entry(self, stored: S) -> tuple[K, R]:
        raise NotImplementedError

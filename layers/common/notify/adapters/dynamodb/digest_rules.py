"""Digest rules (TemplatesTable, ``DIGEST`` / ``<event_type>``), beside the templates and the throttle rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from notify.adapters.dynamodb.rules import PartitionRules
from notify.digests import DigestRule, StoredDigestRule
from notify.models import Channel

RULE_FIELDS = ("event_type", "channels", "window", "key", "max_items")


class DynamoDigestRules(PartitionRules[str, DigestRule, StoredDigestRule]):
    """The rules, one item each, read all at once and cached (:class:`PartitionRules`): every rule is in one
    partition, an event type having at most one (its channels are in the rule), so it holds at most a dozen small
    items. A row this version cannot read is skipped (logged): its jobs are sent one by one until it is put again or
    deleted."""

    PARTITION = "DIGEST"
    NOUN = "digest rule"

    def rule(self, event_type: str, channel: Channel) -> Optional[DigestRule]:
        """The rule of ``event_type`` if it covers ``channel``, from every rule read at once (one Query per cache
        period)."""
        found = self._lookup().get(event_type)
        return found if found is not None and channel in found.channels else None

    def all(self) -> list[StoredDigestRule]:
        """One Query of the rules' partition, by event type (strongly consistent: the API's GET after a PUT shows
        it)."""
        return sorted(self._stored(), key=lambda r: r.rule.event_type)

    def put(self, rule: StoredDigestRule) -> None:
        """A PutItem that replaces the rule of its event type."""
        self._put(rule.rule.event_type, rule.view())

    def delete(self, event_type: str) -> bool:
        """A DeleteItem; True if there was a rule."""
        return self._delete(event_type)

    def _from_item(self, item: Mapping[str, Any]) -> StoredDigestRule:
        return StoredDigestRule(DigestRule.model_validate({k: item[k] for k in RULE_FIELDS}), item["updated_at"])

    def _entry(self, stored: StoredDigestRule) -> tuple[str, DigestRule]:
        return stored.rule.event_type, stored.rule

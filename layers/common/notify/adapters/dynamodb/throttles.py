"""Throttle rules (TemplatesTable, ``THROTTLE`` / ``<category>#<channel>``), beside the templates they limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from notify.adapters.dynamodb.rules import PartitionRules
from notify.models import Category, Channel
from notify.throttles import CategoryThrottle, ThrottleRule


class DynamoThrottleRules(PartitionRules[tuple[Category, Channel], ThrottleRule, CategoryThrottle]):
    """The rules, one item each, read all at once and cached (:class:`PartitionRules`): every rule is in one
    partition, a category × channel having at most one, so it holds at most a dozen small items. A row this version
    cannot read is skipped (logged): its jobs go unthrottled until it is put again or deleted."""

    PARTITION = "THROTTLE"
    NOUN = "throttle rule"

    def rule(self, category: Category, channel: Channel) -> Optional[ThrottleRule]:
        """The rule of ``category`` on ``channel``, from every rule read at once (one Query per cache period)."""
        return self._lookup().get((category, channel))

    def all(self) -> list[CategoryThrottle]:
        """One Query of the rules' partition (strongly consistent: the API's GET after a PUT shows it)."""
        return self._stored()

    def put(self, rule: CategoryThrottle) -> None:
        """A PutItem that replaces the rule of its category and channel."""
        self._put(_sort_key(rule.category, rule.rule.channel), rule.view())

    def delete(self, category: Category, channel: Channel) -> bool:
        """A DeleteItem; True if there was a rule."""
        return self._delete(_sort_key(category, channel))

    def _from_item(self, item: Mapping[str, Any]) -> CategoryThrottle:
        rule = ThrottleRule.model_validate({k: item[k] for k in ("channel", "limit", "period_seconds")})
        return CategoryThrottle(Category(item["category"]), rule, item["updated_at"])

    def _entry(self, stored: CategoryThrottle) -> tuple[tuple[Category, Channel], ThrottleRule]:
        return (stored.category, stored.rule.channel), stored.rule


def _sort_key(category: Category, channel: Channel) -> str:
    return f"{category.value}#{channel.value}"

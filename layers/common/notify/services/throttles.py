"""Throttle rules as the API manages them (``/api/v1/throttle-rules``): at most one per category and channel.

The worker applies them (``notify.services.delivery``); the window arithmetic is ``notify.throttles``.
"""

from __future__ import annotations

from typing import Any

from notify.clock import Clock, iso
from notify.errors import FieldError, NotFound, ValidationFailed
from notify.models import Category, Channel
from notify.ports import ThrottleRules
from notify.throttles import CategoryThrottle, ThrottleRule, throttle_category


class ThrottleService:
    """Managing throttle rules; answers are the public views (``CategoryThrottle.view``)."""

    def __init__(self, rules: ThrottleRules, clock: Clock) -> None:
        self._rules = rules
        self._clock = clock

    def put(self, category: Category | str, rule: ThrottleRule) -> dict[str, Any]:
        """Store the rule of ``category`` on ``rule.channel``, replacing the one it had: its view. ValidationFailed
        on ``category`` for account or an unknown category."""
        stored = CategoryThrottle(_category(category), rule, iso(self._clock()))
        self._rules.put(stored)
        return stored.view()

    def list(self) -> list[dict[str, Any]]:
        """Every rule, by category then channel."""
        rules = sorted(self._rules.all(), key=lambda r: (r.category.value, r.rule.channel.value))
        return [r.view() for r in rules]

    def get(self, category: Category | str, channel: Channel) -> dict[str, Any]:
        """The rule of ``category`` on ``channel``; NotFound if there is none."""
        wanted = _category(category)
        for stored in self._rules.all():
            if (stored.category, stored.rule.channel) == (wanted, channel):
                return stored.view()
        raise NotFound(f"no throttle rule for {wanted.value} on {channel.value}")

    def delete(self, category: Category | str, channel: Channel) -> None:
        """Delete the rule of ``category`` on ``channel``; NotFound if there is none."""
        wanted = _category(category)
        if not self._rules.delete(wanted, channel):
            raise NotFound(f"no throttle rule for {wanted.value} on {channel.value}")


def _category(value: Category | str) -> Category:
    """A category that takes a throttle; ValidationFailed on ``category`` otherwise."""
    try:
        return throttle_category(value.value if isinstance(value, Category) else value)
    except ValueError as exc:
        raise ValidationFailed([FieldError("category", str(exc))]) from None

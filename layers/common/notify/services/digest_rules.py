"""Digest rules as the API manages them (``/api/v1/digest-rules``): at most one per event type.

The worker applies them; buckets, windows and the digest's content are ``notify.digests``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ValidationError

from notify.catalog import EVENT_TYPES, field_errors
from notify.clock import Clock, iso
from notify.digests import DigestRule, KeyField, StoredDigestRule, Window, refuse_account
from notify.errors import FieldError, NotFound, ValidationFailed
from notify.models import Category, Channel, Strict
from notify.ports import DigestRules

_RULE = DigestRule.model_fields


class DigestRuleBody(Strict):
    """Body of ``PUT /api/v1/digest-rules/{event_type}``: the rule without its event type, which the path names.

    Each field is validated as :class:`notify.digests.DigestRule`'s; whether the ``key`` fields are in the event
    type's payload is checked with the event type (:meth:`DigestRuleService.put`).
    """

    channels: Annotated[frozenset[Channel], _RULE["channels"]]
    window: Annotated[Window, _RULE["window"]]
    key: Annotated[list[KeyField], _RULE["key"]]
    max_items: Annotated[int, _RULE["max_items"]]


def digest_event_type(value: str) -> str:
    """``value`` if it is an event type that takes a digest rule; a ValueError otherwise (the API answers 422):
    an unknown type, or an account event (``notify.digests.refuse_account``)."""
    if value not in EVENT_TYPES:
        known = ", ".join(sorted(t for t, s in EVENT_TYPES.items() if s.category is not Category.ACCOUNT))
        raise ValueError(f"unknown event type {value!r}; event types that take a digest rule: {known}")
    return refuse_account(value)


class DigestRuleService:
    """Managing digest rules; answers are the public views (``StoredDigestRule.view``)."""

    def __init__(self, rules: DigestRules, clock: Clock) -> None:
        self._rules = rules
        self._clock = clock

    def put(self, event_type: str, body: DigestRuleBody) -> dict[str, Any]:
        """Store the rule of ``event_type``, replacing the one it had: its view. ValidationFailed on ``event_type``
        for an account or unknown type, on ``key`` for a field the type's payload does not have."""
        wanted = _event_type(event_type)
        try:
            rule = DigestRule.model_validate({"event_type": wanted, **dict(body)})
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from None
        stored = StoredDigestRule(rule, iso(self._clock()))
        self._rules.put(stored)
        return stored.view()

    def list(self) -> list[dict[str, Any]]:
        """Every rule, by event type."""
        return [r.view() for r in sorted(self._rules.all(), key=lambda r: r.rule.event_type)]

    def get(self, event_type: str) -> dict[str, Any]:
        """The rule of ``event_type``; NotFound if there is none."""
        wanted = _event_type(event_type)
        for stored in self._rules.all():
            if stored.rule.event_type == wanted:
                return stored.view()
        raise NotFound(f"no digest rule for {wanted}")

    def delete(self, event_type: str) -> None:
        """Delete the rule of ``event_type``; NotFound if there is none."""
        wanted = _event_type(event_type)
        if not self._rules.delete(wanted):
            raise NotFound(f"no digest rule for {wanted}")


def _event_type(value: str) -> str:
    """An event type that takes a digest rule; ValidationFailed on ``event_type`` otherwise."""
    try:
        return digest_event_type(value)
    except ValueError as exc:
        raise ValidationFailed([FieldError("event_type", str(exc))]) from None

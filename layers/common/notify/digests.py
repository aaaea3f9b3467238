"""Digests (issue 23): the rules, a bucket's identity, when its window ends, and what its template sees.

Pure: no I/O and no clock of its own; the worker, the API and the scheduler wire it in.

- A **rule** (``PUT /api/v1/digest-rules/{event_type}``) says which channels of an event type are collected, over
  which window (``{"seconds": n}`` from the first member, or ``{"cron": …, "timezone"?}`` fired in the user's zone),
  split by which payload fields (``key``), and how many members make a digest full (``max_items``). Account events
  take no rule: they are sent at once, one by one.
- A **bucket** collects the members of one (user, event type, channel, key values) group over one window. Its id is
  the group key (a hash, so any payload value gives a fixed-size, URL-safe id) and a *generation*: a bucket that is
  being sent is closed, and a late member opens the next generation. The digest job's id is derived from the bucket
  id the way :mod:`notify.jobs` derives every job id, so two flushes of one bucket make one job.
- The **window** of a cron rule ends at the cron's next fire time strictly after the first member, in the user's zone
  (else the rule's, else UTC). DST follows :mod:`notify.cron`, as campaigns do (docs/CAMPAIGN.md): a fire time in a
  skipped local hour (``30 2 * * *`` on the spring-forward day in Europe/Berlin) fires at the first valid time after
  the gap (03:00 local, 01:00 UTC), so the day still gets one digest; a repeated local hour fires once, on its first
  pass.
  :func:`flush_at` then spreads the flushes of windows that end together over a few deterministic seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Optional

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    field_validator,
)

from notify.catalog import EVENT_TYPES, category_of
from notify.clock import iso
from notify.cron import check_cron, check_timezone, next_fire
from notify.jobs import job_id
from notify.models import Category, Channel, Strict

MIN_WINDOW_SECONDS = 10  # the local stack's end-to-end tests use 10 s windows
MAX_WINDOW_SECONDS = 7 * 24 * 3600
MAX_KEY_FIELDS = 5
MAX_KEY_FIELD_LENGTH = 64
MAX_ITEMS = 1000
DEFAULT_MAX_ITEMS = 100
KEY_FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
_KEY_FIELD = re.compile(KEY_FIELD_PATTERN)
# Hashed ahead of every group key, so that a later change of what a group key holds cannot reuse an old key.
GROUP_KEY_SCHEME = "digest-group-v1"
# The namespace of the event ids of digest jobs (a fixed, random UUID; keyed events have another).
DIGEST_EVENTS = uuid.UUID("0b6c2f0e-93d4-4f55-b8a1-5c2e7d9a4f13")


def refuse_account(event_type: str) -> str:
    """``event_type`` unchanged, or a ValueError when it is an account event (the API answers 422).

    Account notifications (sign-up, password reset) are critical and time-bound: they are sent at once, one by one,
    never held for a digest.
    """
    if category_of(event_type) is Category.ACCOUNT:
        raise ValueError(
            f"{event_type} is an account event: account notifications are sent at once, one by one, never in a digest"
        )
    return event_type


def _known_event_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; known types: {', '.join(sorted(EVENT_TYPES))}")
    return value


def _key_field(value: str) -> str:
    if not _KEY_FIELD.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a payload field: use a field name or a dotted path of them "
            "(letters, digits and _, not starting with a digit), for example review_id"
        )
    return value


KeyField = Annotated[
    str,
    Field(min_length=1, max_length=MAX_KEY_FIELD_LENGTH, json_schema_extra={"pattern": KEY_FIELD_PATTERN}),
    AfterValidator(_key_field),
]


class SecondsWindow(Strict):
    """A window that ends ``seconds`` after the bucket's first member (10 s to 7 days)."""

    seconds: int = Field(ge=MIN_WINDOW_SECONDS, le=MAX_WINDOW_SECONDS, examples=[3600])


class CronWindow(Strict):
    """A window that ends at the cron's next fire time after the bucket's first member.

    The cron (5 fields) runs in the user's time zone; ``timezone`` (IANA) is used for users whose profile has
    none, and UTC when neither is known.
    """

    cron: str = Field(examples=["0 9 * * *"])
    timezone: Optional[str] = Field(default=None, examples=["Europe/Berlin"])

    _cron = field_validator("cron")(check_cron)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_timezone(value)


Window = SecondsWindow | CronWindow


def _window(value: Any, _union: ValidatorFunctionWrapHandler) -> Window:
    """The window's shape is chosen by its keys, not by trying the union's members, so errors name the window's own
    fields (``window.seconds``), not a member (``window.SecondsWindow.seconds``): pydantic roots a ValidationError
    raised here at ``window``. (A wrap validator, not a plain one: with a plain one, pydantic 2.14 cannot serialise
    the union.)"""
    if isinstance(value, (SecondsWindow, CronWindow)):
        return value
    if not isinstance(value, dict) or ("seconds" in value) == ("cron" in value):
        raise ValueError(
            'give either {"seconds": n} (10 to 604800) or {"cron": "0 9 * * *", "timezone"?: "…"}, not both'
        )
    return CronWindow.model_validate(value) if "cron" in value else SecondsWindow.model_validate(value)


class DigestRule(Strict):
    """A digest rule: jobs of ``event_type`` on ``channels`` are collected into one notification per window.

    ``key`` lists the payload fields whose values split the digests (``["review_id"]``: one digest per review;
    empty: one per user). Their order does not matter. A digest goes out when its window ends, or earlier when it
    holds ``max_items`` members.
    """

    event_type: Annotated[str, AfterValidator(_known_event_type), AfterValidator(refuse_account)]
    channels: frozenset[Channel] = Field(min_length=1, examples=[["email"]])
    window: Annotated[Window, WrapValidator(_window)]
    key: list[KeyField] = Field(default_factory=list, max_length=MAX_KEY_FIELDS, examples=[["review_id"]])
    max_items: int = Field(default=DEFAULT_MAX_ITEMS, ge=1, le=MAX_ITEMS)

    @field_validator("key")
    @classmethod
    def _key_fields(cls, value: list[str], info: ValidationInfo) -> list[str]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"each field once: {', '.join(repeated)} repeated")
        spec = EVENT_TYPES.get(info.data.get("event_type", ""))
        if spec is not None:
            unknown = [name for name in value if name.split(".")[0] not in spec.payload_model.model_fields]
            if unknown:
                known = ", ".join(spec.payload_model.model_fields)
                raise ValueError(f"{', '.join(unknown)}: not in {spec.name}'s payload (its fields: {known})")
        return value

    @field_serializer("channels")
    def _sorted_channels(self, channels: frozenset[Channel]) -> list[str]:
        return sorted(channel.value for channel in channels)


@dataclass(frozen=True)
class StoredDigestRule:
    """A rule as stored: the rule and when it was last put."""

    rule: DigestRule
    updated_at: str

    def view(self) -> dict[str, Any]:
        """The public JSON shape (``GET /api/v1/digest-rules``)."""
        return {**self.rule.model_dump(mode="json"), "updated_at": self.updated_at}


# -- the digest template variant ----------------------------------------------------------------

DIGEST_VARIANT = "digest"


def digest_template_key(event_type: str) -> str:
    """The template key of an event type's digest variant: ``review_liked.digest`` (template ids
    ``review_liked.digest.email.en``). Event type names hold no dot, so the variant cannot collide with a type."""
    return f"{event_type}.{DIGEST_VARIANT}"


def variant_of(template_key: str) -> tuple[str, Optional[str]]:
    """``(event type, variant)`` of a template key: ``("review_liked", "digest")`` or ``("review_liked", None)``."""
    base, dot, variant = template_key.partition(".")
    return (base, variant) if dot else (base, None)


# -- buckets ---------------------------------------------------------------------------------


def _field_value(payload: Mapping[str, Any], path: str) -> Any:
    value: Any = payload
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def bucket_key(rule: DigestRule, user_id: str, channel: Channel | str, payload: Mapping[str, Any]) -> str:
    """The group key of a member: 32 hex characters, equal for the same user, event type, channel and key values.

    A key field missing from the payload (or a path through a non-object) counts as null, like an explicit null.
    The values are compared as canonical JSON (keys sorted, no spaces, UTF-8 as is, no Unicode normalisation), so
    the order of an object's keys does not matter and neither does the order of the rule's key fields.
    """
    values = {name: _field_value(payload, name) for name in rule.key}
    canonical = json.dumps(
        [GROUP_KEY_SCHEME, user_id, rule.event_type, Channel(channel).value, values],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def bucket_id(group_key: str, generation: int) -> str:
    """The id of a group's bucket of ``generation`` (the worker starts a group's generations at the time in seconds
    its head is first written, and a late member after a flush opens the next)."""
    if generation < 0:
        raise ValueError("a bucket's generation is not negative")
    return f"{group_key}-{generation}"


# Buckets whose window is too long for the delay queue wait in a due index, split into this many partitions so that a
# million windows ending at 09:00 do not all write (and the scheduler's sweep read) one partition.
DUE_SHARDS = 32


def due_shard(group_key: str) -> int:
    """The due index partition of a group (fixed by its key, evenly spread)."""
    return int(group_key[:8], 16) % DUE_SHARDS


def digest_event_id(bucket_id_: str) -> str:
    """The event id a bucket's digest job belongs to (a UUID5 of the bucket id): where its status is found."""
    return str(uuid.uuid5(DIGEST_EVENTS, bucket_id_))


def digest_job_id(bucket_id_: str, user_id: str, channel: Channel | str) -> str:
    """The id of a bucket's digest job, deterministic in the bucket: two flushes of one bucket make one job.

    It is :func:`notify.jobs.job_id` of the bucket's :func:`digest_event_id`, so, like every job id, it carries the
    locator of its event record. The user and channel are those of the bucket (``job_id`` hashes them in).
    """
    return job_id(digest_event_id(bucket_id_), user_id, channel)


# -- windows ---------------------------------------------------------------------------------


def _zone_of(window: CronWindow, user_tz: Optional[str]) -> str:
    """The user's zone, else the rule's, else UTC. A profile's zone comes from the Auth service unchecked: one
    that is not an IANA name is skipped rather than holding the bucket forever."""
    for name in (user_tz, window.timezone):
        if name:
            try:
                check_timezone(name)
            except ValueError:
                continue
            return name
    return "UTC"


def window_end(window: Window, first_at: datetime, user_tz: Optional[str] = None) -> datetime:
    """When a bucket whose first member came at ``first_at`` (aware) closes, in UTC.

    Seconds: ``first_at`` + seconds. Cron: its next fire time strictly after ``first_at`` in the user's zone, else
    the rule's ``timezone``, else UTC (DST as the module's docstring says).
    """
    if first_at.tzinfo is None:
        raise ValueError("first_at must be timezone-aware")
    if isinstance(window, SecondsWindow):
        return first_at.astimezone(UTC) + timedelta(seconds=window.seconds)
    return next_fire(window.cron, _zone_of(window, user_tz), first_at)


def flush_at(window_end_: datetime, bucket_id_: str, spread_seconds: int) -> datetime:
    """``window_end_`` plus a jitter of 0 to ``spread_seconds`` (millisecond steps) fixed by the bucket id.

    A cron window ends at the same instant for every user of a zone: a million buckets ending at 09:00 would all be
    due in one second, so the due-time index's partition, the scheduler's tick and SES's send rate would take them
    at once (a hot partition and a burst of throttling). Spread over a few minutes, they arrive evenly. The jitter
    is derived from the bucket id, not drawn: every worker and every retry computes the same flush time.
    """
    if spread_seconds < 0:
        raise ValueError("spread_seconds must not be negative")
    digest = hashlib.sha256(f"flush\x1f{bucket_id_}".encode()).digest()
    offset_ms = int.from_bytes(digest[:8], "big") % (spread_seconds * 1000 + 1)
    return window_end_ + timedelta(milliseconds=offset_ms)


# -- the digest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestItem:
    """One member of a bucket: its job's payload, when its event occurred (aware) and its job id."""

    payload: Mapping[str, Any]
    occurred_at: datetime
    job_id: str


def digest_context(items: Iterable[DigestItem], count: int, max_items: int) -> dict[str, Any]:
    """The ``digest`` variable of a digest template.

    ``count`` is the number of members; ``items`` the first ``max_items`` of them, oldest first (ties by job id),
    each ``{payload, occurred_at}``; ``first_at`` and ``last_at`` the oldest and newest member's time. Times are
    ISO 8601 in UTC (``…Z``); with no member they are null.
    """
    ordered: Sequence[DigestItem] = sorted(items, key=lambda item: (item.occurred_at, item.job_id))
    shown = ordered[:max_items]
    return {
        "count": count,
        "items": [{"payload": dict(item.payload), "occurred_at": iso(item.occurred_at)} for item in shown],
        "first_at": iso(ordered[0].occurred_at) if ordered else None,
        "last_at": iso(ordered[-1].occurred_at) if ordered else None,
    }


def is_full(count: int, rule: DigestRule) -> bool:
    """Whether a bucket of ``count`` members goes out before its window ends."""
    return count >= rule.max_items

"""Identifiers and the expansion of an accepted event into notification jobs.

A job id is a UUID (RFC 9562 version 8) that is deterministic in
(event_id, user_id, channel) — re-ingesting an event can never create a second
job for the same user and channel — and whose first 60 bits are the event's
*locator*. The locator lets ``GET /notifications/{job_id}`` find the event
record of a job the worker has not touched yet, so ingestion costs one
DynamoDB write per event instead of one per job (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from notify.catalog import EventType
from notify.models import Channel, Contact, NotificationJob, Priority


def new_event_id(family: Optional[bytes] = None) -> str:
    """A fresh random event id; ids made with the same 8-byte ``family`` share one locator (a batch)."""
    raw = bytearray(os.urandom(16))
    if family is not None:
        raw[:8] = family[:8]
    raw[6] = 0x40 | (raw[6] & 0x0F)  # version 4
    raw[8] = 0x80 | (raw[8] & 0x3F)  # RFC 9562 variant
    return str(uuid.UUID(bytes=bytes(raw)))


# The namespace of event ids derived from a caller's Idempotency-Key (a fixed, random UUID).
KEYED_EVENTS = uuid.UUID("5f0f9d7e-2b1c-4c8e-9a51-7d3e0c6b8a24")


def keyed_event_id(*parts: str) -> str:
    """An event id deterministic in ``parts`` (a UUID5): the same caller, key and body always name one event."""
    return str(uuid.uuid5(KEYED_EVENTS, "\x1f".join(parts)))


def new_family() -> bytes:
    """8 random bytes for :func:`new_event_id`."""
    return os.urandom(8)


def locator(event_id: str) -> str:
    """16 hex characters shared by an event id and all of its job ids."""
    raw = bytearray(uuid.UUID(event_id).bytes[:8])
    raw[6] = 0x80 | (raw[6] & 0x0F)  # the version nibble of a v8 UUID
    return raw.hex()


def job_id(event_id: str, user_id: str, channel: Channel | str) -> str:
    """The deterministic id of the job for this event, user and channel."""
    head = bytes.fromhex(locator(event_id))
    name = f"{event_id}\x1f{user_id}\x1f{Channel(channel).value}".encode()
    tail = bytearray(hashlib.sha256(name).digest()[:8])
    tail[0] = 0x80 | (tail[0] & 0x3F)  # RFC 9562 variant
    return str(uuid.UUID(bytes=head + bytes(tail)))


def locator_of_job(job_id_: str) -> str:
    """The locator of the event a job id belongs to."""
    return uuid.UUID(job_id_).bytes[:8].hex()


@dataclass(frozen=True)
class EventPlan:
    """Everything needed to build the jobs of one event; also what the event record stores."""

    event_id: str
    event_type: EventType
    payload: dict[str, Any]
    user_ids: Sequence[str]
    channels: Sequence[Channel]
    priority: Priority
    created_at: datetime
    expires_at: datetime
    send_after: Optional[datetime] = None
    locale: Optional[str] = None
    campaign_id: Optional[str] = None
    run_id: Optional[str] = None
    contacts: Optional[dict[str, Contact]] = None
    template_key: Optional[str] = None  # the event type whose templates render it, when not its own
    segment_id: Optional[str] = None

    def job_ids(self) -> list[str]:
        """Job ids in expansion order: user by user, channel by channel."""
        return [job.job_id for job in self.jobs()]

    def jobs(self) -> list[NotificationJob]:
        """One job per user and channel (built once per plan)."""
        cached: Optional[list[NotificationJob]] = self.__dict__.get("_jobs")
        if cached is None:
            cached = self._build_jobs()
            object.__setattr__(self, "_jobs", cached)
        return cached

    def _build_jobs(self) -> list[NotificationJob]:
        contacts = self.contacts or {}
        return [
            NotificationJob(
                job_id=job_id(self.event_id, uid, ch),
                event_id=self.event_id,
                event_type=self.event_type.name,
                user_id=uid,
                channel=ch,
                template_key=self.template_key or self.event_type.name,
                payload=self.payload,
                locale=self.locale,
                priority=self.priority,
                created_at=self.created_at,
                send_after=self.send_after,
                expires_at=self.expires_at,
                contact=contacts.get(uid),
                campaign_id=self.campaign_id,
                run_id=self.run_id,
            )
            for uid in self.user_ids
            for ch in self.channels
        ]

"""Status webhooks (issue 24): the messages, their signatures, the retry schedule and the destinations allowed.

Pure but for :func:`resolve_public`, which asks a resolver it is given. The endpoints' store, the delivery through the
pipeline and the API are wired elsewhere.

- **Messages** follow the Standard Webhooks specification (standardwebhooks.com): the body is
  ``{"type", "timestamp", "data"}`` as compact JSON, and three headers: ``webhook-id`` (the message's id, the same
  on every retry, so a receiver can drop repeats), ``webhook-timestamp`` (Unix seconds of this attempt) and
  ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, one per secret in use, space-separated:
  two during a rotation). Signing is the ``standardwebhooks`` library's, the reference implementation receivers
  verify with. ``data`` holds a job's identifiers and outcome only (:data:`DATA_FIELDS`): never a payload field,
  rendered content or a URL with a token.
- **Retries** follow :data:`SCHEDULE`: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h until 24 h have passed
  since the first attempt (:func:`next_delay`).
- **Destinations** (:func:`check_url`, :func:`resolve_public`): on AWS ``https`` only, never a private, loopback,
  link-local (the metadata service), shared, reserved or multicast address, whichever form the URL writes it in
  (``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]``): the host is resolved and every address it resolves to
  must be public, and the caller connects to the address that was checked, so a name cannot resolve to something
  else between the check and the connection. The local stack allows ``http://127.0.0.1`` for its demo receiver.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from notify.clock import iso
from notify.records import WebhookEndpoint

# The message types an endpoint can subscribe to ("*": all of them). webhook.test is sent on request only.
EVENT_TYPES = (
    "notification.sent",
    "notification.delivered",
    "notification.bounced",
    "notification.complained",
    "notification.failed",
    "notification.expired",
    "notification.skipped",
    "notification.digested",
    "notification.opened",
    "notification.clicked",
    "inbox.read",
    "digest.sent",
)
TEST_TYPE = "webhook.test"
ALL = "*"
# What a message's data may hold of a job: identifiers and outcome, nothing a template or a payload wrote.
DATA_FIELDS = (
    "job_id",
    "event_id",
    "event_type",
    "user_id",
    "channel",
    "status",
    "reason",
    "provider_message_id",
    "digest_job_id",
    "members",
)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
LAST_STEP = timedelta(hours=10)
GIVE_UP_AFTER = timedelta(hours=24)
# A message id's namespace (a fixed, random UUID): the id is derived from what the message is about.
MESSAGE_IDS = uuid.UUID("5b0e8f5c-2a7d-4c55-9a53-0f6f6f8d7b21")


class UnsafeDestination(ValueError):
    """A webhook URL the service refuses to call (the API answers 422 on ``url``)."""


def subscribed(events: Iterable[str], message_type: str) -> bool:
    """Whether an endpoint subscribed to ``events`` receives a message of ``message_type`` (a test always goes)."""
    wanted = set(events)
    return message_type == TEST_TYPE or ALL in wanted or message_type in wanted


def check_events(events: Iterable[str]) -> list[str]:
    """``events`` sorted and without repeats; a ValueError naming the unknown ones (or an empty list)."""
    wanted = sorted(set(events))
    if not wanted:
        raise ValueError(f"subscribe to at least one event type, or {ALL!r} for all of them")
    unknown = [e for e in wanted if e != ALL and e not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}; known: {ALL}, {', '.join(EVENT_TYPES)}")
    return [ALL] if ALL in wanted else wanted


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 24 random bytes in base64 (the Standard Webhooks format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def message_id(webhook_id: str, message_type: str, subject: str) -> str:
    """The ``webhook-id`` of the message of ``message_type`` about ``subject`` (a job and its transition) to one
    endpoint: ``msg_`` and a UUID derived from the three, so every retry, and a redrive, carries the same id."""
    return "msg_" + uuid.uuid5(MESSAGE_IDS, f"{webhook_id}\x1f{message_type}\x1f{subject}").hex


def body(message_type: str, at: datetime, data: Mapping[str, Any]) -> bytes:
    """The message's body: ``{"type", "timestamp", "data"}`` as compact JSON, ``data`` cut to :data:`DATA_FIELDS`
    (in that order; absent or null fields left out)."""
    kept = {name: data[name] for name in DATA_FIELDS if data.get(name) is not None}
    document = {"type": message_type, "timestamp": iso(at), "data": kept}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secrets_in_use: Iterable[str], msg_id: str, at: datetime, payload: bytes) -> str:
    """The ``webhook-signature`` header: one ``v1,<signature>`` per secret (the current one first), space-separated."""
    signatures = [Webhook(secret).sign(msg_id, at, payload) for secret in secrets_in_use]
    if not signatures:
        raise ValueError("no secret to sign with")
    return " ".join(signatures)


def headers(secrets_in_use: Iterable[str], msg_id: str, at: datetime, payload: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (and the content type)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sign(secrets_in_use, msg_id, at, payload),
        "content-type": "application/json",
    }


def next_delay(attempt: int, first_at: datetime, now: datetime) -> Optional[timedelta]:
    """How long to wait before the attempt after ``attempt`` (0: the first failed), or None to give up: the
    :data:`SCHEDULE`, then :data:`LAST_STEP` while the next attempt would still come within :data:`GIVE_UP_AFTER`
    of the first."""
    if attempt < 0:
        raise ValueError("attempts count from 0")
    delay = SCHEDULE[attempt] if attempt < len(SCHEDULE) else LAST_STEP
    if now + delay - first_at > GIVE_UP_AFTER:
        return None
    return delay


# -- destinations -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL: its scheme, host as written, port and path (with its query)."""

    scheme: str
    host: str
    port: int
    path: str


def check_url(url: str, *, allow_http_loopback: bool = False) -> Target:
    """The URL's parts, or UnsafeDestination: ``https`` only (``http`` only to a loopback address when
    ``allow_http_loopback``, the local stack), a host, no user or password, no fragment, at most 2,048 characters."""
    if len(url) > 2048:
        raise UnsafeDestination("a webhook URL is at most 2,048 characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise UnsafeDestination("a webhook URL is https://…")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("a webhook URL carries no user or password: use the signature to trust the sender")
    if parts.fragment:
        raise UnsafeDestination("a webhook URL has no #fragment")
    host = parts.hostname
    if not host:
        raise UnsafeDestination("a webhook URL names a host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeDestination("a webhook URL's port is a number from 1 to 65535") from None
    if scheme == "http" and not (allow_http_loopback and _is_loopback_literal(host)):
        raise UnsafeDestination("a webhook URL is https://… (plain http only to the local stack's 127.0.0.1)")
    path = parts.path or "/"
    return Target(scheme, host, port, f"{path}?{parts.query}" if parts.query else path)


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


Resolver = Callable[[str, int], list[str]]


def resolve_public(target: Target, resolve: Resolver, *, allow_loopback: bool = False) -> str:
    """The address to connect to for ``target``: every address ``resolve(host, port)`` answers must be public (see
    :func:`is_public`), else UnsafeDestination; the first is returned. With ``allow_loopback`` (the local stack),
    loopback addresses are allowed too."""
    try:
        addresses = resolve(target.host, target.port)
    except OSError as exc:
        raise UnsafeDestination(f"{target.host} does not resolve: {exc}") from None
    if not addresses:
        raise UnsafeDestination(f"{target.host} does not resolve")
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not (is_public(ip) or (allow_loopback and _loopback(ip))):
            # The address itself is not named: an API caller must not learn how internal names resolve.
            raise UnsafeDestination(
                f"{target.host} resolves to an address that is not a public address "
                "(private, loopback, link-local, shared, reserved or multicast)"
            )
    return addresses[0]


def _loopback(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether the service may call ``ip``: a globally routable unicast address. Private, loopback, link-local (the
    metadata service at 169.254.169.254 and fd00:ec2::254), shared (100.64/10), documentation, reserved,
    unspecified and multicast addresses are not, nor is an IPv6 address that embeds an IPv4 one that is not (mapped
    ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, Teredo, and NAT64's ``64:ff9b::/96``, which a dual-stack VPC translates
    to the IPv4 address in its last 32 bits)."""
    if isinstance(ip, ipaddress.IPv6Address):
        nat64 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None) or nat64
        if embedded is not None and not is_public(embedded):
            return False
    return ip.is_global and not ip.is_multicast


def system_resolver(host: str, port: int) -> list[str]:
    """``getaddrinfo``'s addresses for ``host`` (TCP): what a connection to it would use. Numeric forms the URL may
    write (``2130706433``, ``0x7f.1``, ``0177.0.0.1``) resolve as the C library reads them, so they are checked as
    the addresses they are."""
    import socket

    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets to sign a message with at ``now``: the current one, then the previous one while its
    ``previous_until`` is still ahead (a rotation's overlap)."""
    current, *older = endpoint.secrets
    overlapping = endpoint.previous_until is not None and datetime.fromisoformat(endpoint.previous_until) > now
    return [current, *older[:1]] if overlapping else [current]

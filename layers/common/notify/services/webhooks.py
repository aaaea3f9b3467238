"""Status webhook endpoints as the API manages them (``/api/v1/webhooks``, issue 24): create, list, read, change,
delete, rotate the signing secret, and read an endpoint's deliveries.

Webhook ids are ``wh_`` and 24 random hex characters (96 bits): short enough for a URL and a log line, unguessable,
and told apart from the other ids at a glance. An endpoint's secrets never leave through a view; the one exception is
the ``secret`` that :meth:`WebhookAdmin.create` and :meth:`WebhookAdmin.rotate` return, shown once.

A destination is checked twice: here, when an endpoint is created or its URL changed (:func:`notify.webhooks.check_url`
and :func:`notify.webhooks.resolve_public`, so a private destination, or a name that does not resolve, is a 422 on
``url`` up front), and again by the sender at every attempt, since what a name resolves to can change.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import Conflict, DeliveryError, FieldError, NotFound, StoreUnavailable, ValidationFailed
from notify.models import WebhookTask
from notify.ports import DelayQueue, WebhookStore
from notify.records import WebhookDelivery, WebhookEndpoint
from notify.webhooks import (
    TEST_TYPE,
    Resolver,
    UnsafeDestination,
    check_events,
    check_url,
    message_id,
    new_secret,
    resolve_public,
)

ID_PREFIX = "wh_"
MAX_DESCRIPTION = 200
# Endpoints an account may have (Stripe allows 16): every status change reads them all and queues one message per
# subscriber, so the cap bounds what one change costs and how long it takes to emit.
MAX_ENDPOINTS = 20
ROTATION_OVERLAP = timedelta(hours=24)  # the secret a rotation replaces keeps signing this long
BY_USER = "by_user"  # disabled_reason when the endpoint's owner disabled it
_Errors = list[FieldError]  # (WebhookAdmin.list hides the builtin inside the class)


def new_webhook_id() -> str:
    """``wh_`` and 24 random hex characters."""
    return ID_PREFIX + secrets.token_hex(12)


def endpoint_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the API shows of an endpoint: never its secrets."""
    return {
        "webhook_id": endpoint.webhook_id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "status": "enabled" if endpoint.enabled else "disabled",
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    """One attempt as the deliveries list shows it."""
    return {
        "at": delivery.at,
        "message_id": delivery.message_id,
        "message_type": delivery.message_type,
        "attempt": delivery.attempt,
        "outcome": delivery.outcome.value,
        "status_code": delivery.status_code,
        "latency_ms": delivery.latency_ms,
        "error": delivery.error,
    }


class WebhookAdmin:
    """Managing webhook endpoints; answers are :func:`endpoint_view`\\ s. ``allow_http_loopback`` is the local
    stack's: ``http://127.0.0.1…`` (and a name resolving to loopback) is accepted for its demo receiver; on AWS it is
    False. ``resolver`` answers a host's addresses (:func:`notify.webhooks.system_resolver` in production);
    ``delay_queue`` takes the test messages :meth:`send_test` queues (the API's; without one, it cannot send any)."""

    def __init__(
        self,
        store: WebhookStore,
        clock: Clock,
        *,
        allow_http_loopback: bool,
        resolver: Resolver,
        delay_queue: Optional[DelayQueue] = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._allow_loopback = allow_http_loopback
        self._resolve = resolver
        self._delay = delay_queue

    def create(self, url: str, events: Sequence[str], description: Optional[str] = None) -> dict[str, Any]:
        """A new, enabled endpoint: its view and ``secret`` (``whsec_…``, shown this once). ValidationFailed on
        ``url``, ``events`` or ``description``, every problem at once; Conflict when there are MAX_ENDPOINTS."""
        errors: _Errors = []
        checked_url = self._url(url, errors)
        checked_events = _events(events, errors)
        checked_description = _description(description, errors) or None
        if errors:
            raise ValidationFailed(errors)
        if len(self._store.all()) >= MAX_ENDPOINTS:
            raise Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints: delete one first")
        now = iso(self._clock())
        secret = new_secret()
        endpoint = WebhookEndpoint(
            webhook_id=new_webhook_id(),
            url=checked_url,
            events=checked_events,
            secrets=(secret,),
            created_at=now,
            updated_at=now,
            description=checked_description,
        )
        self._store.put(endpoint)
        return {**endpoint_view(endpoint), "secret": secret}

    def list(self) -> list[dict[str, Any]]:
        """Every endpoint, oldest first."""
        return [endpoint_view(e) for e in self._store.all()]

    def get(self, webhook_id: str) -> dict[str, Any]:
        """One endpoint; NotFound if there is none."""
        return endpoint_view(self._endpoint(webhook_id))

    def update(
        self,
        webhook_id: str,
        *,
        url: Optional[str] = None,
        events: Optional[Sequence[str]] = None,
        description: Optional[str] = None,
        enabled: Optional[bool] = None,
    ) -> dict[str, Any]:
        """Change what is given (None: unchanged; ``description=""`` removes it). A new URL is checked as at
        creation and forgets the old one's failures (``failing_since``). Enabling a disabled endpoint clears
        ``disabled_reason`` and ``failing_since`` (enabling an enabled one changes neither, so a PATCH cannot put off
        the disabling of an endpoint that keeps failing); disabling an enabled one gives the reason ``by_user``, and
        one already disabled keeps its reason. NotFound, or ValidationFailed as :meth:`create`; Conflict if the
        endpoint changed since it was read here (another change, a rotation, or the worker disabling it): only the
        fields changed are written, and only over the endpoint as read, so nothing another writer did is undone."""
        endpoint = self._endpoint(webhook_id)
        errors: _Errors = []
        changes: dict[str, Any] = {}
        if url is not None:
            changes["url"] = self._url(url, errors)
            if changes["url"] != endpoint.url:
                changes["failing_since"] = None
        if events is not None:
            changes["events"] = _events(events, errors)
        if description is not None:
            changes["description"] = _description(description, errors) or None
        if errors:
            raise ValidationFailed(errors)
        if enabled is True and not endpoint.enabled:
            changes.update(enabled=True, disabled_reason=None, failing_since=None)
        elif enabled is False and endpoint.enabled:
            changes.update(enabled=False, disabled_reason=BY_USER)
        now = self._clock()
        trimmed = _without_expired_secret(endpoint, now)
        if trimmed is not endpoint:
            changes.update(secrets=trimmed.secrets, previous_until=None)
        changes["updated_at"] = iso(now)
        self._store.change(webhook_id, endpoint.updated_at, changes)
        return endpoint_view(replace(endpoint, **changes))

    def delete(self, webhook_id: str) -> None:
        """Delete an endpoint (its deliveries log expires on its own); NotFound if there is none."""
        if not self._store.delete(webhook_id):
            raise NotFound(f"no webhook {webhook_id}")

    def rotate(self, webhook_id: str) -> dict[str, Any]:
        """A new signing secret: its view and the new ``secret``, shown this once. The secret it replaces keeps
        signing beside it for 24 h, so receivers can move to the new one; a rotation during another's overlap drops
        the oldest secret (two sign at most) and starts a new 24 h. NotFound if there is no endpoint; Conflict if it
        changed since it was read here."""
        endpoint = self._endpoint(webhook_id)
        now = self._clock()
        secret = new_secret()
        changes: dict[str, Any] = {
            "secrets": (secret, endpoint.secrets[0]),
            "previous_until": iso(now + ROTATION_OVERLAP),
            "updated_at": iso(now),
        }
        # Over the endpoint as read only: of two rotations at once one is a 409, never a secret shown that never signs.
        self._store.change(webhook_id, endpoint.updated_at, changes)
        return {**endpoint_view(replace(endpoint, **changes)), "secret": secret}

    def send_test(self, webhook_id: str) -> dict[str, str]:
        """Queue a ``webhook.test`` message (``data`` empty) for this endpoint alone, whatever it subscribes to:
        ``{webhook_id, message_id, message_type}``; its attempts show in :meth:`deliveries` under that
        ``message_id``, which is new for each test. NotFound if there is no endpoint; Conflict if it is disabled (the
        worker drops a disabled endpoint's messages: enable it first); StoreUnavailable if the queue refuses it."""
        endpoint = self._endpoint(webhook_id)
        if not endpoint.enabled:
            raise Conflict(f"webhook {webhook_id} is disabled ({endpoint.disabled_reason}): enable it to test it")
        if self._delay is None:
            raise StoreUnavailable("no delay queue to send a test message through")
        subject = f"test#{uuid.uuid4().hex}"  # every test is a message of its own
        task = WebhookTask(
            webhook_id=webhook_id,
            message_id=message_id(webhook_id, TEST_TYPE, subject),
            message_type=TEST_TYPE,
            subject=subject,
            created_at=self._clock(),
            data={},
        )
        try:
            self._delay.enqueue([task])
        except DeliveryError as exc:
            raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc
        return {"webhook_id": webhook_id, "message_id": task.message_id, "message_type": TEST_TYPE}

    def deliveries(self, webhook_id: str, limit: int, cursor: Optional[str] = None) -> dict[str, Any]:
        """The endpoint's attempts, newest first: ``{items, next_cursor}``. NotFound if there is no endpoint;
        ValidationFailed on ``cursor`` for one the API did not issue for this endpoint."""
        self._endpoint(webhook_id)
        found, next_cursor = self._store.deliveries(webhook_id, limit, cursor)
        return {"items": [delivery_view(d) for d in found], "next_cursor": next_cursor}

    def _endpoint(self, webhook_id: str) -> WebhookEndpoint:
        endpoint = self._store.get(webhook_id) if webhook_id.startswith(ID_PREFIX) else None
        if endpoint is None:
            raise NotFound(f"no webhook {webhook_id}")
        return endpoint

    def _url(self, url: str, errors: _Errors) -> str:
        """``url`` if the service may call it (its host resolved now, every address public), else an error on
        ``url`` added to ``errors``."""
        try:
            target = check_url(url, allow_http_loopback=self._allow_loopback)
            resolve_public(target, self._resolve, allow_loopback=self._allow_loopback)
        except UnsafeDestination as exc:
            errors.append(FieldError("url", str(exc)))
        except ValueError:  # urlsplit's "Invalid IPv6 URL", or a host IDNA cannot encode (an empty or 64+ char label)
            errors.append(FieldError("url", "a webhook URL is https://… with a valid host name"))
        return url


def _events(events: Sequence[str], errors: _Errors) -> tuple[str, ...]:
    try:
        return tuple(check_events(events))
    except ValueError as exc:
        errors.append(FieldError("events", str(exc)))
        return ()


def _description(description: Optional[str], errors: _Errors) -> Optional[str]:
    if description is not None and len(description) > MAX_DESCRIPTION:
        errors.append(FieldError("description", f"at most {MAX_DESCRIPTION} characters"))
    return description


def _without_expired_secret(endpoint: WebhookEndpoint, now: datetime) -> WebhookEndpoint:
    """``endpoint`` without the previous secret once its overlap has passed, so a secret nothing signs with any
    more is not kept."""
    if endpoint.previous_until is None or datetime.fromisoformat(endpoint.previous_until) > now:
        return endpoint
    return replace(endpoint, secrets=endpoint.secrets[:1], previous_until=None)

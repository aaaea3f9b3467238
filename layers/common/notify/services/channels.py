"""The channel senders: one per channel, each a :class:`~notify.ports.ChannelSender` around its provider's port.

``DeliveryService`` takes them as a map ``{Channel: sender}`` (wired in the worker's composition root,
``functions/worker/worker/app.py``) and knows no channel: it renders, records ``SENDING``, hands the message to the
job's sender and records what the sender says in the ``SENT`` entry. A sender makes each provider call only after
``attempt.before_call()`` (a call must end inside the claim's lease) and returns the provider's id and its part of
the ``SENT`` detail.

Adding a channel (SMS, say) is one sender here, one adapter implementing its port in ``notify.adapters`` and one
line of wiring in the composition root (``Channel.SMS: SmsChannel(SnsSmsSender(...))``).
"""

from __future__ import annotations

from typing import Any, Optional

from notify.catalog import category_of
from notify.errors import PermanentError
from notify.limits import MAX_ERROR_CHARS
from notify.models import Category, NotificationJob
from notify.ports import EmailSender, PushSender, SendAttempt
from notify.records import RenderedMessage, Sent, UserProfile
from notify.services.inbox import InboxService


class EmailChannel:
    """Email: one send to the user's address, with RFC 8058's one-click unsubscribe headers when the message
    carries the link, the job's id and type as tags, and no open or click tracking for account mail."""

    def __init__(self, email: EmailSender) -> None:
        self._email = email

    def send(self, job: NotificationJob, profile: UserProfile, message: RenderedMessage, attempt: SendAttempt) -> Sent:
        """Send the email; ``SENT`` records that it carried an unsubscribe link (``list_unsubscribe``)."""
        if not profile.email:
            raise PermanentError(f"user {job.user_id} has no email address")
        attempt.before_call()
        link = attempt.unsubscribe_link
        tags = {"job_id": job.job_id, "event_type": job.event_type}
        # Account mail's links carry secrets (reset, confirmation): SES must neither wrap them nor add a pixel.
        tracked = category_of(job.event_type) is not Category.ACCOUNT
        provider_id = self._email.send_email(profile.email, message, _unsubscribe_headers(link), tags, tracked=tracked)
        if link is None:
            return Sent(provider_id)
        # That the email carried one (RFC 8058), never the link: its token opts the user out, and whoever may read
        # statuses (a support or reporting key) must not be able to.
        return Sent(provider_id, {"list_unsubscribe": True})


def _unsubscribe_headers(link: Optional[str]) -> dict[str, str]:
    """RFC 8058's two headers when the email has an unsubscribe link."""
    if link is None:
        return {}
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


class PushChannel:
    """Push: one publish per endpoint of the user's.

    An endpoint done by an earlier attempt (``attempt.pushed``) is not published to again; one that refuses for good
    (a disabled or deleted endpoint) is skipped, so that the user's other devices still get the push, and listed in
    ``SENT`` as ``endpoints_rejected``. The job fails only when every endpoint refused.
    """

    def __init__(self, push: PushSender) -> None:
        self._push = push

    def send(self, job: NotificationJob, profile: UserProfile, message: RenderedMessage, attempt: SendAttempt) -> Sent:
        """Publish to each endpoint not done yet; the provider id lists every endpoint's message id."""
        if not profile.push_endpoints:
            raise PermanentError(f"user {job.user_id} has no push endpoint")
        data = {"event_type": job.event_type, "job_id": job.job_id, "event_id": job.event_id}
        done = attempt.pushed
        rejected: dict[str, str] = {}
        for endpoint in profile.push_endpoints:
            if endpoint not in done:  # an earlier attempt published to it already
                attempt.before_call()
                try:
                    done[endpoint] = self._push.send_push(endpoint, message, data)
                except PermanentError as exc:
                    rejected[endpoint] = str(exc)[:MAX_ERROR_CHARS]
        if not any(e in done for e in profile.push_endpoints):
            raise PermanentError("; ".join(f"{e}: {error}" for e, error in rejected.items()))
        provider_id = ",".join(done[e] for e in profile.push_endpoints if e in done)
        return Sent(provider_id, {"endpoints_rejected": rejected} if rejected else {})


class InAppChannel:
    """In-app (the ``websocket`` channel): the item is stored in the user's inbox and posted to their live
    connections while the claim's lease leaves time (:meth:`InboxService.deliver`)."""

    def __init__(self, inbox: InboxService) -> None:
        self._inbox = inbox

    def send(self, job: NotificationJob, profile: UserProfile, message: RenderedMessage, attempt: SendAttempt) -> Sent:
        """Store and post the item; ``SENT`` records its id and the connections reached, gone and failed."""
        delivered = self._inbox.deliver(job, message, attempt.time_left)
        detail: dict[str, Any] = {"inbox_item_id": delivered.item_id, "connections_reached": len(delivered.reached)}
        if not delivered.stored:
            detail["inbox_item_existed"] = True  # a redelivered job: stored and pushed by its first copy
        if delivered.gone:
            detail["connections_gone"] = len(delivered.gone)
        if delivered.failed:
            detail["connections_failed"] = delivered.failed
        return Sent(delivered.item_id, detail)

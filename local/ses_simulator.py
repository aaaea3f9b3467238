"""SES's mailbox simulator and event publishing, for the local stack.

In AWS, mail to ``success@``, ``bounce@``, ``complaint@``, ``ooto@`` or ``suppressionlist@simulator.amazonses.com``
makes SES behave as those mailboxes would, and a send through a configuration set has its events published to the
set's destination (SNS → FeedbackFunction here). moto sends nothing and publishes nothing, so the local stack puts
this between the worker and moto: it sees each ``SendEmail`` moto accepted (the configuration set publishes no
``Send`` events: ``SENT`` says it) (through ``ProviderFaults``' hook) and,
a moment later, delivers the SES events AWS would publish for it to the feedback function, as SNS would.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Optional

from local.events import ses_event, sns_event

log = logging.getLogger("local.ses_simulator")
SIMULATOR_DOMAIN = "simulator.amazonses.com"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events_for(request: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    """The events SES publishes for one send through a configuration set (none without one)."""
    if not request.get("ConfigurationSetName"):
        return []
    (recipient, *_) = (request.get("Destination") or {}).get("ToAddresses") or [""]
    tags = {t["Name"]: t["Value"] for t in request.get("EmailTags") or [] if isinstance(t, dict)}
    source = str(request.get("FromEmailAddress") or "notifications@example.com")
    mailbox = recipient.lower().partition("@")

    def event(event_type: str, section: dict[str, Any]) -> dict[str, Any]:
        return ses_event(
            event_type,
            message_id,
            recipient,
            tags,
            {"timestamp": _now(), **section},
            configuration_set=str(request["ConfigurationSetName"]),
            source=source,
        )

    delivered = event("Delivery", {"recipients": [recipient], "smtpResponse": "250 2.6.0 Message received"})
    if mailbox[2] != SIMULATOR_DOMAIN:
        return [delivered]  # any other address: delivered, as a test mailbox would be
    if mailbox[0] in ("bounce", "suppressionlist"):
        subtype = "OnAccountSuppressionList" if mailbox[0] == "suppressionlist" else "General"
        bounce = {
            "bounceType": "Permanent",
            "bounceSubType": subtype,
            "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1"}],
            "feedbackId": f"{message_id}-bounce",
        }
        return [event("Bounce", bounce)]
    if mailbox[0] == "complaint":
        complaint = {
            "complainedRecipients": [{"emailAddress": recipient}],
            "feedbackId": f"{message_id}-complaint",
            "complaintFeedbackType": "abuse",
        }
        return [delivered, event("Complaint", complaint)]
    return [delivered]  # success@, ooto@ (its auto-reply is not an event)


class MailboxSimulator:
    """Publishes the SES events of each accepted send to ``deliver`` (an SNS-shaped event), in the background."""

    def __init__(self, deliver: Callable[[dict[str, Any]], Any], delay: float = 0.3) -> None:
        self._deliver = deliver
        self._delay = delay
        # (when to publish, events): each send's events go out ``delay`` after it, however many are waiting.
        self._queue: queue.Queue[Optional[tuple[float, list[dict[str, Any]]]]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ses-simulator", daemon=True)
        self.published = 0

    def start(self) -> MailboxSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def sent(self, request: bytes, answer: bytes) -> None:
        """``ProviderFaults``' hook: one SendEmail moto accepted (request and answer bodies)."""
        try:
            events = events_for(json.loads(request), str(json.loads(answer)["MessageId"]))
        except (ValueError, KeyError, TypeError):
            log.warning("could not read a SendEmail to simulate its events")
            return
        if events:
            self._queue.put((time.monotonic() + self._delay, events))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            due, events = item
            time.sleep(max(0.0, due - time.monotonic()))  # SES publishes after it has handled the message
            try:
                self._deliver(sns_event([json.dumps(e, separators=(",", ":")) for e in events]))
                self.published += len(events)
            except Exception:  # noqa: BLE001 - as SNS would, retry later is not emulated: log it
                log.exception("FeedbackFunction raised on simulated SES events")

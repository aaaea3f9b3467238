"""SES's mailbox simulator and event publishing, for the local stack.

In AWS, mail to ``success@``, ``bounce@``, ``complaint@``, ``ooto@`` or ``suppressionlist@simulator.amazonses.com``
makes SES behave as those mailboxes would, and a send through a configuration set has the events its destination
takes (the template's ``MatchingEventTypes``: account mail's set takes no Open or Click) published to it (SNS →
FeedbackFunction here). moto sends nothing and publishes nothing, so the local stack puts
this between the worker and moto: it sees each ``SendEmail`` moto accepted (the configuration set publishes no
``Send`` events: ``SENT`` says it) (through ``ProviderFaults``' hook) and,
a moment later, delivers the SES events AWS would publish for it to the feedback function, as SNS would.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Optional

from local.cfn import Template
from local.events import ses_event, sns_event

log = logging.getLogger("local.ses_simulator")
SIMULATOR_DOMAIN = "simulator.amazonses.com"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A destination's MatchingEventTypes as the events' eventType says them.
EVENT_TYPES = {
    "send": "Send",
    "reject": "Reject",
    "bounce": "Bounce",
    "complaint": "Complaint",
    "delivery": "Delivery",
    "open": "Open",
    "click": "Click",
    "renderingFailure": "Rendering Failure",
    "deliveryDelay": "DeliveryDelay",
    "subscription": "Subscription",
}


def published_events(template: Template, configuration_sets: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """Each configuration set (by name; ``configuration_sets`` maps logical ids to names) and the event types its
    enabled destinations in ``template`` publish: what SES would send on for a send through it."""
    out: dict[str, set[str]] = {name: set() for name in configuration_sets.values()}
    for resource in template.resources("AWS::SES::ConfigurationSetEventDestination").values():
        props = resource.get("Properties", {})
        name = props.get("ConfigurationSetName")
        destination = props.get("EventDestination", {})
        if isinstance(name, dict) and name.get("Ref") in configuration_sets and destination.get("Enabled", False):
            types = destination.get("MatchingEventTypes", [])
            out[configuration_sets[name["Ref"]]].update(EVENT_TYPES.get(t, t) for t in types)
    return {name: frozenset(types) for name, types in out.items()}


def events_for(
    request: dict[str, Any], message_id: str, published: Optional[Mapping[str, frozenset[str]]] = None
) -> list[dict[str, Any]]:
    """The events SES publishes for one send through a configuration set (none without one): with ``published``
    (:func:`published_events`), only the types the set's destinations take."""
    name = request.get("ConfigurationSetName")
    if not name:
        return []
    events = _events(request, message_id)
    if published is None:
        return events
    return [e for e in events if e["eventType"] in published.get(str(name), frozenset())]


def _events(request: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
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
    """Publishes the SES events of each accepted send to ``deliver`` (an SNS-shaped event), in the background.

    As SNS does, each event is one invocation of the feedback function; one that raises is tried again twice, as
    Lambda retries an asynchronous invocation (after about 1 and 2 minutes in AWS; ``retry_delays`` here), then
    logged as what AWS would put in the function's dead-letter queue.
    """

    def __init__(
        self,
        deliver: Callable[[dict[str, Any]], Any],
        delay: float = 0.3,
        retry_delays: tuple[float, ...] = (5.0, 20.0),
        published: Optional[Mapping[str, frozenset[str]]] = None,
    ) -> None:
        self._deliver = deliver
        self._published = published  # per configuration set, the event types it publishes (None: every one)
        self._delay = delay
        self._retry_delays = retry_delays
        self._due: list[tuple[float, int, int, str]] = []  # a heap of (when, order, tries so far, SNS message)
        self._order = itertools.count()  # ties go in arrival order
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ses-simulator", daemon=True)
        self.published = 0
        self.retried = 0

    def start(self) -> MailboxSimulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout=10)

    def sent(self, request: bytes, answer: bytes) -> None:
        """``ProviderFaults``' hook: one SendEmail moto accepted (request and answer bodies)."""
        try:
            events = events_for(json.loads(request), str(json.loads(answer)["MessageId"]), self._published)
        except (ValueError, KeyError, TypeError):
            log.warning("could not read a SendEmail to simulate its events")
            return
        due = time.monotonic() + self._delay  # SES publishes after it has handled the message
        for event in events:
            self._schedule(due, 0, json.dumps(event, separators=(",", ":")))

    def _schedule(self, due: float, tries: int, message: str) -> None:
        with self._changed:
            heapq.heappush(self._due, (due, next(self._order), tries, message))
            self._changed.notify()

    def _next(self) -> Optional[tuple[int, str]]:
        """The next event once it is due (tries so far, message), or None when stopping."""
        with self._changed:
            while not self._stopping:
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    _, _, tries, message = heapq.heappop(self._due)
                    return tries, message
                self._changed.wait(wait)
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            tries, message = item
            try:
                self._deliver(sns_event([message]))
                self.published += 1
            except Exception as exc:  # noqa: BLE001 - the function's error, as Lambda would see it
                if tries < len(self._retry_delays):
                    self.retried += 1
                    log.info("FeedbackFunction failed (%s); trying again in %.0f s", exc, self._retry_delays[tries])
                    self._schedule(time.monotonic() + self._retry_delays[tries], tries + 1, message)
                else:
                    log.error("FeedbackFunction failed %d times on an SES event (AWS: to its DLQ): %s", tries + 1, exc)

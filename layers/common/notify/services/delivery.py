"""The worker's pipeline: one job in, exactly one terminal outcome (or a scheduled retry) out.

Records reach it sorted (``notify.services.triage``); the provider calls are the channel senders'
(``notify.services.channels``), which it takes as a map from channel to sender.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Optional, Protocol

from notify.catalog import category_of
from notify.clock import Clock, iso
from notify.errors import (
    DeliveryError,
    NotFound,
    OutcomeUnknown,
    PermanentError,
    StoreUnavailable,
    TemplateFailed,
    TransientError,
)
from notify.limits import MAX_ERROR_CHARS
from notify.links import JobLinks, ShortLinks
from notify.models import Category, Channel, NotificationJob, Priority, Status
from notify.ports import (
    ChannelSender,
    DeadLetterQueue,
    DelayQueue,
    JobLedger,
    LinkStore,
    PreferenceStore,
    TemplateStore,
    ThrottleRules,
    UserDirectory,
)
from notify.records import (
    ClaimOutcome,
    ContactSnapshot,
    DeadLetter,
    RenderedMessage,
    Transition,
    UserPreferences,
    UserProfile,
)
from notify.rendering import locale_chain, render, render_context
from notify.resilience import TtlCache
from notify.retry import DEFAULT_POLICIES, MAX_SQS_DELAY, RetryPolicy
from notify.services.webhook_emitter import WebhookEmitter, for_status, job_data
from notify.throttles import ThrottleRule, ThrottleWindow, admit, attribute_name
from notify.unsubscribe import UnsubscribeLinks

log = logging.getLogger(__name__)

# The final statuses the worker records (SES's feedback records the others, and emits them itself).
WORKER_FINAL = frozenset({Status.SENT, Status.FAILED, Status.EXPIRED, Status.SKIPPED, Status.DIGESTED})

# The last known contact (docs/WORKER.md, step 5): used when the Auth service is unreachable on a job's third
# attempt (attempt index 2) or later, if taken within 30 days; rewritten when it changes or is a day old.
SNAPSHOT_FROM_ATTEMPT = 2
SNAPSHOT_MAX_AGE = timedelta(days=30)
SNAPSHOT_REFRESH = timedelta(days=1)
# A throttle counter's conditional write is tried this many times while other workers keep changing it (each
# failure is another worker's admission); then the job waits THROTTLE_BUSY_SECONDS and decides again.
THROTTLE_TRIES = 5
THROTTLE_BUSY_SECONDS = 1


class Outcome(str, Enum):
    """What became of one record in the worker; each value is counted as a metric of that name."""

    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    SKIPPED = "skipped"
    RETRYING = "retrying"
    SCHEDULED = "scheduled"
    DUPLICATE = "duplicate"
    DEFERRED = "deferred"  # another worker holds the job; re-checked later
    DEAD_LETTERED = "dead_lettered"  # not a job at all
    FANNED_OUT = "fanned_out"  # a segment page became jobs
    DIGESTED = "digested"  # collected into a digest bucket (notify.services.digests)
    DIGEST_MADE = "digest_made"  # a due bucket was closed and its digest's job made
    # A status webhook's task (notify.services.webhook_delivery): what became of its one POST.
    WEBHOOK_DELIVERED = "webhook_delivered"
    WEBHOOK_RETRYING = "webhook_retrying"
    WEBHOOK_WAITING = "webhook_waiting"  # a hop of a retry's wait longer than the delay queue's 15 minutes
    WEBHOOK_DROPPED = "webhook_dropped"  # its endpoint was deleted, disabled or unsubscribed meanwhile
    WEBHOOK_DISABLED = "webhook_disabled"  # a 410, or failing for 24 h: the endpoint was disabled
    WEBHOOK_DEAD_LETTERED = "webhook_dead_lettered"  # its retries were spent: webhook_undeliverable in the DLQ


class Digester(Protocol):
    """The digest step (``notify.services.digests.DigestService``), as the pipeline calls it."""

    def collect(self, job: NotificationJob, token: str, now: datetime) -> Optional[Outcome]:
        """DIGESTED (or DUPLICATE) if a rule collected the job; None to deliver it."""
        ...

    def context(self, job: NotificationJob) -> tuple[dict[str, Any], dict[str, Any]]:
        """A digest's job's payload and ``digest`` template variable."""
        ...


@dataclass
class DeliverySettings:
    """The worker's delivery knobs: fallback locale, claim lease, longest provider call, unsubscribe link, retries."""

    default_locale: str = "en"
    lease_seconds: int = 60
    # The longest one provider call may take: the clients' connect + read timeouts (2 s + 10 s, see
    # notify.adapters.aws.SEND_CONFIG) and the send-rate limiter's longest wait (2 s), rounded up. A call starts
    # only if it can end before the claim's lease does, so no other worker can take the job while it runs.
    call_seconds: float = 15.0
    policies: Mapping[Priority, RetryPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))


class DeliveryService:
    """Delivers jobs once each. Raises :class:`StoreUnavailable` only when an outcome cannot be recorded.

    The channels are ``senders`` (``notify.services.channels``, one per channel): a job whose channel has none
    fails (``permanent_error``).
    """

    def __init__(
        self,
        store: JobLedger,
        templates: TemplateStore,
        users: UserDirectory,
        delay_queue: DelayQueue,
        dlq: DeadLetterQueue,
        clock: Clock,
        senders: Mapping[Channel, ChannelSender],
        settings: Optional[DeliverySettings] = None,
        rand: Callable[[], float] = random.random,
        preferences: Optional[PreferenceStore] = None,
        unsubscribe: Optional[UnsubscribeLinks] = None,
        links: Optional[ShortLinks] = None,
        link_store: Optional[LinkStore] = None,
        throttles: Optional[ThrottleRules] = None,
        digests: Optional[Digester] = None,
        webhooks: Optional[WebhookEmitter] = None,
    ) -> None:
        self._unsubscribe = unsubscribe
        # Status webhooks: each recorded status an endpoint subscribes to becomes a message on the delay queue.
        self._webhooks = webhooks
        # Short links (``{{ url | short }}``): made for each render, stored before the message goes out.
        self._links = links if link_store is not None else None
        self._link_store = link_store
        self._preferences = preferences
        # Throttle rules (cached per container); the counters are on the user's item, through ``preferences``.
        self._throttles = throttles
        self._digests = digests
        self._store = store
        self._templates = templates
        self._users = users
        self._delay = delay_queue
        self._dlq = dlq
        self._clock = clock
        self._senders = dict(senders)
        self._settings = settings or DeliverySettings()
        self._rand = rand
        # The last known contacts this container wrote (a cached read of the user's item may predate them).
        self._snapshots: TtlCache[tuple[ContactSnapshot]] = TtlCache(
            ttl_seconds=SNAPSHOT_REFRESH.total_seconds(), max_items=10_000
        )
        self._snapshots_lock = threading.Lock()

    def handle(self, job: NotificationJob) -> Outcome:
        """Run the pipeline for one job: claim it, check its timing and the user's consent, then send it."""
        now = self._clock()
        due = job.due_at()
        if job.waiting and due is not None and due > now and (job.expires_at is None or job.expires_at > due):
            # A hop of a long wait already recorded as SCHEDULED/RETRYING: park it again, write nothing.
            self._enqueue(job, math.ceil((due - now).total_seconds()))
            return Outcome.SCHEDULED
        claim = self._store.claim(job, now, self._settings.lease_seconds)
        if claim.outcome is ClaimOutcome.DUPLICATE:
            if claim.current is not None and not claim.current.terminal:
                # Held by a live lease elsewhere: look again once it has run out.
                self._enqueue(job, self._settings.lease_seconds + 1)
                return Outcome.DEFERRED
            # A finished job's copy may be the one its first run asked for by raising after recording a status but
            # before queuing its webhooks: queue again every status the worker recorded, each with its detail (the
            # same ids: a receiver that got them drops these). A stale copy's claim carries no history.
            self._emit_recorded(job, claim.history)
            return Outcome.DUPLICATE
        token = claim.token
        if claim.outcome is ClaimOutcome.ABANDONED and job.channel is not Channel.WEBSOCKET:
            # (An in-app job is safe to run again: its inbox item is stored once, and a stored one is not pushed.)
            error = "a worker stopped while sending; the outcome is unknown, so it is not sent again"
            return self._fail(job, token, "outcome_unknown", error)
        held = self._timing(job, token, now)
        if held is None and self._digests is not None:
            held = self._digests.collect(job, token, now)
        if held is not None:
            return held
        preferences = self._preferences_of(job)
        held = self._consent(job, token, now, preferences)
        if held is not None:
            return held
        throttle: Optional[_Count] = None
        if claim.outcome is not ClaimOutcome.ABANDONED:
            # (An abandoned in-app job run again reached SENDING: it was counted then, and its item may be out.)
            decided = self._throttle(job, token, now, preferences)
            if isinstance(decided, Outcome):
                return decided
            throttle = decided
        return self._attempt(job, token, now, preferences, throttle)

    # -- steps --------------------------------------------------------------------------

    def _timing(self, job: NotificationJob, token: str, now: datetime) -> Optional[Outcome]:
        """EXPIRED if the job has expired or falls due after it expires, SCHEDULED (parked on the delay queue) if it
        is not due yet; None to go on."""
        if job.expires_at is not None and now >= job.expires_at:
            self._transition(job, Status.EXPIRED, token, error=f"expired at {iso(job.expires_at)}")
            return Outcome.EXPIRED
        due = job.due_at()
        if due is not None and job.expires_at is not None and due >= job.expires_at:
            self._transition(job, Status.EXPIRED, token, error=f"due at {iso(due)}, after it expires")
            return Outcome.EXPIRED
        if due is not None and due > now:
            wait = math.ceil((due - now).total_seconds())
            self._enqueue(job.model_copy(update={"waiting": True}), wait)
            self._transition(job, Status.SCHEDULED, token, detail={"due_at": iso(due)})
            return Outcome.SCHEDULED
        return None

    def _attempt(
        self,
        job: NotificationJob,
        token: str,
        now: datetime,
        preferences: Optional[UserPreferences],
        throttle: Optional[_Count] = None,
    ) -> Outcome:
        """Deliver the job (:meth:`_deliver`) and record SENT, or the retry or failure that what it raised calls for.

        A retry and a dead letter carry the push endpoints this attempt did, so they are not published to again.
        """
        deadline = now + timedelta(seconds=self._settings.lease_seconds)
        attempt = _Attempt(job, self._clock, deadline, self._settings.call_seconds)
        try:
            sent = self._deliver(job, token, preferences, attempt, throttle)
        except TransientError as exc:
            return self._retry(attempt.progressed(job), token, str(exc))
        except OutcomeUnknown as exc:
            # The request may have reached the provider: sending again could deliver twice.
            return self._fail(attempt.progressed(job), token, "outcome_unknown", str(exc))
        except TemplateFailed as exc:
            return self._fail(job, token, "template_error", str(exc))
        except (PermanentError, NotFound) as exc:
            return self._fail(attempt.progressed(job), token, "permanent_error", str(exc))
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug or a peer's nonsense fails this job, not the batch
            log.exception("delivering job %s raised", job.job_id)
            # Raised while sending, the provider may have taken it: never send again, let an operator decide.
            reason = "outcome_unknown" if attempt.sending else "internal_error"
            return self._fail(attempt.progressed(job), token, reason, _describe(exc))
        if isinstance(sent, Outcome):
            return sent
        self._transition(job, Status.SENT, token, detail=sent)
        return Outcome.SENT

    def _deliver(
        self,
        job: NotificationJob,
        token: str,
        preferences: Optional[UserPreferences],
        attempt: _Attempt,
        throttle: Optional[_Count] = None,
    ) -> Outcome | dict[str, Any]:
        """Find the recipient, render, mark the send and send: the detail of the job's SENT entry, or the outcome
        that ended the job before the send (SKIPPED; DUPLICATE when another copy recorded SENDING first).

        The mark is SENDING on the job's item; for a first attempt a throttle counts (``throttle``), it is the
        counter's write (:meth:`_count`), so a throttled send costs no more writes than any other."""
        profile, source = self._recipient(job, preferences)
        skipped = self._unreachable(job, token, profile, source, preferences)
        if skipped is not None:
            return skipped
        attempt.unsubscribe_link = self._unsubscribe_link(job)
        shortened = self._links.for_job(job) if self._links is not None else None
        message = self._render(job, profile, attempt.unsubscribe_link, shortened)
        self._store_links(shortened)
        rendered_with = {"template_version": message.template_version, "template_id": message.template_id}
        if throttle is not None:
            attempt.before_call()  # no count for a send the lease could not cover
            held = self._count(job, token, throttle)
            if held is not None:
                return held
            attempt.counted = True
        if (throttle is None or not throttle.marks) and not self._transition(
            job, Status.SENDING, token, detail=rendered_with
        ):
            return Outcome.DUPLICATE
        attempt.sending = True
        sender = self._senders.get(job.channel)
        if sender is None:
            raise PermanentError(f"the {job.channel.value} channel is not configured")
        sent = sender.send(job, profile, message, attempt)
        detail: dict[str, Any] = {"provider_message_id": sent.provider_id, "template_version": message.template_version}
        if throttle is not None and throttle.marks:
            detail["template_id"] = message.template_id  # (SENDING's detail, which this send did not write)
        detail["contact_source"] = source  # inline, auth or snapshot
        detail.update(sent.detail)  # the channel's: the email's unsubscribe header, push endpoints rejected, in-app
        if shortened is not None and shortened.made:
            detail["short_links"] = len(shortened.made)  # how many, never the codes (a click on one counts)
        return detail

    def _unreachable(
        self,
        job: NotificationJob,
        token: str,
        profile: UserProfile,
        source: str,
        preferences: Optional[UserPreferences],
    ) -> Optional[Outcome]:
        """SKIPPED if the recipient has no address on the job's channel, or their email address is suppressed."""
        if not _reaches(profile, job.channel):
            # No address on the job's channel (no email, no push endpoint): nothing to send and nothing for an
            # operator to act on, so no letter; the summaries count it.
            unreachable = {"reason": "unreachable", "channel": job.channel.value, "contact_source": source}
            self._transition(job, Status.SKIPPED, token, detail=unreachable)
            return Outcome.SKIPPED
        if job.channel is Channel.EMAIL and preferences is not None and profile.email in preferences.suppressed:
            # A hard bounce or a complaint suppressed the address: nothing more goes to it, account mail included.
            skipped = {"reason": "suppressed", "address": profile.email}
            self._transition(job, Status.SKIPPED, token, detail=skipped)
            return Outcome.SKIPPED
        return None

    def _reads_preferences(self, job: NotificationJob) -> bool:
        """Whether the job reads the user's item: every job but an account notification that is not an email
        (only an email can hit a suppressed address)."""
        if self._preferences is None:
            return False
        return category_of(job.event_type) is not Category.ACCOUNT or job.channel is Channel.EMAIL

    def _preferences_of(self, job: NotificationJob) -> Optional[UserPreferences]:
        """The user's preferences (and last known contact) when the job needs them: one read, cached per container."""
        if self._preferences is None or not self._reads_preferences(job):
            return None
        return self._preferences.get(job.user_id)

    def _consent(
        self, job: NotificationJob, token: str, now: datetime, preferences: Optional[UserPreferences]
    ) -> Optional[Outcome]:
        """The user's preferences, before anything is rendered or sent: SKIPPED if they opted out of the job's
        channel (globally or for its category), SCHEDULED until their quiet hours end; None to go on.

        Account notifications pass both.
        """
        category = category_of(job.event_type)
        if preferences is None or category is Category.ACCOUNT:
            return None
        if not preferences.allows(job.channel, category):
            detail = {"reason": "opted_out", "category": category.value}
            self._transition(job, Status.SKIPPED, token, detail=detail)
            return Outcome.SKIPPED
        until = preferences.quiet_until(now, category)
        if until is None:
            return None
        if job.expires_at is not None and until >= job.expires_at:
            error = f"quiet hours until {iso(until)}, after it expires"
            self._transition(job, Status.EXPIRED, token, error=error)
            return Outcome.EXPIRED
        self._enqueue(
            job.model_copy(update={"not_before": until, "waiting": True}), math.ceil((until - now).total_seconds())
        )
        self._transition(job, Status.SCHEDULED, token, detail={"due_at": iso(until), "reason": "quiet_hours"})
        return Outcome.SCHEDULED

    def _throttle(
        self, job: NotificationJob, token: str, now: datetime, preferences: Optional[UserPreferences]
    ) -> Outcome | Optional[_Count]:
        """The throttle of the job's category and channel, after the user's consent and before anything is looked up
        or rendered: SKIPPED (``throttled``) when its window is full as the user's item was read; else the count to
        make right before the send (:meth:`_count`), or None when no rule counts the job.

        Account notifications are never throttled, a digest's own job neither (it is its members' limit already), and
        a job is counted once: a retry or a redrive whose first attempt was counted is not counted again (one that
        failed before its provider call was not, and is), docs/WORKER.md#throttles. A refusal read from the cached
        item stands (a counter only fills up or moves to a later window, so a newer read would refuse too); an
        admission is decided again by the count's conditional write.
        """
        category = category_of(job.event_type)
        if self._throttles is None or self._preferences is None or category is Category.ACCOUNT:
            return None
        if job.digest is not None or job.throttle_counted:
            return None
        rule = self._throttles.rule(category, job.channel)
        if rule is None:
            return None
        attribute = attribute_name(category, job.channel)
        seen: Optional[ThrottleWindow] = preferences.throttles.get(attribute) if preferences is not None else None
        count = _Count(category, rule, attribute, seen, marks=job.attempt == 0)
        if seen is not None and job.job_id in seen.jobs:
            return self._counted_before(job, token, count)
        admitted, window = admit(seen, rule, now, job.job_id)
        if not admitted:
            return self._throttled(job, token, count, window)
        return count

    def _count(self, job: NotificationJob, token: str, count: _Count) -> Optional[Outcome]:
        """Count the send on the user's item, right before the provider call: the send's mark in place of SENDING.
        None to send; SKIPPED (``throttled``) if the window filled up meanwhile, SCHEDULED (``throttle_busy``) after
        THROTTLE_TRIES lost writes, or what :meth:`_counted_before` says of a job the counter admitted already.
        """
        assert self._preferences is not None
        seen = count.seen
        for _ in range(THROTTLE_TRIES):
            if seen is not None and job.job_id in seen.jobs:
                return self._counted_before(job, token, count)
            admitted, window = admit(seen, count.rule, self._clock(), job.job_id)
            if not admitted:
                return self._throttled(job, token, count, window)
            stored, seen = self._preferences.count_send(job.user_id, count.attribute, seen, window)
            if stored:
                return None
        now = self._clock()
        due = now + timedelta(seconds=THROTTLE_BUSY_SECONDS)
        self._enqueue(job.model_copy(update={"not_before": due, "waiting": True}), THROTTLE_BUSY_SECONDS)
        self._transition(job, Status.SCHEDULED, token, detail={"due_at": iso(due), "reason": "throttle_busy"})
        return Outcome.SCHEDULED

    def _counted_before(self, job: NotificationJob, token: str, count: _Count) -> Optional[Outcome]:
        """A job the counter admitted already. A retry (``count.marks`` false) was counted by an earlier attempt and
        goes on, with SENDING as its mark: None. A first attempt was counted as its send's mark, so a worker reached
        its provider call and then stopped (or its lease ran out) before recording SENT: an in-app job is safe to run
        again (its inbox item is stored once), None; any other may have been sent, so it is FAILED
        (``outcome_unknown``), as an abandoned SENDING is."""
        if not count.marks or job.channel is Channel.WEBSOCKET:
            return None
        error = (
            "a worker stopped after counting the send under its throttle; the outcome is unknown, "
            "so it is not sent again"
        )
        return self._fail(job, token, "outcome_unknown", error)

    def _throttled(self, job: NotificationJob, token: str, count: _Count, window: ThrottleWindow) -> Outcome:
        detail = {
            "reason": "throttled",
            "category": count.category.value,
            "limit": count.rule.limit,
            "period_seconds": count.rule.period_seconds,
            "window_ends_at": iso(window.ends_at(count.rule)),
        }
        self._transition(job, Status.SKIPPED, token, detail=detail)
        return Outcome.SKIPPED

    def _recipient(self, job: NotificationJob, preferences: Optional[UserPreferences]) -> tuple[UserProfile, str]:
        """The job's recipient and where their contact came from (``contact_source``):

        - ``inline``: the job carries its contact (``recipients.users``): the Auth service is not asked;
        - ``auth``: the Auth service's answer, kept as the user's last known contact (see :meth:`_remember`);
        - ``snapshot``: the Auth service is unreachable on the job's third attempt (attempt index
          :data:`SNAPSHOT_FROM_ATTEMPT`) or a later one, and the user's item holds a last known contact taken
          within :data:`SNAPSHOT_MAX_AGE`. Otherwise the TransientError stands and the job retries.

        A user the Auth service says is gone (404) is a PermanentError, and their last known contact is dropped.
        """
        if job.contact is not None:
            return _inline_profile(job), "inline"
        try:
            profile = self._users.get_user(job.user_id)
        except NotFound:
            self._forget(job.user_id)
            raise PermanentError(f"user {job.user_id} does not exist in the Auth service") from None
        except TransientError as exc:
            snapshot = self._last_known(job, preferences)
            if snapshot is None:
                raise
            log.warning(
                "Auth unreachable on attempt %d of job %s; sending with the contact of %s: %s",
                job.attempt,
                job.job_id,
                snapshot.taken_at,
                exc,
            )
            return snapshot.profile, "snapshot"
        self._remember(job, profile, preferences)
        return profile, "auth"

    def _last_known(self, job: NotificationJob, preferences: Optional[UserPreferences]) -> Optional[ContactSnapshot]:
        """The user's last known contact as their item holds it (read now for a job that did not read it), if the
        job is on its third attempt or later and the contact is recent enough; else None."""
        if job.attempt < SNAPSHOT_FROM_ATTEMPT or self._preferences is None:
            return None
        stored = preferences if self._reads_preferences(job) else self._preferences.get(job.user_id)
        snapshot = stored.contact if stored is not None else None
        if snapshot is None or snapshot.profile.id != job.user_id:
            return None
        if self._clock() - datetime.fromisoformat(snapshot.taken_at) > SNAPSHOT_MAX_AGE:
            return None
        return snapshot

    def _remember(self, job: NotificationJob, profile: UserProfile, preferences: Optional[UserPreferences]) -> None:
        """Keep the Auth service's answer as the user's last known contact, on the item the job read: written only
        when it differs from the one known, or that one is :data:`SNAPSHOT_REFRESH` old (at most one write per user
        and day while nothing changes). A job that did not read the item writes nothing. A failed write is logged:
        the notification does not depend on it."""
        if self._preferences is None or not self._reads_preferences(job):
            return
        now = self._clock()
        with self._snapshots_lock:
            written = self._snapshots.get(job.user_id)  # this container's own write, newer than a cached read
            known = written[0] if written is not None else (preferences.contact if preferences else None)
            if (
                known is not None
                and known.profile == profile
                and now - datetime.fromisoformat(known.taken_at) < SNAPSHOT_REFRESH
            ):
                return
            snapshot = ContactSnapshot(profile, iso(now))
            self._snapshots.put(job.user_id, (snapshot,))
        try:
            self._preferences.remember_contact(job.user_id, snapshot)
        except StoreUnavailable as exc:
            self._snapshots.pop(job.user_id)
            log.warning("could not keep the last known contact of user %s: %s", job.user_id, exc)

    def _forget(self, user_id: str) -> None:
        """Drop the last known contact of a user the Auth service says is gone."""
        self._snapshots.pop(user_id)
        if self._preferences is not None:
            self._preferences.forget_contact(user_id)

    def _render(
        self,
        job: NotificationJob,
        profile: UserProfile,
        unsubscribe_url: Optional[str],
        shortened: Optional[JobLinks] = None,
    ) -> RenderedMessage:
        requested = job.locale or profile.locale
        for locale in locale_chain(requested, self._settings.default_locale):
            if job.template_version is not None:
                template = self._templates.version(job.template_key, job.channel, locale, job.template_version)
            else:
                template = self._templates.latest(job.template_key, job.channel, locale)
            if template is not None and not template.deleted:
                event = {
                    "event_id": job.event_id,
                    "event_type": job.event_type,
                    "job_id": job.job_id,
                    "unsubscribe_url": unsubscribe_url,  # for a visible link in the body; None for account mail
                }
                payload, digest = job.payload, None
                if job.digest is not None and self._digests is not None:
                    payload, digest = self._digests.context(job)
                context = render_context(job.template_key, payload, profile.template_context(), event, digest=digest)
                return render(template, context, shorten=shortened.short if shortened is not None else None)
        raise PermanentError(
            f"no template for {job.template_key}/{job.channel.value} in {requested or 'default'} locale"
        )

    def _store_links(self, shortened: Optional[JobLinks]) -> None:
        """Store the short links a render made (one write each), before the message carrying them goes out: a store
        that cannot take them retries the job, rather than sending links that lead nowhere."""
        if shortened is None or not shortened.made or self._link_store is None:
            return
        try:
            self._link_store.put_links(shortened.made)
        except StoreUnavailable as exc:
            raise TransientError(f"cannot store the message's short links: {exc}") from exc

    def _unsubscribe_link(self, job: NotificationJob) -> Optional[str]:
        """The one-click unsubscribe link of an email that is not an account notification (None otherwise)."""
        category = category_of(job.event_type)
        if self._unsubscribe is None or job.channel is not Channel.EMAIL or category is Category.ACCOUNT:
            return None
        return self._unsubscribe.link(job.user_id, category, job.channel)

    # -- outcomes -----------------------------------------------------------------------

    def _retry(self, job: NotificationJob, token: str, error: str) -> Outcome:
        policy = self._settings.policies[job.priority]
        if policy.exhausted(job.attempt - job.retry_base):
            return self._fail(job, token, "attempts_exhausted", f"gave up after {job.attempt + 1} attempts: {error}")
        wait = policy.delay(job.attempt, self._rand)
        nxt = job.model_copy(
            update={"attempt": job.attempt + 1, "not_before": self._clock() + timedelta(seconds=wait), "waiting": True}
        )
        if nxt.expires_at is not None and nxt.not_before is not None and nxt.not_before >= nxt.expires_at:
            self._transition(job, Status.EXPIRED, token, error=f"would expire before the next attempt: {error}")
            return Outcome.EXPIRED
        self._enqueue(nxt, wait)
        detail: dict[str, Any] = {"retry_in": wait}
        if job.pushed:
            detail["endpoints_done"] = len(job.pushed)
        self._transition(job, Status.RETRYING, token, attempt=nxt.attempt, error=error, detail=detail)
        return Outcome.RETRYING

    def _fail(self, job: NotificationJob, token: str, reason: str, error: str) -> Outcome:
        # The DLQ first: a failed write after it can only duplicate the letter, never lose it.
        job_data = job.model_dump(mode="json", exclude={"waiting"})
        self._dead_letter(DeadLetter(reason, error, job.attempt, job=job_data, source="worker"))
        self._transition(job, Status.FAILED, token, error=error, detail={"reason": reason})
        return Outcome.FAILED

    def _transition(
        self,
        job: NotificationJob,
        status: Status,
        token: str,
        *,
        attempt: Optional[int] = None,
        error: Optional[str] = None,
        detail: Optional[dict[str, Any]] = None,
    ) -> bool:
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[:MAX_ERROR_CHARS] + "…"
        recorded = self._store.transition(
            job, status, self._clock(), token, attempt=attempt, error=error, detail=detail
        )
        if recorded:
            self._emit(job, status, detail)
        return recorded

    def _emit_recorded(self, job: NotificationJob, history: Sequence[Transition]) -> None:
        if self._webhooks is not None:
            data = job_data(job)
            changes = [c for t in history if t.status in WORKER_FINAL for c in for_status(data, t.status, t.detail)]
            self._webhooks.emit(changes)

    def _emit(self, job: NotificationJob, status: Status, detail: Optional[dict[str, Any]] = None) -> None:
        """Queue the status webhooks of a recorded ``status`` (StoreUnavailable if the queue refuses them: the record
        is then delivered again, and that copy, a DUPLICATE, queues them again)."""
        if self._webhooks is not None:
            self._webhooks.emit(for_status(job_data(job), status, detail))

    def _enqueue(self, job: NotificationJob, wait_seconds: int) -> None:
        try:
            self._delay.enqueue([job], min(MAX_SQS_DELAY, max(0, wait_seconds)))
        except DeliveryError as exc:
            raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc

    def _dead_letter(self, letter: DeadLetter) -> None:
        stamped = DeadLetter(**{**letter.__dict__, "failed_at": iso(self._clock())})
        try:
            self._dlq.send(stamped)
        except DeliveryError as exc:
            raise StoreUnavailable(f"dead-letter queue unavailable: {exc}") from exc


@dataclass(frozen=True)
class _Count:
    """A send a throttle counts: the job's category, its rule, the counter's attribute and its state as read, and
    whether the count is the send's mark (a first attempt's; a retry's send is marked by SENDING)."""

    category: Category
    rule: ThrottleRule
    attribute: str
    seen: Optional[ThrottleWindow]
    marks: bool = True


class _Attempt:
    """One attempt's provider calls (a :class:`~notify.ports.SendAttempt`): the claim's deadline, the unsubscribe
    link, the push endpoints done so far, and whether the send has begun (anything raised after that may have
    reached the provider)."""

    def __init__(self, job: NotificationJob, clock: Clock, deadline: datetime, call_seconds: float) -> None:
        self.pushed: dict[str, str] = dict(job.pushed or {})  # by this attempt or earlier ones
        self.counted = job.throttle_counted  # a throttle counted the job's send (this attempt or an earlier one)
        self.unsubscribe_link: Optional[str] = None
        self.sending = False
        self._clock = clock
        self._deadline = deadline
        self._call_seconds = call_seconds

    def time_left(self) -> bool:
        """True while a provider call started now would end inside the claim's lease."""
        return self._clock() + timedelta(seconds=self._call_seconds) <= self._deadline

    def before_call(self) -> None:
        """Refuse to start a provider call that could outlive the claim's lease (the rest of the job retries)."""
        if not self.time_left():
            raise TransientError("the claim's lease could run out during the provider call; retrying the rest later")

    def progressed(self, job: NotificationJob) -> NotificationJob:
        """The job carrying its progress, so its retry and its dead letter skip the push endpoints already done and
        are not counted by a throttle again."""
        changes: dict[str, Any] = {}
        if self.pushed and self.pushed != (job.pushed or {}):
            changes["pushed"] = dict(self.pushed)
        if self.counted and not job.throttle_counted:
            changes["throttle_counted"] = True
        return job.model_copy(update=changes) if changes else job


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def _reaches(profile: UserProfile, channel: Channel) -> bool:
    """Whether the recipient has an address on the channel: an email, a push endpoint; in-app always (the inbox)."""
    if channel is Channel.EMAIL:
        return bool(profile.email)
    if channel is Channel.PUSH:
        return bool(profile.push_endpoints)
    return True


def _inline_profile(job: NotificationJob) -> UserProfile:
    """An inline recipient's profile, from the contact their job carries."""
    contact = job.contact
    assert contact is not None
    return UserProfile(
        id=job.user_id,
        email=contact.email,
        phone=contact.phone,
        first_name=contact.first_name,
        last_name=contact.last_name,
        locale=contact.locale,
        push_endpoints=tuple(contact.push_endpoints),
    )

"""The worker's pipeline: one job in, exactly one terminal outcome (or a scheduled retry) out."""

from __future__ import annotations

import base64
import json
import logging
import math
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Optional

from pydantic import ValidationError

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
from notify.links import JobLinks, ShortLinks
from notify.models import JOB_SCHEMA_VERSION, Category, Channel, FanoutTask, NotificationJob, Priority, Status
from notify.ports import (
    DeadLetterQueue,
    DelayQueue,
    EmailSender,
    JobLedger,
    LinkStore,
    PreferenceStore,
    PushSender,
    TemplateStore,
    UserDirectory,
)
from notify.records import ClaimOutcome, ContactSnapshot, DeadLetter, RenderedMessage, UserPreferences, UserProfile
from notify.rendering import locale_chain, render, render_context
from notify.resilience import TtlCache
from notify.retry import DEFAULT_POLICIES, MAX_SQS_DELAY, RetryPolicy
from notify.services.fanout import FanoutService
from notify.services.inbox import InboxService
from notify.unsubscribe import UnsubscribeLinks

log = logging.getLogger(__name__)

# A dead letter keeps at most this much of a raw record (SQS takes 256 KiB per message, base64 adds a third).
MAX_RAW_BYTES = 96 * 1024
MAX_ERROR_CHARS = 2000
# The last known contact (docs/WORKER.md, step 5): used when the Auth service is unreachable on a job's third
# attempt (attempt index 2) or later, if taken within 30 days; rewritten when it changes or is a day old.
SNAPSHOT_FROM_ATTEMPT = 2
SNAPSHOT_MAX_AGE = timedelta(days=30)
SNAPSHOT_REFRESH = timedelta(days=1)


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


@dataclass(frozen=True)
class Result:
    """What happened to one record, with the job when it was one."""

    outcome: Outcome
    job: Optional[NotificationJob]
    fanned_out_jobs: int = 0


class InvalidJob(ValueError):
    """A record that is not a job this worker understands."""


def parse_message(raw: str | bytes) -> NotificationJob | FanoutTask:
    """Parse a Kafka value or SQS body; refuse unknown schema versions."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidJob(f"not UTF-8 text: {exc}") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidJob(f"not JSON: {exc}") from None
    except RecursionError:
        raise InvalidJob("not a job: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidJob("not a JSON object")
    version = data.get("schema_version")
    if version != JOB_SCHEMA_VERSION:
        raise InvalidJob(f"unsupported schema_version {version!r}; this worker reads {JOB_SCHEMA_VERSION}")
    try:
        if data.get("kind") == "fanout":
            return FanoutTask.model_validate(data)
        return NotificationJob.model_validate(data)
    except ValidationError as exc:
        raise InvalidJob(f"invalid job: {exc.errors(include_url=False)}") from None


@dataclass
class DeliverySettings:
    """The worker's delivery knobs: fallback locale, claim lease, longest provider call, unsubscribe link, retries."""

    sender_name: str = "Notifications"
    default_locale: str = "en"
    lease_seconds: int = 60
    # The longest one provider call may take: the clients' connect + read timeouts (2 s + 10 s, see
    # notify.adapters.aws.SEND_CONFIG) and the send-rate limiter's longest wait (2 s), rounded up. A call starts
    # only if it can end before the claim's lease does, so no other worker can take the job while it runs.
    call_seconds: float = 15.0
    policies: Mapping[Priority, RetryPolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))


class DeliveryService:
    """Delivers jobs once each. Raises :class:`StoreUnavailable` only when an outcome cannot be recorded."""

    def __init__(
        self,
        store: JobLedger,
        templates: TemplateStore,
        users: UserDirectory,
        delay_queue: DelayQueue,
        dlq: DeadLetterQueue,
        clock: Clock,
        email: Optional[EmailSender] = None,
        push: Optional[PushSender] = None,
        inbox: Optional[InboxService] = None,
        settings: Optional[DeliverySettings] = None,
        rand: Callable[[], float] = random.random,
        fanout: Optional[FanoutService] = None,
        preferences: Optional[PreferenceStore] = None,
        unsubscribe: Optional[UnsubscribeLinks] = None,
        links: Optional[ShortLinks] = None,
        link_store: Optional[LinkStore] = None,
    ) -> None:
        self._unsubscribe = unsubscribe
        # Short links (``{{ url | short }}``): made for each render, stored before the message goes out.
        self._links = links if link_store is not None else None
        self._link_store = link_store
        self._fanout = fanout
        self._preferences = preferences
        self._store = store
        self._templates = templates
        self._users = users
        self._delay = delay_queue
        self._dlq = dlq
        self._clock = clock
        self._email = email
        self._push = push
        self._inbox = inbox
        self._settings = settings or DeliverySettings()
        self._rand = rand
        # The last known contacts this container wrote (a cached read of the user's item may predate them).
        self._snapshots: TtlCache[tuple[ContactSnapshot]] = TtlCache(
            ttl_seconds=SNAPSHOT_REFRESH.total_seconds(), max_items=10_000
        )
        self._snapshots_lock = threading.Lock()

    # -- entry points ----------------------------------------------------------------

    def handle_raw(self, raw: str | bytes, source: str) -> Result:
        """Parse and deliver one record. Whatever it holds, it ends in a recorded outcome or in the DLQ.

        Only :class:`StoreUnavailable` escapes (the outcome could not be recorded): the caller reports that
        record alone for a retry. Any other exception dead-letters the record with its raw bytes and the reason,
        so no record can stop the records behind it.
        """
        try:
            message = parse_message(raw)
        except InvalidJob as exc:
            self._dead_letter(raw_letter("invalid_job", str(exc), raw, source))
            return Result(Outcome.DEAD_LETTERED, None)
        try:
            if isinstance(message, FanoutTask):
                if self._fanout is None:
                    raise PermanentError("this worker does not fan out")
                page = self._fanout.handle(message)
                outcome = Outcome.FANNED_OUT if page.outcome == "expanded" else Outcome(page.outcome)
                return Result(outcome, None, page.jobs)
            return Result(self.handle(message), message)
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - isolation: one record must never stop the batch
            log.exception("a record made the worker raise; it is dead-lettered")
            self._dead_letter(raw_letter("internal_error", _describe(exc), raw, source))
            return Result(Outcome.DEAD_LETTERED, message if isinstance(message, NotificationJob) else None)

    def dead_letter_raw(self, reason: str, error: str, raw: str | bytes, source: str) -> None:
        """Dead-letter a record the trigger could not even hand over as bytes."""
        self._dead_letter(raw_letter(reason, error, raw, source))

    def handle(self, job: NotificationJob) -> Outcome:
        """Run the pipeline for one job."""
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
            return Outcome.DUPLICATE
        token = claim.token
        if claim.outcome is ClaimOutcome.ABANDONED and job.channel is not Channel.WEBSOCKET:
            # (An in-app job is safe to run again: its inbox item is stored once, and a stored one is not pushed.)
            error = "a worker stopped while sending; the outcome is unknown, so it is not sent again"
            return self._fail(job, token, "outcome_unknown", error)
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
        preferences = self._preferences_of(job)
        held = self._consent(job, token, now, preferences)
        if held is not None:
            return held
        deadline = now + timedelta(seconds=self._settings.lease_seconds)
        progress: dict[str, str] = dict(job.pushed or {})  # push endpoints done, by this attempt or earlier ones
        rejected: dict[str, str] = {}  # push endpoints that refused this attempt for good (disabled, deleted)
        sending = False
        shortened: Optional[JobLinks] = None
        try:
            profile, source = self._recipient(job, preferences)
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
            link = self._unsubscribe_link(job)
            shortened = self._links.for_job(job) if self._links is not None else None
            message = self._render(job, profile, link, shortened)
            self._store_links(shortened)
            rendered_with = {"template_version": message.template_version, "template_id": message.template_id}
            if not self._transition(job, Status.SENDING, token, detail=rendered_with):
                return Outcome.DUPLICATE
            sending = True
            in_app: dict[str, Any] = {}
            provider_id = self._send(job, profile, message, deadline, progress, rejected, link, in_app)
        except TransientError as exc:
            return self._retry(_progressed(job, progress), token, str(exc))
        except OutcomeUnknown as exc:
            # The request may have reached the provider: sending again could deliver twice.
            return self._fail(_progressed(job, progress), token, "outcome_unknown", str(exc))
        except TemplateFailed as exc:
            return self._fail(job, token, "template_error", str(exc))
        except (PermanentError, NotFound) as exc:
            return self._fail(_progressed(job, progress), token, "permanent_error", str(exc))
        except StoreUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug or a peer's nonsense fails this job, not the batch
            log.exception("delivering job %s raised", job.job_id)
            # Raised while sending, the provider may have taken it: never send again, let an operator decide.
            reason = "outcome_unknown" if sending else "internal_error"
            return self._fail(_progressed(job, progress), token, reason, _describe(exc))
        detail: dict[str, Any] = {"provider_message_id": provider_id, "template_version": message.template_version}
        detail["contact_source"] = source  # inline, auth or snapshot
        if rejected:
            detail["endpoints_rejected"] = rejected
        if link is not None:
            # That the email carried one (RFC 8058), never the link: its token opts the user out, and whoever may
            # read statuses (a support or reporting key) must not be able to.
            detail["list_unsubscribe"] = True
        if shortened is not None and shortened.made:
            detail["short_links"] = len(shortened.made)  # how many, never the codes (a click on one counts)
        detail.update(in_app)
        self._transition(job, Status.SENT, token, detail=detail)
        return Outcome.SENT

    # -- steps --------------------------------------------------------------------------

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
                context = render_context(job.template_key, job.payload, profile.template_context(), event)
                return render(template, context, shorten=shortened.short if shortened is not None else None)
        raise PermanentError(
            f"no template for {job.template_key}/{job.channel.value} in {requested or 'default'} locale"
        )

    def _send(
        self,
        job: NotificationJob,
        profile: UserProfile,
        message: RenderedMessage,
        deadline: datetime,
        progress: dict[str, str],
        rejected: dict[str, str],
        link: Optional[str],
        in_app: dict[str, Any],
    ) -> str:
        """Call the channel's provider, once per recipient address.

        ``progress`` collects the push endpoints done; ``rejected`` the ones that refused for good (a disabled or
        deleted endpoint), which are skipped so that the user's other devices still get the push. The job fails
        only when every endpoint refused. An in-app job is stored in the user's inbox and pushed to their live
        connections; ``in_app`` collects what that did, for the ``SENT`` history entry.
        """
        data = {"event_type": job.event_type, "job_id": job.job_id, "event_id": job.event_id}
        if job.channel is Channel.EMAIL:
            if not profile.email:
                raise PermanentError(f"user {job.user_id} has no email address")
            if self._email is None:
                raise PermanentError("the email channel is not configured")
            self._before_call(deadline)
            tags = {"job_id": job.job_id, "event_type": job.event_type}
            # Account mail's links carry secrets (reset, confirmation): SES must neither wrap them nor add a pixel.
            tracked = category_of(job.event_type) is not Category.ACCOUNT
            return self._email.send_email(profile.email, message, self._email_headers(link), tags, tracked=tracked)
        if job.channel is Channel.PUSH:
            if not profile.push_endpoints:
                raise PermanentError(f"user {job.user_id} has no push endpoint")
            if self._push is None:
                raise PermanentError("the push channel is not configured")
            for endpoint in profile.push_endpoints:
                if endpoint not in progress:  # an earlier attempt published to it already
                    self._before_call(deadline)
                    try:
                        progress[endpoint] = self._push.send_push(endpoint, message, data)
                    except PermanentError as exc:
                        rejected[endpoint] = str(exc)[:MAX_ERROR_CHARS]
            if not any(e in progress for e in profile.push_endpoints):
                raise PermanentError("; ".join(f"{e}: {error}" for e, error in rejected.items()))
            return ",".join(progress[e] for e in profile.push_endpoints if e in progress)
        if self._inbox is None:
            raise PermanentError("the websocket channel is not configured")
        delivered = self._inbox.deliver(job, message, lambda: self._time_left(deadline))
        in_app["inbox_item_id"] = delivered.item_id
        in_app["connections_reached"] = len(delivered.reached)
        if not delivered.stored:
            in_app["inbox_item_existed"] = True  # a redelivered job: stored and pushed by its first copy
        if delivered.gone:
            in_app["connections_gone"] = len(delivered.gone)
        if delivered.failed:
            in_app["connections_failed"] = delivered.failed
        return delivered.item_id

    def _time_left(self, deadline: datetime) -> bool:
        """True while a provider call started now would end inside the claim's lease."""
        return self._clock() + timedelta(seconds=self._settings.call_seconds) <= deadline

    def _before_call(self, deadline: datetime) -> None:
        """Refuse to start a provider call that could outlive the claim's lease (the rest of the job retries)."""
        if not self._time_left(deadline):
            raise TransientError("the claim's lease could run out during the provider call; retrying the rest later")

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

    @staticmethod
    def _email_headers(link: Optional[str]) -> dict[str, str]:
        """RFC 8058's two headers when the email has an unsubscribe link."""
        if link is None:
            return {}
        return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

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
        return self._store.transition(job, status, self._clock(), token, attempt=attempt, error=error, detail=detail)

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


def raw_letter(reason: str, error: str, raw: str | bytes, source: str) -> DeadLetter:
    """A dead letter for a record that is not (or could not be handled as) a job: its raw bytes and the reason.

    Text is kept as text; bytes that are not UTF-8 are kept base64-encoded in ``raw_base64``. Both are cut at
    :data:`MAX_RAW_BYTES` (``raw_size`` says how big the record was).
    """
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    kept = data[:MAX_RAW_BYTES]
    text: Optional[str] = None
    try:
        text = kept.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if text is not None and len(json.dumps(text)) > 2 * MAX_RAW_BYTES:
        text = None  # mostly escapes (control characters): base64 is smaller
    encoded = None if text is not None else base64.b64encode(kept).decode()
    return DeadLetter(
        reason,
        error[:MAX_ERROR_CHARS],
        0,
        raw=text,
        raw_base64=encoded,
        raw_size=len(data),
        source=source,
    )


def _progressed(job: NotificationJob, progress: dict[str, str]) -> NotificationJob:
    """The job carrying its push progress, so its retry and its dead letter skip the endpoints already done."""
    if not progress or progress == (job.pushed or {}):
        return job
    return job.model_copy(update={"pushed": dict(progress)})


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

"""Digests in the worker (issue 23): collecting jobs into buckets, closing a bucket when it is due, and what its job
renders. The rules and the arithmetic are :mod:`notify.digests`; the buckets are a :class:`~notify.ports.DigestStore`.

1. **Collecting.** A job whose event type has a rule covering its channel (never an account notification, never a
   digest's own job) is added to the open bucket of its group, and recorded ``DIGESTED`` with the bucket's id and its
   digest's job id, in one atomic write (:meth:`DigestStore.add`): a redelivered job finds itself DIGESTED and is a
   duplicate; a job meeting a bucket that closed meanwhile joins the next generation. Preferences, quiet hours and
   suppression are the digest's, checked when it is sent, not each member's.
2. **Due.** The member that opens a bucket whose window ends within the delay queue's 15 minutes puts its flush task
   on the queue, due when the window ends (before the write that opens it: a worker stopped in between leaves a task
   that finds nothing, never a bucket without a task). A longer window's bucket is opened with an entry in the due
   index (the same transaction), which the scheduler's one-minute sweep (:class:`DigestSweep`) turns into a task
   in the minute before it is due: a bucket waiting a day costs no queue messages meanwhile. The member that fills
   a bucket puts a task due at once.
3. **Sending.** A due task closes the bucket (:meth:`DigestStore.close`, atomic with moving the head to the next
   generation, so a late member opens the next bucket) and makes the digest's job, whose id is derived from the
   bucket (:func:`notify.digests.digest_job_id`): a task that finds its bucket closed already makes the same job
   again, and the job's claim lets one of them through. That job then takes the normal pipeline (consent, quiet
   hours, the Auth service, rendering, retries, the DLQ, feedback); it renders the event type's ``digest`` template
   variant with the ``digest`` variable (:func:`notify.digests.digest_context`), read from the bucket's members.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Optional

from notify.catalog import EVENT_TYPES, category_of
from notify.clock import Clock, iso
from notify.digests import (
    DUE_SHARDS,
    CronWindow,
    DigestItem,
    DigestRule,
    bucket_id,
    bucket_key,
    digest_context,
    digest_event_id,
    digest_job_id,
    digest_template_key,
    flush_at,
    is_full,
    window_end,
)
from notify.errors import DeliveryError, NotFound, PermanentError, StoreUnavailable, TransientError
from notify.models import Category, Channel, Contact, DigestFlushTask, DigestRef, Message, NotificationJob, Status
from notify.ports import DelayQueue, DigestRules, DigestStore, UserDirectory
from notify.records import AddOutcome, BucketHead, BucketOwner, ClosedBucket, DigestMember
from notify.resilience import TtlCache
from notify.services.delivery import MAX_SQS_DELAY, Outcome
from notify.services.webhook_emitter import WebhookEmitter, for_status, job_data

log = logging.getLogger(__name__)

# Cron windows end at the same instant for every user of a zone: their flushes are spread over this many seconds
# (notify.digests.flush_at), so a million buckets due at 09:00 do not arrive in one second.
CRON_SPREAD_SECONDS = 300
# Members added together read the same count; within this many of max_items, the one that may have filled the
# bucket reads the head again (the worker's threads: WORKER_CONCURRENCY, 16 by default).
FILL_SLACK = 16
# A member meeting a bucket that closes under it tries the next generation; this many heads read, at most.
ADD_TRIES = 5
# The scheduler's sweep queues the due index's buckets due within this much of its tick (one minute apart), and any
# bucket still open this long after its time (its flush task was lost).
SWEEP_AHEAD = timedelta(seconds=60)
STUCK_AFTER = timedelta(minutes=5)
# A digest's job may wait (quiet hours, retries) this long after its bucket closed before it expires.
DIGEST_TTL = timedelta(days=1)


class DigestService:
    """Collects jobs into digest buckets, closes due buckets and makes their jobs (see the module)."""

    def __init__(
        self,
        store: DigestStore,
        rules: DigestRules,
        delay_queue: DelayQueue,
        users: UserDirectory,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        webhooks: Optional[WebhookEmitter] = None,
    ) -> None:
        self._store = store
        self._webhooks = webhooks  # a member's DIGESTED is a status change too (notification.digested)
        self._rules = rules
        self._sleep = sleep
        self._delay = delay_queue
        self._users = users
        self._clock = clock
        # The buckets this container queued a flush for: the jobs of one batch (one user's, on the worker's threads)
        # all find the bucket unopened, and one task is enough.
        self._scheduled: TtlCache[datetime] = TtlCache(ttl_seconds=MAX_SQS_DELAY, max_items=10_000)
        self._scheduled_lock = threading.Lock()

    # -- collecting (the worker's step after a job's timing) -----------------------------------

    def collect(self, job: NotificationJob, token: str, now: datetime) -> Optional[Outcome]:
        """DIGESTED if the job joined a bucket, DUPLICATE if its lease was lost meanwhile; None when no rule takes
        it (deliver it as usual)."""
        if job.digest is not None or category_of(job.event_type) is Category.ACCOUNT:
            return None
        rule = self._rules.rule(job.event_type, job.channel)
        if rule is None:
            return None
        group = bucket_key(rule, job.user_id, job.channel, job.payload)
        contact = job.contact.model_dump_json(exclude_none=True) if job.contact is not None else None
        owner = BucketOwner(job.user_id, job.event_type, job.channel.value, rule.max_items, contact)
        member = DigestMember(job.job_id, iso(job.created_at), dict(job.payload))
        for tries in range(ADD_TRIES):
            # A group's first head starts its generations at the time in seconds, so a group whose head expired
            # (RETENTION without a member) never reuses an old bucket's id.
            head = self._store.head(group) or BucketHead(group, int(now.timestamp()))
            bucket = bucket_id(group, head.generation)
            swept = False
            if head.count == 0:
                due = self._window_end(rule, job, bucket, now)
                head = BucketHead(group, head.generation, 0, iso(due))
                # A window the delay queue can hold is queued before the bucket exists (see the module); a longer
                # one waits in the due index, written with the bucket, for the scheduler's sweep.
                swept = (due - now).total_seconds() > MAX_SQS_DELAY
                if not swept:
                    self._schedule_once(
                        bucket, DigestFlushTask(group_key=group, generation=head.generation, due_at=due), now
                    )
            detail = {
                "bucket_id": bucket,
                "digest_job_id": digest_job_id(bucket, job.user_id, job.channel),
                "flush_at": head.flush_at,
            }
            try:
                outcome, count = self._store.add(head, owner, member, job, token, now, detail, swept)
            except StoreUnavailable:
                self._scheduled.pop(bucket)  # the bucket may not exist: the job run again queues its task again
                raise
            if outcome is AddOutcome.NOT_OURS:
                return Outcome.DUPLICATE
            if outcome is AddOutcome.ADDED:
                if self._filled(group, head.generation, count, rule):
                    full = DigestFlushTask(group_key=group, generation=head.generation, due_at=now)
                    self._schedule_once(f"{bucket}#full", full, now)
                if self._webhooks is not None:
                    self._webhooks.emit(for_status(job_data(job), Status.DIGESTED, detail))
                return Outcome.DIGESTED
            self._sleep(random.uniform(0, min(0.2, 0.01 * 2**tries)))  # another member's write, or a close
        raise StoreUnavailable(f"the digest buckets of group {group} kept closing under job {job.job_id}")

    def _filled(self, group: str, generation: int, count: int, rule: DigestRule) -> bool:
        """Whether this member filled the bucket. ``count`` is the head's count as read before the add, plus one:
        members added at the same time (one user's jobs in one batch) all read the same count, so near the limit the
        head is read again for the true one (one read, only within FILL_SLACK members of ``max_items``)."""
        if is_full(count, rule):
            return True
        if count + FILL_SLACK < rule.max_items:
            return False
        head = self._store.head(group)
        return head is not None and head.generation == generation and is_full(head.count, rule)

    def _window_end(self, rule: DigestRule, job: NotificationJob, bucket: str, now: datetime) -> datetime:
        """When a bucket opened now by ``job`` is due: a seconds window from now; a cron window at its next fire in
        the user's zone (the Auth service's profile, else the rule's, else UTC), spread (CRON_SPREAD_SECONDS)."""
        if not isinstance(rule.window, CronWindow):
            return window_end(rule.window, now)
        return flush_at(window_end(rule.window, now, self._zone(job)), bucket, CRON_SPREAD_SECONDS)

    def _zone(self, job: NotificationJob) -> Optional[str]:
        """The user's time zone as the Auth service knows it; None when it cannot say (the rule's zone is used)."""
        try:
            return self._users.get_user(job.user_id).timezone
        except (TransientError, PermanentError, NotFound) as exc:
            log.info("no time zone for user %s (%s): the digest rule's zone is used", job.user_id, exc)
            return None

    def _schedule_once(self, key: str, task: DigestFlushTask, now: datetime) -> None:
        """Queue ``task`` unless this container queued ``key``'s task already and it is not due yet (the jobs of
        one batch, on the worker's threads, all find the bucket unopened; one task is enough, and the due index's
        sweep queues one again for a bucket still open well after its time)."""
        with self._scheduled_lock:
            queued = self._scheduled.get(key)
            if queued is not None and queued > now:
                return
            self._scheduled.put(key, task.due_at)
        try:
            self._enqueue(task, math.ceil((task.due_at - now).total_seconds()))
        except StoreUnavailable:
            self._scheduled.pop(key)
            raise

    def _enqueue(self, task: DigestFlushTask, wait_seconds: int) -> None:
        try:
            self._delay.enqueue([task], min(MAX_SQS_DELAY, max(0, wait_seconds)))
        except DeliveryError as exc:
            raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc

    # -- sending (a flush task from the delay queue) -------------------------------------------

    def flush(self, task: DigestFlushTask) -> tuple[Outcome, Optional[NotificationJob]]:
        """Close the task's bucket if it is due and make its digest's job (the caller delivers it).

        SCHEDULED (hopped) when not due yet; DUPLICATE with no job when the bucket has no member (its opener stopped
        before writing it).
        """
        now = self._clock()
        if now < task.due_at:
            self._enqueue(task, math.ceil((task.due_at - now).total_seconds()))
            return Outcome.SCHEDULED, None
        closed = self._store.close(task.group_key, task.generation, now)
        if closed is None:
            return Outcome.DUPLICATE, None
        return Outcome.DIGEST_MADE, self.digest_job(closed)

    def digest_job(self, closed: ClosedBucket) -> NotificationJob:
        """The job that sends a closed bucket: its id is the bucket's, so making it twice makes one job."""
        owner = closed.owner
        at = datetime.fromisoformat(closed.closed_at)
        spec = EVENT_TYPES[owner.event_type]
        return NotificationJob(
            job_id=digest_job_id(closed.bucket_id, owner.user_id, owner.channel),
            event_id=digest_event_id(closed.bucket_id),
            event_type=owner.event_type,
            user_id=owner.user_id,
            channel=Channel(owner.channel),
            template_key=digest_template_key(owner.event_type),
            payload={},
            priority=spec.priority,
            created_at=at,
            expires_at=at + DIGEST_TTL,
            contact=Contact.model_validate_json(owner.contact) if owner.contact else None,
            digest=DigestRef(bucket_id=closed.bucket_id, max_items=owner.max_items),
        )

    # -- rendering -------------------------------------------------------------------------------

    def context(self, job: NotificationJob) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a digest's template sees: the newest listed member's payload (the fields the members share, such as
        the film's title, at the top level) and the ``digest`` variable. PermanentError if the bucket is gone."""
        ref = job.digest
        if ref is None:
            raise ValueError(f"job {job.job_id} is not a digest")
        closed = self._store.closed(ref.bucket_id)
        if closed is None:
            raise PermanentError(f"digest bucket {ref.bucket_id} is not closed or no longer kept")
        members = self._store.members(ref.bucket_id, ref.max_items)
        items = [DigestItem(m.payload, datetime.fromisoformat(m.occurred_at), m.job_id) for m in members]
        digest = digest_context(items, closed.count, ref.max_items)
        digest["first_at"], digest["last_at"] = _utc(closed.first_at), _utc(closed.last_at)
        return (dict(members[-1].payload) if members else {}), digest


class DigestSweep:
    """The scheduler's part, every tick, shard by shard on a few threads:

    - the buckets of windows too long for the delay queue that fall due within the next SWEEP_AHEAD become flush
      tasks, each delayed until its time (the tick before saw them when they were further off than that);
    - any bucket still open STUCK_AFTER past its time, whatever its window, is queued again: its task was lost (it
      went to the DLQ after its receives, or its worker's container stopped before queueing it). A closed bucket's
      entry is gone, so this finds only the stuck ones, and a task queued twice finds its bucket closed.
    """

    def __init__(self, store: DigestStore, delay_queue: DelayQueue, clock: Clock, threads: int = 8) -> None:
        self._store = store
        self._delay = delay_queue
        self._clock = clock
        self._threads = threads

    def sweep(self) -> int:
        """Queue the flush tasks of the buckets due within SWEEP_AHEAD and of the stuck ones; how many."""
        now = self._clock()
        with ThreadPoolExecutor(max_workers=self._threads) as pool:
            return sum(pool.map(lambda shard: self._shard(shard, now), range(DUE_SHARDS)))

    def _shard(self, shard: int, now: datetime) -> int:
        due = self._store.due(shard, now + SWEEP_AHEAD, after=now, swept_only=True)
        due += self._store.due(shard, now - STUCK_AFTER)
        by_wait: dict[int, list[Message]] = {}
        for bucket in due:
            at = datetime.fromisoformat(bucket.flush_at)
            task = DigestFlushTask(group_key=bucket.group_key, generation=bucket.generation, due_at=at)
            by_wait.setdefault(max(0, math.ceil((at - now).total_seconds())), []).append(task)
        for wait, tasks in by_wait.items():
            try:
                self._delay.enqueue(tasks, min(MAX_SQS_DELAY, wait))
            except DeliveryError as exc:
                raise StoreUnavailable(f"delay queue unavailable: {exc}") from exc
        return len(due)


def _utc(moment: str) -> str:
    return iso(datetime.fromisoformat(moment))

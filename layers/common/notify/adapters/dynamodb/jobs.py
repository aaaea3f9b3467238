"""Job state (NotificationsTable's ``JOB#`` items, see ``status_items``): the job's item is its own idempotency
record, and the provider's feedback, opens and clicks land on it."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.items import call, conditional, conditional_update, expression_values, from_item, to_item
from notify.adapters.dynamodb.status_items import RETENTION, StatusTable, get_item
from notify.clock import iso
from notify.models import Channel, NotificationJob, Status
from notify.records import MAX_HISTORY, Claim, ClaimOutcome, Engagement, JobRecord, Transition

if TYPE_CHECKING:
    from notify.ports import ClickStore, FeedbackStore, JobLedger

RELEASING = frozenset(
    {Status.RETRYING, Status.SCHEDULED, Status.SENT, Status.FAILED, Status.EXPIRED, Status.SKIPPED, Status.DIGESTED}
)
# Opens and clicks already counted, for SNS's and SES's repeats: each event's digest in one of this many slots
# (``seen_00``…), chosen by the digest, so a repeat finds itself unless a later event took its slot meanwhile.
SEEN_SLOTS = 16
COUNTERS = frozenset({"opens", "clicks"})
# What record_click answers of a job on its first click.
CLICK_IDENTIFIERS = ("job_id", "event_id", "event_type", "user_id", "channel")


class DynamoJobReads(StatusTable):
    """A job's item, many at once, and a user's jobs from the ``by-user`` index (pages signed by ``cursors``): what
    the ledger reads back and what :class:`notify.adapters.dynamodb.status.DynamoStatusReader` shows."""

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        """A consistent GetItem of ``JOB#<id>``."""
        item = get_item(self._client, self._table, _key(job_id))
        return _job(item) if item else None

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys."""
        out: dict[str, JobRecord] = {}
        ids = list(dict.fromkeys(job_ids))
        for i in range(0, len(ids), 100):
            keys = [to_item(_key(j)) for j in ids[i : i + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys}}
            while request:
                resp = call("read jobs", self._client.batch_get_item, RequestItems=request)
                for raw in resp.get("Responses", {}).get(self._table, []):
                    rec = _job(from_item(raw))
                    out[rec.job_id] = rec
                request = dict(resp.get("UnprocessedKeys") or {})
        return out

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]:
        """A user's jobs, newest first, from the ``by-user`` index; the cursor is opaque."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-user",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ScanIndexForward": False,
            "Limit": limit,
        }
        values: dict[str, Any] = {":pk": f"USER#{user_id}"}
        filters = []
        if status is not None:
            filters.append("#s = :status")
            values[":status"] = status.value
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        if channel is not None:
            filters.append("channel = :channel")
            values[":channel"] = channel.value
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = expression_values(values)
        start = self._cursors.decode(cursor)
        if start:
            kwargs["ExclusiveStartKey"] = start
        records: list[JobRecord] = []
        for _ in range(20):  # filtered pages may come back short: keep reading, within bounds
            resp = call("read notifications", self._client.query, **kwargs)
            records += [_job(from_item(raw)) for raw in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            if not last or len(records) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last
            kwargs["Limit"] = limit - len(records)
        return records[:limit], self._cursors.encode(last)


class DynamoJobLedger(DynamoJobReads):
    """The JobLedger (the worker's claims and transitions), FeedbackStore (SES's feedback, opens and clicks) and
    ClickStore (a short link's clicks) ports, all on the job's one item (``JOB#<id>``)."""

    # -- the worker's claims and transitions (JobLedger) -----------------------------

    def claim(self, job: NotificationJob, now: datetime, lease_seconds: int) -> Claim:
        """One conditional UpdateItem; if its condition fails, a read decides between DUPLICATE and ABANDONED."""
        token = uuid.uuid4().hex
        now_ts = int(now.timestamp())
        created = iso(job.created_at)
        values = {
            ":processing": Status.PROCESSING.value,
            ":accepted": Status.ACCEPTED.value,
            ":retrying": Status.RETRYING.value,
            ":scheduled": Status.SCHEDULED.value,
            ":token": token,
            ":lease": now_ts + lease_seconds,
            ":nowts": now_ts,
            ":attempt": job.attempt,
            ":now": iso(now),
            ":accepted_entry": [_entry(Status.ACCEPTED, job.created_at, 0)],
            ":entry": [_entry(Status.PROCESSING, now, job.attempt)],
            ":job_id": job.job_id,
            ":event_id": job.event_id,
            ":event_type": job.event_type,
            ":user_id": job.user_id,
            ":channel": job.channel.value,
            ":created": created,
            ":gsi1pk": f"USER#{job.user_id}",
            ":gsi1sk": f"{created}#{job.job_id}",
            ":ttl": int(job.created_at.timestamp() + RETENTION.total_seconds()),
        }
        sets = [
            "#s = :processing",
            "lease_token = :token",
            "lease_until = :lease",
            "attempt_n = :attempt",
            "updated_at = :now",
            "job_id = :job_id",
            "event_id = :event_id",
            "event_type = :event_type",
            "user_id = :user_id",
            "channel = :channel",
            "created_at = if_not_exists(created_at, :created)",
            "gsi1pk = :gsi1pk",
            "gsi1sk = if_not_exists(gsi1sk, :gsi1sk)",
            "#ttl = if_not_exists(#ttl, :ttl)",
        ]
        if job.digest is not None:
            values[":digest_bucket"] = job.digest.bucket_id
            sets.append("digest_bucket = :digest_bucket")
        for name, moment in (("send_after", job.send_after), ("expires_at", job.expires_at)):
            if moment is not None:
                values[f":{name}"] = iso(moment)
                sets.append(f"{name} = :{name}")
        condition = (
            "attribute_not_exists(pk) OR (attempt_n <= :attempt AND "
            "(#s IN (:accepted, :retrying, :scheduled) OR (#s = :processing AND lease_until < :nowts)))"
        )
        if 0 < job.attempt == job.retry_base:
            # A redrive's copy (notify.services.dlq.replay) takes a FAILED job back; a stray older copy never does.
            values[":failed"] = Status.FAILED.value
            values[":entry"] = [_entry(Status.PROCESSING, now, job.attempt, None, {"redrive": True})]
            condition += " OR (#s = :failed AND attempt_n < :attempt)"
        claimed = self._with_entry(
            "claim job",
            job.job_id,
            sets,
            "list_append(if_not_exists(history, :accepted_entry), :entry)",
            condition,
            {"#s": "status", "#ttl": "ttl"},
            values,
        )
        return Claim(ClaimOutcome.CLAIMED, token) if claimed else self._contended(job, now, lease_seconds, token)

    def _contended(self, job: NotificationJob, now: datetime, lease_seconds: int, token: str) -> Claim:
        item = get_item(self._client, self._table, _key(job.job_id))
        if not item:
            return Claim(ClaimOutcome.DUPLICATE)
        status = Status(item["status"])
        now_ts = int(now.timestamp())
        stale = int(item.get("attempt_n", 0)) > job.attempt
        if status is Status.SENDING and not stale and int(item.get("lease_until", 0)) < now_ts:
            taken = conditional(
                "claim job",
                self._client.update_item,
                TableName=self._table,
                Key=to_item(_key(job.job_id)),
                UpdateExpression="SET lease_token = :token, lease_until = :lease",
                ConditionExpression="#s = :sending AND lease_token = :old",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=expression_values(
                    {
                        ":token": token,
                        ":lease": now_ts + lease_seconds,
                        ":sending": Status.SENDING.value,
                        ":old": item.get("lease_token", ""),
                    }
                ),
            )
            if taken:
                return Claim(ClaimOutcome.ABANDONED, token, status)
            return Claim(ClaimOutcome.DUPLICATE, current=status)
        if stale:
            # An older copy of a job that has moved on: nothing left to do with it (nor anything to tell).
            return Claim(ClaimOutcome.DUPLICATE, current=Status.SENT)
        history = tuple(_history(item)) if status.terminal else ()
        return Claim(ClaimOutcome.DUPLICATE, current=status, history=history)

    def transition(
        self,
        job: NotificationJob,
        status: Status,
        now: datetime,
        token: Optional[str],
        *,
        attempt: Optional[int] = None,
        error: Optional[str] = None,
        detail: Optional[dict[str, Any]] = None,
    ) -> bool:
        """An UpdateItem conditional on ``lease_token``: appends the history entry; terminal statuses drop the lease."""
        entry_attempt = job.attempt if attempt is None else attempt
        values: dict[str, Any] = {
            ":s": status.value,
            ":now": iso(now),
            ":entry": [_entry(status, now, job.attempt, error, detail)],
            ":token": token,
        }
        sets = ["#s = :s", "updated_at = :now"]
        removes: list[str] = []
        if attempt is not None:
            values[":attempt"] = entry_attempt
            sets.append("attempt_n = :attempt")
        if error is not None:
            values[":error"] = error
            sets.append("last_error = :error")
        for key in ("template_version", "provider_message_id"):
            if detail and key in detail:
                values[f":{key}"] = detail[key]
                sets.append(f"{key} = :{key}")
        if status in RELEASING:
            removes = ["lease_token", "lease_until"]
        return self._with_entry(
            f"record {status.value}",
            job.job_id,
            sets,
            "list_append(history, :entry)",
            "lease_token = :token",
            {"#s": "status"},
            values,
            removes=removes,
        )

    # -- the provider's feedback (FeedbackStore) and a short link's clicks (ClickStore) --

    def record_feedback(
        self, job_id: str, feedback_id: str, expected: Status, status: Status, entry: Transition
    ) -> bool:
        """One UpdateItem, conditional on the status still being ``expected`` and the feedback id not yet in the
        item's ``feedback_ids`` set; it appends the entry (or counts it left out, see :meth:`_with_entry`), adds the
        id and sets the status."""
        return self._with_entry(
            "record feedback",
            job_id,
            ["#s = :status", "updated_at = :at"],
            "list_append(history, :entry)",
            "#s = :expected AND NOT contains(feedback_ids, :id)",
            {"#s": "status"},
            {
                ":status": status.value,
                ":expected": expected.value,
                ":entry": [_stored(entry)],
                ":at": entry.at,
                ":ids": {feedback_id},
                ":id": feedback_id,
            },
            adds=["feedback_ids :ids"],
        )

    def record_engagement(self, job_id: str, counter: str, event_key: str, entry: Transition) -> Engagement:
        """``ADD <counter> 1`` unless the event's slot remembers it; the first of its kind (no counter yet) also
        appends ``entry``. Under races each copy retries as the other kind of write; at most a few writes.

        Opens and clicks add nothing to ``feedback_ids``: an item holds at most SEEN_SLOTS digests of them, so a
        repeat arriving after SEEN_SLOTS/2 other events on average may count again (at least once, bounded).
        """
        if counter not in COUNTERS:
            raise ValueError(f"not a counter: {counter}")
        digest = hashlib.sha256(event_key.encode()).hexdigest()[:20]
        names = {"#n": counter, "#seen": f"seen_{int(digest[:8], 16) % SEEN_SLOTS:02d}"}
        key = to_item(_key(job_id))
        for _ in range(3):
            counted, old = conditional_update(
                "record engagement",
                self._client,
                TableName=self._table,
                Key=key,
                UpdateExpression="SET #seen = :id ADD #n :one",
                ConditionExpression="attribute_exists(#n) AND (attribute_not_exists(#seen) OR #seen <> :id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=expression_values({":id": digest, ":one": 1}),
            )
            if counted:
                return Engagement.COUNTED
            if not old or counter in old:
                return Engagement.DUPLICATE  # its slot holds this very event (or the job is gone)
            first = self._with_entry(
                "record engagement",
                job_id,
                ["#seen = :id", "updated_at = :at"],
                "list_append(history, :entry)",
                "attribute_exists(pk) AND attribute_not_exists(#n)",
                names,
                {":id": digest, ":at": entry.at, ":entry": [_stored(entry)], ":one": 1},
                adds=["#n :one"],
            )
            if first:
                return Engagement.FIRST
        return Engagement.DUPLICATE

    def record_click(self, job_id: str, code: str, at: str, link: Optional[str]) -> Optional[dict[str, str]]:
        """One UpdateItem, whatever the click: ``ADD clicks 1`` and the link's own ``clicks#<code>``, and
        ``first_click`` (the CLICKED entry: when, and the link's scheme, host and path) if the item has none yet.

        The entry is an attribute of its own, not a ``list_append`` to the history: an append on the first click only
        would need a condition, hence a second write (a failed condition is billed) on the first click or on every
        later one. ``if_not_exists`` keeps the first whoever races, and :func:`_job` shows it in the history in time
        order (the history's cap counts it). The update returns the item as it was (``ALL_OLD``: no capacity, a few KB
        at most), so the write that found no ``first_click`` knows it was the first, and answers the job's
        identifiers for its ``notification.clicked``; DynamoDB applies one item's updates one at a time, so of racing
        clicks exactly one is first. No job (expired, or never taken): nothing, None.
        """
        first: dict[str, Any] = {"at": at}
        if link:
            first["link"] = link
        applied, old = conditional_update(
            "record a click",
            self._client,
            TableName=self._table,
            Key=to_item(_key(job_id)),
            UpdateExpression="SET first_click = if_not_exists(first_click, :first) ADD clicks :one, #link :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#link": _link_counter(code)},
            ExpressionAttributeValues=expression_values({":first": first, ":one": 1}),
            ReturnValues="ALL_OLD",
        )
        if not applied or "first_click" in old:
            return None
        return {name: str(old[name]) for name in CLICK_IDENTIFIERS if old.get(name) is not None}

    def forget_first_click(self, job_id: str, at: str) -> None:
        """One conditional UpdateItem removing ``first_click`` if its ``at`` is this one's (the counts stay)."""
        conditional_update(
            "forget a first click",
            self._client,
            TableName=self._table,
            Key=to_item(_key(job_id)),
            UpdateExpression="REMOVE first_click",
            ConditionExpression="first_click.#at = :at",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues=expression_values({":at": at}),
        )

    def link_clicks(self, job_id: str, code: str) -> int:
        """The count of the job's short link ``code`` (a GetItem of that one attribute)."""
        resp = call(
            "read a link's clicks",
            self._client.get_item,
            TableName=self._table,
            Key=to_item(_key(job_id)),
            ProjectionExpression="#link",
            ExpressionAttributeNames={"#link": _link_counter(code)},
        )
        item = from_item(resp.get("Item") or {})
        return int(item.get(_link_counter(code), 0))

    # -- the write every history entry goes through ------------------------------------

    def _with_entry(
        self,
        what: str,
        job_id: str,
        sets: list[str],
        history: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        *,
        adds: Sequence[str] = (),
        removes: Sequence[str] = (),
    ) -> bool:
        """One conditional UpdateItem that also sets ``history = <history>`` (an append) while the history has fewer
        than MAX_HISTORY entries; True if it applied.

        When the condition failed on a full history (the item as it stood tells), the same update is made without
        the entry and ``ADD history_omitted 1``, conditional on the history being full, so the cap holds whatever
        writes race: the history only grows, and every append checks its size in the same write.
        """
        key = to_item(_key(job_id))
        room = "(attribute_not_exists(history) OR size(history) < :cap)"
        applied, old = conditional_update(
            what,
            self._client,
            TableName=self._table,
            Key=key,
            UpdateExpression=_update([*sets, f"history = {history}"], adds, removes),
            ConditionExpression=f"({condition}) AND {room}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values({**values, ":cap": MAX_HISTORY}),
        )
        if applied or len(old.get("history") or []) < MAX_HISTORY:
            return applied
        used = set(re.findall(r":\w+", " ".join([*sets, *adds, condition])))
        return conditional(
            what,
            self._client.update_item,
            TableName=self._table,
            Key=key,
            UpdateExpression=_update(sets, [*adds, "history_omitted :one"], removes),
            ConditionExpression=f"({condition}) AND size(history) >= :cap",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values(
                {**{k: v for k, v in values.items() if k in used}, ":cap": MAX_HISTORY, ":one": 1}
            ),
        )


def _key(job_id: str) -> dict[str, str]:
    """The key of a job's item."""
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


def _link_counter(code: str) -> str:
    """The attribute of a job's item counting the clicks on one of its short links."""
    return f"clicks#{code}"


def _with_first_click(item: Mapping[str, Any], history: list[Transition]) -> tuple[list[Transition], int]:
    """The history with the first short-link click (``first_click``) in its place in time, as a ``CLICKED`` entry
    with the status the job had then; and 1 if the history was full (the entry is counted as left out instead)."""
    first = item.get("first_click")
    if not isinstance(first, dict) or "at" not in first:
        return history, 0
    if len(history) >= MAX_HISTORY:
        return history, 1
    at = _moment(str(first["at"]))
    position = next((i for i, h in enumerate(history) if _moment(h.at) > at), len(history))
    before = history[position - 1] if position else None
    status = before.status if before is not None else Status(item["status"])
    detail: dict[str, Any] = {"feedback": "CLICKED", **({"link": first["link"]} if first.get("link") else {})}
    entry = Transition(status, str(first["at"]), int(item.get("attempt_n", 0)), detail=detail)
    return [*history[:position], entry, *history[position:]], 0


def _moment(value: str) -> datetime:
    """A history entry's time (ISO 8601, ``Z`` or an offset); the epoch for one that cannot be read."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _update(sets: Sequence[str], adds: Sequence[str], removes: Sequence[str]) -> str:
    """An UpdateExpression from its clauses."""
    clauses = [("SET", sets), ("ADD", adds), ("REMOVE", removes)]
    return " ".join(f"{verb} {', '.join(parts)}" for verb, parts in clauses if parts)


def _stored(entry: Transition) -> dict[str, Any]:
    """A history entry as the item stores it."""
    stored: dict[str, Any] = {"status": entry.status.value, "at": entry.at, "attempt": entry.attempt}
    if entry.error is not None:
        stored["error"] = entry.error
    if entry.detail:
        stored["detail"] = entry.detail
    return stored


def _entry(
    status: Status,
    now: datetime,
    attempt: int,
    error: Optional[str] = None,
    detail: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status.value, "at": iso(now), "attempt": attempt}
    if error is not None:
        entry["error"] = error
    if detail:
        entry["detail"] = detail
    return entry


def _history(item: Mapping[str, Any]) -> list[Transition]:
    return [
        Transition(
            status=Status(h["status"]),
            at=h["at"],
            attempt=int(h.get("attempt", 0)),
            error=h.get("error"),
            detail=dict(h.get("detail", {})),
        )
        for h in item.get("history", [])
    ]


def _job(item: Mapping[str, Any]) -> JobRecord:
    history = _history(item)
    version = item.get("template_version")
    history, omitted = _with_first_click(item, history)
    return JobRecord(
        job_id=item["job_id"],
        event_id=item["event_id"],
        event_type=item["event_type"],
        user_id=item["user_id"],
        channel=Channel(item["channel"]),
        status=Status(item["status"]),
        attempt=int(item.get("attempt_n", 0)),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        last_error=item.get("last_error"),
        history=history,
        send_after=item.get("send_after"),
        expires_at=item.get("expires_at"),
        template_version=int(version) if version is not None else None,
        provider_message_id=item.get("provider_message_id"),
        opens=int(item.get("opens", 0)),
        clicks=int(item.get("clicks", 0)),
        history_omitted=int(item.get("history_omitted", 0)) + omitted,
        digest_bucket=item.get("digest_bucket"),
    )


if TYPE_CHECKING:

    def _plays(ledger: DynamoJobLedger) -> tuple[JobLedger, FeedbackStore, ClickStore]:
        """mypy checks that the class plays the ports its docstring names."""
        return ledger, ledger, ledger

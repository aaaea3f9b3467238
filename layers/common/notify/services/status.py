"""Reading job state: a job the worker has not touched yet is ACCEPTED, found via its event record.

A digest's own job (its record names its bucket) shows the bucket: its count, times and first members, and its
members page by page; a DIGESTED member shows its digest's job id (from its DIGESTED entry)."""

from __future__ import annotations

from typing import Any, Optional

from notify.catalog import category_of
from notify.errors import NotFound
from notify.jobs import job_id as derive_job_id
from notify.models import Category, Channel, Status
from notify.ports import DigestReads, StatusReader
from notify.records import DigestMember, EventRecord, JobRecord
from notify.services.feedback import link_without_secrets


def job_view(record: JobRecord) -> dict[str, Any]:
    """The public JSON shape of a job; a DIGESTED job adds ``digest_job_id``, its digest's job."""
    view: dict[str, Any] = {
        "job_id": record.job_id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "user_id": record.user_id,
        "channel": record.channel.value,
        "status": record.status.value,
        "attempts": record.attempt + (0 if record.status is Status.RETRYING else 1),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "send_after": record.send_after,
        "expires_at": record.expires_at,
        "last_error": record.last_error,
        "template_version": record.template_version,
        "provider_message_id": record.provider_message_id,
        "opens": record.opens,
        "clicks": record.clicks,
        "history_omitted": record.history_omitted,
        "history": [
            {
                k: v
                for k, v in {
                    "status": h.status.value,
                    "at": h.at,
                    "attempt": h.attempt,
                    "error": h.error,
                    "detail": _shown(h.detail, record.event_type) or None,
                }.items()
                if v is not None
            }
            for h in record.history
        ],
    }
    if record.status is Status.DIGESTED:
        entry = next((h for h in reversed(record.history) if h.status is Status.DIGESTED), None)
        digest_job_id = entry.detail.get("digest_job_id") if entry is not None else None
        if isinstance(digest_job_id, str):
            view["digest_job_id"] = digest_job_id
    return view


def _shown(detail: dict[str, Any], event_type: str) -> dict[str, Any]:
    """An entry's detail as any key may read it. Entries written before the feedback function cut links and the
    worker stopped recording the unsubscribe link still hold them: they are shown as entries are written now."""
    if not isinstance(detail.get("list_unsubscribe", True), bool):
        detail = {**detail, "list_unsubscribe": True}
    if isinstance(detail.get("link"), str):
        link = None if category_of(event_type) is Category.ACCOUNT else link_without_secrets(detail["link"])
        detail = {k: v for k, v in detail.items() if k != "link"} | ({"link": link} if link else {})
    return detail


def accepted_view(event: EventRecord, user_id: str, channel: str, job_id: str) -> dict[str, Any]:
    """The public JSON shape of a job the worker has not touched yet: ACCEPTED, from its event's record."""
    return {
        "job_id": job_id,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "user_id": user_id,
        "channel": channel,
        "status": Status.ACCEPTED.value,
        "attempts": 0,
        "created_at": event.created_at,
        "updated_at": event.created_at,
        "send_after": event.send_after,
        "expires_at": event.expires_at,
        "last_error": None,
        "template_version": None,
        "provider_message_id": None,
        "opens": 0,
        "clicks": 0,
        "history_omitted": 0,
        "history": [{"status": Status.ACCEPTED.value, "at": event.created_at, "attempt": 0}],
    }


# Larger segment events are summarised; their jobs are read per user or per campaign run.
MAX_LISTED_RECIPIENTS = 1000
# A digest's notification lists its first members; the rest are paged (``digest_members``).
DIGEST_MEMBERS_SHOWN = 20


def _member_view(member: DigestMember) -> dict[str, Any]:
    """A member as the status reads show it: its job and when its event occurred (never its payload)."""
    return {"job_id": member.job_id, "occurred_at": member.occurred_at}


class StatusQueries:
    """Reading events and jobs for the API, in their public JSON shapes."""

    def __init__(self, store: StatusReader, digests: Optional[DigestReads] = None) -> None:
        """``digests`` reads a digest's bucket for its job's view (without it, a digest's job shows none)."""
        self._store = store
        self._digests = digests

    def user_notifications(
        self,
        user_id: str,
        limit: int = 20,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> dict[str, Any]:
        """A user's notifications, newest first: ``{items, next_cursor}``."""
        records, next_cursor = self._store.user_jobs(user_id, limit, cursor, status, channel)
        return {"items": [job_view(r) for r in records], "next_cursor": next_cursor}

    def notification(self, job_id: str) -> dict[str, Any]:
        """One job with its history; NotFound if no event produced it."""
        record = self._store.get_job(job_id)
        if record is not None:
            view = job_view(record)
            if record.digest_bucket is not None and self._digests is not None:
                view["digest"] = self._digest(record.digest_bucket)
            return view
        event = self._store.find_event_of_job(job_id)
        if event is not None:
            for uid in event.user_ids:
                for ch in event.channels:
                    if derive_job_id(event.event_id, uid, ch) == job_id:
                        return accepted_view(event, uid, ch.value, job_id)
        raise NotFound(f"notification {job_id} not found")

    def digest_members(self, job_id: str, limit: int = 50, cursor: Optional[str] = None) -> dict[str, Any]:
        """A digest's members, oldest first, ``{items: [{job_id, occurred_at}], next_cursor}``; NotFound if the job
        is not a digest's (or not recorded yet)."""
        record = self._store.get_job(job_id)
        if record is None or record.digest_bucket is None or self._digests is None:
            raise NotFound(f"notification {job_id} is not a digest")
        members, next_cursor = self._digests.member_page(record.digest_bucket, limit, cursor)
        return {"items": [_member_view(m) for m in members], "next_cursor": next_cursor}

    def _digest(self, bucket: str) -> dict[str, Any]:
        """The bucket of a digest's job: its count and times (null if its record is gone) and its first members."""
        assert self._digests is not None
        closed = self._digests.closed(bucket)
        members, next_cursor = self._digests.member_page(bucket, DIGEST_MEMBERS_SHOWN)
        return {
            "bucket_id": bucket,
            "count": closed.count if closed else None,
            "first_at": closed.first_at if closed else None,
            "last_at": closed.last_at if closed else None,
            "closed_at": closed.closed_at if closed else None,
            "members": [_member_view(m) for m in members],
            "members_next_cursor": next_cursor,
        }

    def event(self, event_id: str) -> dict[str, Any]:
        """An event and every job it produced, each with its current status."""
        event: Optional[EventRecord] = self._store.get_event(event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
        users = list(event.user_ids)
        extra: dict[str, Any] = {}
        if event.segment_id is not None:
            pages = self._store.event_pages(event_id)
            users = [uid for page in sorted(pages, key=lambda p: p.page or 0) for uid in page.user_ids]
            extra = {"segment_id": event.segment_id, "pages_expanded": len(pages), "recipients": len(users)}
            if len(users) > MAX_LISTED_RECIPIENTS:
                return {**_event_head(event), **extra, "jobs": None}
        pairs = [(uid, ch, derive_job_id(event.event_id, uid, ch)) for uid in users for ch in event.channels]
        records = self._store.get_jobs([p[2] for p in pairs])
        jobs = [
            job_view(records[jid]) if jid in records else accepted_view(event, uid, ch.value, jid)
            for uid, ch, jid in pairs
        ]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        return {
            **_event_head(event),
            **extra,
            "status_counts": counts,
            "feedback_counts": feedback_counts(jobs),
            "skipped_counts": skipped_counts(jobs),
            "jobs": [{k: v for k, v in j.items() if k not in ("history", "history_omitted")} for j in jobs],
        }


def feedback_counts(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these jobs' emails SES reported delivered, bounced, complained about and opened, and how many
    jobs were clicked (SES's click tracking, or a short link of any channel).

    A complained-about email was delivered first; a job opened or clicked several times counts once.
    """
    out = {"delivered": 0, "bounced": 0, "complained": 0, "opened": 0, "clicked": 0}
    for job in jobs:
        status = job["status"]
        out["delivered"] += status in (Status.DELIVERED.value, Status.COMPLAINED.value)
        out["bounced"] += status == Status.BOUNCED.value
        out["complained"] += status == Status.COMPLAINED.value
        seen = {(h.get("detail") or {}).get("feedback") for h in job.get("history") or []}
        out["opened"] += bool(job.get("opens")) or "Open" in seen
        out["clicked"] += bool(job.get("clicks")) or bool({"Click", "CLICKED"} & seen)
    return out


def skipped_counts(jobs: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these jobs were SKIPPED, by reason: ``opted_out``, ``suppressed``, ``unreachable``, ``throttled``."""
    out: dict[str, int] = {}
    for job in jobs:
        if job["status"] != Status.SKIPPED.value:
            continue
        history: list[dict[str, Any]] = job.get("history") or []
        entry: dict[str, Any] = next((h for h in reversed(history) if h["status"] == Status.SKIPPED.value), {})
        reason = str((entry.get("detail") or {}).get("reason") or "unknown")
        out[reason] = out.get(reason, 0) + 1
    return out


def _event_head(event: EventRecord) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "priority": event.priority,
        "created_at": event.created_at,
        "expires_at": event.expires_at,
        "send_after": event.send_after,
    }

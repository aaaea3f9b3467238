"""What the status, DLQ and rendered views read from NotificationsTable: events (``events``) and jobs (``jobs``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.models import Channel, Status
from notify.records import EventRecord, JobRecord

if TYPE_CHECKING:
    from notify.ports import StatusReader


class DynamoStatusReader:
    """The StatusReader port: the event reads of a :class:`DynamoEventLog` and the job reads of a
    :class:`DynamoJobLedger`, both over the same table."""

    def __init__(self, events: DynamoEventLog, jobs: DynamoJobLedger) -> None:
        self._events = events
        self._jobs = jobs

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        """:meth:`DynamoEventLog.get_event`."""
        return self._events.get_event(event_id)

    def event_pages(self, event_id: str) -> list[EventRecord]:
        """:meth:`DynamoEventLog.event_pages`."""
        return self._events.event_pages(event_id)

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]:
        """:meth:`DynamoEventLog.find_event_of_job`."""
        return self._events.find_event_of_job(job_id)

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        """:meth:`DynamoJobLedger.get_job`."""
        return self._jobs.get_job(job_id)

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        """:meth:`DynamoJobLedger.get_jobs`."""
        return self._jobs.get_jobs(job_ids)

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]:
        """:meth:`DynamoJobLedger.user_jobs` (its cursors sign the pages)."""
        return self._jobs.user_jobs(user_id, limit, cursor, status, channel)


if TYPE_CHECKING:

    def _plays(reader: DynamoStatusReader) -> StatusReader:
        """mypy checks that the class plays the port its docstring names."""
        return reader

"""What the status, DLQ and rendered views read from NotificationsTable: events (``events``) and jobs (``jobs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify.adapters.dynamodb.events import DynamoEventReads
from notify.adapters.dynamodb.jobs import DynamoJobReads

if TYPE_CHECKING:
    from notify.ports import StatusReader


class DynamoStatusReader(DynamoEventReads, DynamoJobReads):
    """The StatusReader port: the event reads and the job reads over the same table, and nothing that writes."""


if TYPE_CHECKING:

    def _plays(reader: DynamoStatusReader) -> StatusReader:
        """mypy checks that the class plays the port its docstring names."""
        return reader

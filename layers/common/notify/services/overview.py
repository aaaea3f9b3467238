"""The operators' overview: how full the queues are, which campaigns fire soon, what failed last.

One answer for the console's first page, made of cheap reads: ``GetQueueAttributes`` on the dead-letter and
delay queues, a query of the campaigns' ``due`` index, and a peek at a few dead letters (received with a
visibility timeout of 0, so nothing is hidden from a redrive). A queue that cannot be read is reported in
``problems`` and the rest is still answered.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import TransientError
from notify.ports import DeadLetterInbox, QueueStats
from notify.services.campaigns import CampaignService
from notify.services.dlq import letter_view

#: Campaigns whose next run falls within this window are "due soon".
DUE_WINDOW = timedelta(hours=1)
#: How many campaigns and letters the overview lists at most.
MAX_DUE = 20
MAX_FAILURES = 10


class OverviewService:
    """What an operator looks at first: queue depths, campaigns due in the next hour, the latest dead letters."""

    def __init__(
        self,
        dead_letters: QueueStats,
        delay_queue: QueueStats,
        letters: DeadLetterInbox,
        campaigns: CampaignService,
        clock: Clock,
    ) -> None:
        self._dead_letters = dead_letters
        self._delay_queue = delay_queue
        self._letters = letters
        self._campaigns = campaigns
        self._clock = clock

    def overview(self) -> dict[str, Any]:
        """``{generated_at, dlq, delay_queue, campaigns_due, latest_failures, problems}``.

        ``dlq`` and ``delay_queue`` are ``{visible, in_flight, delayed}`` (null when unreadable);
        ``campaigns_due`` are the ACTIVE campaigns due within the hour, soonest first (overdue ones included);
        ``latest_failures`` the newest dead letters of a sample of up to ten (SQS returns a sample of a large
        queue), newest first; ``problems`` says what could not be read.
        """
        problems: list[str] = []
        dlq = self._depth("dead-letter queue", self._dead_letters, problems)
        delay = self._depth("delay queue", self._delay_queue, problems)
        try:
            letters = [letter_view(letter) for letter in self._letters.receive(MAX_FAILURES, 0)]
        except TransientError as exc:
            letters = []
            problems.append(f"dead letters: {exc}")
        letters.sort(key=lambda view: view["dead_lettered_at"] or "", reverse=True)
        due = self._campaigns.due_within(DUE_WINDOW, MAX_DUE)
        return {
            "generated_at": iso(self._clock()),
            "dlq": dlq,
            "delay_queue": delay,
            "campaigns_due": [campaign.view() for campaign in due],
            "latest_failures": letters,
            "problems": problems,
        }

    @staticmethod
    def _depth(name: str, queue: QueueStats, problems: list[str]) -> Optional[dict[str, int]]:
        try:
            depth = queue.depth()
        except TransientError as exc:
            problems.append(f"{name}: {exc}")
            return None
        return {"visible": depth.visible, "in_flight": depth.in_flight, "delayed": depth.delayed}

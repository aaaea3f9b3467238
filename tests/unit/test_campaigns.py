from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from notify.errors import Conflict, TransientError, ValidationFailed
from notify.models import AcceptedEvent
from notify.ports import CampaignTrigger
from notify.records import Campaign, CampaignStatus
from notify.services.campaigns import (
    CampaignInput,
    CampaignScheduler,
    CampaignService,
    CampaignUpdate,
    run_event_id,
)
from notify.services.status import StatusQueries
from pydantic import ValidationError

from .fakes import MemoryCampaigns, MemoryStore

T0 = datetime(2026, 11, 24, 8, 59, 30, tzinfo=UTC)


@dataclass
class RecordingTrigger:
    fired: list[tuple[str, str]] = field(default_factory=list)
    fail: int = 0
    meanwhile: list[Callable[[], object]] = field(default_factory=list)  # run after the send, before it is recorded

    def trigger(self, campaign: Campaign, run_id: str, event_id: str) -> AcceptedEvent:
        if self.fail:
            self.fail -= 1
            raise TransientError("kafka and the delay queue are down")
        self.fired.append((run_id, event_id))
        while self.meanwhile:
            self.meanwhile.pop(0)()
        return AcceptedEvent(event_id=event_id, job_ids=[], segment_id=campaign.segment_id)


_trigger: CampaignTrigger = RecordingTrigger()


class World:
    def __init__(self) -> None:
        self.now = T0
        self.store = MemoryCampaigns()
        self.trigger = RecordingTrigger()
        self.campaigns = CampaignService(self.store, lambda: self.now)
        self.scheduler = CampaignScheduler(self.store, self.trigger, lambda: self.now)

    def create(self, **changes: object) -> Campaign:
        body = {
            "name": "weekly",
            "cron": "0 9 * * *",
            "timezone": "UTC",
            "segment_id": "all",
            "event_type": "new_film",
            "payload": {"film_id": "f", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://x.io"},
            **changes,
        }
        return self.campaigns.create(CampaignInput.model_validate(body))

    def at(self, when: datetime) -> list[str]:
        self.now = when
        return self.scheduler.tick().fired


@pytest.fixture
def world() -> World:
    return World()


def test_bad_cron_timezone_and_payload_are_rejected() -> None:
    base = {"name": "n", "segment_id": "s", "event_type": "new_film", "payload": {}}
    for bad in (
        {"cron": "61 * * * *"},
        {"cron": "0 9 * *"},
        {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        {"cron": "* * * * *"},
    ):
        with pytest.raises((ValidationError, ValidationFailed)):
            CampaignInput.model_validate({**base, **bad})


def test_first_run_fires_when_the_window_is_reached_and_not_before(world: World) -> None:
    campaign = world.create()
    assert campaign.next_run_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert campaign.last_triggered_at is None
    assert world.at(datetime(2026, 11, 24, 8, 59, 59, tzinfo=UTC)) == []
    assert world.at(datetime(2026, 11, 24, 9, 0, 10, tzinfo=UTC)) == [
        f"{campaign.campaign_id}:2026-11-24T09:00:00.000Z"
    ]
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.runs_count, stored.last_triggered_at) == (1, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    assert stored.next_run_at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert world.at(datetime(2026, 11, 24, 9, 1, tzinfo=UTC)) == []  # the same window never fires twice


def test_max_runs_reached_makes_the_campaign_inactive(world: World) -> None:
    campaign = world.create(cron="* * * * *", max_runs=2)
    assert len(world.at(T0 + timedelta(minutes=1))) == 1
    assert len(world.at(T0 + timedelta(minutes=2))) == 1
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.status, stored.runs_count, stored.next_run_at) == (CampaignStatus.INACTIVE, 2, None)
    assert world.at(T0 + timedelta(minutes=3)) == []
    with pytest.raises(Conflict):
        world.campaigns.resume(campaign.campaign_id)


def test_missed_runs_coalesce_into_one_for_the_latest_time(world: World) -> None:
    campaign = world.create(cron="0 * * * *")
    fired = world.at(datetime(2026, 11, 24, 14, 20, tzinfo=UTC))  # the scheduler was down from 09:00 to 14:20
    assert fired == [f"{campaign.campaign_id}:2026-11-24T14:00:00.000Z"]
    assert world.campaigns.get(campaign.campaign_id).next_run_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_a_failed_trigger_changes_nothing_and_is_retried_next_tick(world: World) -> None:
    campaign = world.create()
    world.trigger.fail = 1
    world.now = datetime(2026, 11, 24, 9, 0, 5, tzinfo=UTC)
    assert world.scheduler.tick().failed == [f"{campaign.campaign_id}:2026-11-24T09:00:00.000Z"]
    assert world.campaigns.get(campaign.campaign_id).runs_count == 0
    assert world.at(datetime(2026, 11, 24, 9, 1, tzinfo=UTC)) == []  # the failed attempt's claim still holds
    assert len(world.at(datetime(2026, 11, 24, 9, 3, tzinfo=UTC))) == 1  # it expired: the run is retried
    assert world.trigger.fired[0][1] == run_event_id(campaign.campaign_id, datetime(2026, 11, 24, 9, 0, tzinfo=UTC))


def test_pause_never_fires_and_resume_counts_from_now(world: World) -> None:
    campaign = world.create(cron="0 * * * *")
    world.campaigns.pause(campaign.campaign_id)
    assert world.at(datetime(2026, 11, 24, 12, 30, tzinfo=UTC)) == []
    resumed = world.campaigns.resume(campaign.campaign_id)
    assert resumed.next_run_at == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert world.at(datetime(2026, 11, 24, 12, 59, tzinfo=UTC)) == []


def test_two_schedulers_at_once_fire_a_run_once(world: World) -> None:
    world.create(cron="* * * * *")
    world.now = T0 + timedelta(minutes=1)
    results = []
    barrier = threading.Barrier(8)

    def tick() -> None:
        barrier.wait()
        results.append(world.scheduler.tick())

    threads = [threading.Thread(target=tick) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r.fired) for r in results) == 1
    assert len(world.trigger.fired) == 1


def test_update_revalidates_and_moves_the_next_run(world: World) -> None:
    campaign = world.create()
    updated = world.campaigns.update(campaign.campaign_id, CampaignUpdate(cron="0 12 * * *", timezone="Asia/Tokyo"))
    assert updated.next_run_at == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    with pytest.raises(ValidationFailed):
        world.campaigns.update(campaign.campaign_id, CampaignUpdate(payload={"film_id": "only"}))


# -- states and actions (docs/CAMPAIGN.md, "States and actions") ----------------------------------------------


def _exhaust(world: World, max_runs: int = 2) -> Campaign:
    campaign = world.create(cron="* * * * *", max_runs=max_runs)
    for minute in range(1, max_runs + 1):
        assert len(world.at(T0 + timedelta(minutes=minute))) == 1
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.status, stored.runs_count, stored.next_run_at) == (CampaignStatus.INACTIVE, max_runs, None)
    return stored


def test_raising_max_runs_with_put_makes_an_exhausted_campaign_active_from_now(world: World) -> None:
    campaign = _exhaust(world)
    with pytest.raises(Conflict, match="raise max_runs"):
        world.campaigns.resume(campaign.campaign_id)
    world.now = T0 + timedelta(minutes=30, seconds=10)
    raised = world.campaigns.update(campaign.campaign_id, CampaignUpdate(max_runs=3))
    assert (raised.status, raised.max_runs, raised.runs_count) == (CampaignStatus.ACTIVE, 3, 2)
    assert raised.next_run_at == T0 + timedelta(minutes=31, seconds=-30)  # the cron's next time after now
    assert world.campaigns.get(campaign.campaign_id) == raised
    assert len(world.at(T0 + timedelta(minutes=31))) == 1  # the one more run
    assert world.campaigns.get(campaign.campaign_id).status is CampaignStatus.INACTIVE
    unlimited = world.campaigns.update(campaign.campaign_id, CampaignUpdate.model_validate({"max_runs": None}))
    assert (unlimited.status, unlimited.max_runs) == (CampaignStatus.ACTIVE, None) and unlimited.next_run_at


def test_a_put_that_leaves_max_runs_used_up_keeps_the_campaign_inactive(world: World) -> None:
    campaign = _exhaust(world)
    renamed = world.campaigns.update(campaign.campaign_id, CampaignUpdate(name="renamed", max_runs=2))
    assert (renamed.name, renamed.status, renamed.next_run_at) == ("renamed", CampaignStatus.INACTIVE, None)


def test_pause_of_an_inactive_campaign_is_a_conflict_that_says_why(world: World) -> None:
    campaign = _exhaust(world)
    with pytest.raises(Conflict, match="max_runs") as raised:
        world.campaigns.pause(campaign.campaign_id)
    assert "INACTIVE" in str(raised.value) and "PUT" in str(raised.value)
    assert world.campaigns.get(campaign.campaign_id).status is CampaignStatus.INACTIVE
    with pytest.raises(Conflict):
        world.campaigns.resume(campaign.campaign_id)  # and it stays that way


def test_lowering_max_runs_to_the_runs_made_finishes_the_campaign_and_below_them_is_refused(world: World) -> None:
    campaign = world.create(cron="* * * * *", max_runs=5)
    world.at(T0 + timedelta(minutes=1))
    world.at(T0 + timedelta(minutes=2))
    with pytest.raises(ValidationFailed) as refused:
        world.campaigns.update(campaign.campaign_id, CampaignUpdate(max_runs=1))
    (problem,) = refused.value.errors
    assert problem.loc == "max_runs" and "2" in problem.msg
    done = world.campaigns.update(campaign.campaign_id, CampaignUpdate(max_runs=2))
    assert (done.status, done.next_run_at, done.runs_count) == (CampaignStatus.INACTIVE, None, 2)
    assert world.at(T0 + timedelta(minutes=3)) == []


def test_pause_and_resume_of_a_campaign_already_in_that_state_change_nothing(world: World) -> None:
    campaign = world.create(cron="0 * * * *")
    world.now = datetime(2026, 11, 24, 9, 0, 20, tzinfo=UTC)  # due since 09:00, the tick not yet come
    resumed = world.campaigns.resume(campaign.campaign_id)
    assert resumed == campaign  # still due at 09:00: a resume of an ACTIVE campaign skips nothing
    assert len(world.at(datetime(2026, 11, 24, 9, 0, 30, tzinfo=UTC))) == 1
    paused = world.campaigns.pause(campaign.campaign_id)
    assert world.campaigns.pause(campaign.campaign_id) == paused


def test_a_pause_between_the_claim_and_the_completion_keeps_the_run_and_the_pause(world: World) -> None:
    campaign = world.create()
    world.trigger.meanwhile.append(lambda: world.campaigns.pause(campaign.campaign_id))
    fired = world.at(datetime(2026, 11, 24, 9, 0, 10, tzinfo=UTC))
    assert fired == [f"{campaign.campaign_id}:2026-11-24T09:00:00.000Z"]
    stored = world.campaigns.get(campaign.campaign_id)
    assert stored.runs_count == 1 and stored.last_triggered_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert (stored.status, stored.next_run_at) == (CampaignStatus.PAUSED, None)
    assert [r.run_id for r in world.store.runs(campaign.campaign_id, 10)] == fired
    resumed = world.campaigns.resume(campaign.campaign_id)
    assert (resumed.status, resumed.runs_count) == (CampaignStatus.ACTIVE, 1)


def test_a_put_between_the_claim_and_the_completion_keeps_the_run_and_the_edit(world: World) -> None:
    campaign = world.create()
    new_cron = CampaignUpdate(cron="0 12 * * *", name="noon")
    world.trigger.meanwhile.append(lambda: world.campaigns.update(campaign.campaign_id, new_cron))
    assert len(world.at(datetime(2026, 11, 24, 9, 0, 10, tzinfo=UTC))) == 1
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.runs_count, stored.status, stored.name) == (1, CampaignStatus.ACTIVE, "noon")
    assert stored.next_run_at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the edit's schedule, from its now
    renamed = CampaignUpdate(name="again")  # an edit that leaves the schedule: the run moves it on
    world.trigger.meanwhile.append(lambda: world.campaigns.update(campaign.campaign_id, renamed))
    assert len(world.at(datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC))) == 1
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.runs_count, stored.name) == (2, "again")
    assert stored.next_run_at == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_max_runs_is_never_exceeded_when_a_pause_and_resume_race_the_last_run(world: World) -> None:
    campaign = world.create(cron="* * * * *", max_runs=1)
    world.trigger.meanwhile += [
        lambda: world.campaigns.pause(campaign.campaign_id),
        lambda: world.campaigns.resume(campaign.campaign_id),
    ]
    assert len(world.at(T0 + timedelta(minutes=1))) == 1
    for minute in range(2, 6):
        assert world.at(T0 + timedelta(minutes=minute)) == []
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.status, stored.runs_count, len(world.trigger.fired)) == (CampaignStatus.INACTIVE, 1, 1)


def test_lowering_max_runs_to_the_runs_made_while_a_run_is_under_way_is_refused(world: World) -> None:
    campaign = world.create(cron="* * * * *", max_runs=3)
    world.at(T0 + timedelta(minutes=1))
    outcome: list[BaseException] = []

    def lower() -> None:
        try:
            world.campaigns.update(campaign.campaign_id, CampaignUpdate(max_runs=1))
        except Conflict as exc:
            outcome.append(exc)

    world.trigger.meanwhile.append(lower)
    assert len(world.at(T0 + timedelta(minutes=2))) == 1
    assert outcome and "under way" in str(outcome[0])
    stored = world.campaigns.get(campaign.campaign_id)
    assert (stored.runs_count, stored.max_runs, stored.status) == (2, 3, CampaignStatus.ACTIVE)


def test_a_campaign_already_at_max_runs_when_due_is_finished_without_firing(world: World) -> None:
    campaign = world.create(cron="* * * * *", max_runs=2)
    stored = world.store.items[campaign.campaign_id]
    stored.runs_count = 2  # as an item written before a PUT finished such a campaign at once
    world.now = T0 + timedelta(minutes=1)
    result = world.scheduler.tick()
    assert (result.finished, result.fired, world.trigger.fired) == ([campaign.campaign_id], [], [])
    after = world.campaigns.get(campaign.campaign_id)
    assert (after.status, after.next_run_at, after.runs_count) == (CampaignStatus.INACTIVE, None, 2)
    assert world.store.runs(campaign.campaign_id, 10) == []


def test_a_delete_between_the_claim_and_the_completion_leaves_the_run_unrecorded(world: World) -> None:
    campaign = world.create()
    world.trigger.meanwhile.append(lambda: world.campaigns.delete(campaign.campaign_id))
    world.now = datetime(2026, 11, 24, 9, 0, 10, tzinfo=UTC)
    result = world.scheduler.tick()
    assert (result.fired, result.unrecorded) == ([], [f"{campaign.campaign_id}:2026-11-24T09:00:00.000Z"])
    assert world.store.get(campaign.campaign_id) is None and world.store.runs(campaign.campaign_id, 10) == []


class EventSummaries(StatusQueries):
    """The status reads a campaign's run summaries use, answering each event id from a fixed table."""

    def __init__(self, summaries: dict[str, dict[str, Any]]) -> None:
        super().__init__(MemoryStore())
        self.summaries = summaries

    def event(self, event_id: str) -> dict[str, Any]:
        return self.summaries[event_id]


def test_a_runs_summary_counts_the_recipients_skipped_as_unreachable(world: World) -> None:
    campaign = world.create()
    (run_id,) = world.at(datetime(2026, 11, 24, 9, 0, 10, tzinfo=UTC))
    (fired,) = world.trigger.fired
    summary = {
        "recipients": 3,
        "pages_expanded": 1,
        "status_counts": {"SENT": 2, "SKIPPED": 1},
        "feedback_counts": {},
        "skipped_counts": {"unreachable": 1},
    }
    campaigns = CampaignService(world.store, lambda: world.now, status=EventSummaries({fired[1]: summary}))
    (run,) = campaigns.run_summaries(campaign.campaign_id)
    assert run["run_id"] == run_id
    assert (run["status_counts"], run["skipped_counts"]) == ({"SENT": 2, "SKIPPED": 1}, {"unreachable": 1})

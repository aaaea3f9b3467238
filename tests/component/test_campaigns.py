"""Campaigns, the scheduler and static segments against moto server and Tansu."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from notify.adapters.dynamodb.campaigns import DynamoCampaignStore
from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.sqs import SqsDelayQueue
from notify.clock import iso, utc_now
from notify.cron import latest_fire, next_fire
from notify.models import AcceptedEvent
from notify.records import Campaign, CampaignStatus
from notify.services.campaigns import CampaignScheduler, IngestTrigger
from notify.services.ingest import IngestService

from local.events import kafka_record, load_event, msk_event
from local.invoke import LambdaContext

from .helpers import call_api, kafka_values, topic_ends

pytestmark = pytest.mark.usefixtures("local_stack", "fresh_services")

FILM = {"film_id": "f-1", "title": "Dune", "release_date": "2026-12-01", "watch_url": "https://example.com/f-1"}


def _campaign(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "films",
        "cron": "0 9 * * *",
        "timezone": "Europe/Berlin",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": FILM,
        "channels": ["email"],
        **changes,
    }
    status, created = call_api("POST", "/api/v1/campaigns", body)
    assert status == 201, created
    return dict(created)


def _make_due(campaign_id: str, when: datetime) -> None:
    """Move the campaign's next run into the past, as if its time had come."""
    boto3.client("dynamodb").update_item(
        TableName=os.environ["CAMPAIGNS_TABLE"],
        Key={"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": "META"}},
        UpdateExpression="SET next_run_at = :t",
        ExpressionAttributeValues={":t": {"S": iso(when)}},
    )


def _tick() -> dict[str, Any]:
    from scheduler.app import lambda_handler

    return dict(lambda_handler(load_event("schedule_tick"), LambdaContext("SchedulerFunction", 55)))


def test_the_api_validates_and_computes_the_schedule() -> None:
    created = _campaign()
    assert created["status"] == "ACTIVE" and created["runs_count"] == 0 and created["last_triggered_at"] is None
    next_run = datetime.fromisoformat(created["next_run_at"].replace("Z", "+00:00"))
    assert next_run.minute == 0 and next_run.hour in (7, 8)  # 09:00 in Berlin
    status, error = call_api("POST", "/api/v1/campaigns", {**created, "cron": "99 * * * *"})
    assert status == 422
    body = {
        "name": "x",
        "cron": "* * * * *",
        "timezone": "Nowhere/City",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": FILM,
    }
    status, error = call_api("POST", "/api/v1/campaigns", body)
    assert status == 422 and error["error"]["fields"][0]["loc"] == "timezone"
    status, error = call_api("POST", "/api/v1/campaigns", {**body, "timezone": "UTC", "payload": {"title": 1}})
    assert status == 422 and any(f["loc"].startswith("payload.") for f in error["error"]["fields"])
    status, listed = call_api("GET", f"/api/v1/campaigns/{created['campaign_id']}/preview?count=3")
    assert status == 200 and len(listed["next_runs"]) == 3
    status, paused = call_api("POST", f"/api/v1/campaigns/{created['campaign_id']}/pause")
    assert (status, paused["status"], paused["next_run_at"]) == (200, "PAUSED", None)
    status, resumed = call_api("POST", f"/api/v1/campaigns/{created['campaign_id']}/resume")
    assert (status, resumed["status"]) == (200, "ACTIVE") and resumed["next_run_at"]
    assert call_api("DELETE", f"/api/v1/campaigns/{created['campaign_id']}")[0] == 204
    assert call_api("GET", f"/api/v1/campaigns/{created['campaign_id']}")[0] == 404


def test_a_due_campaign_fires_once_into_kafka_and_records_its_run(kafka_bootstrap: str, stack_env: dict) -> None:
    created = _campaign(max_runs=1)
    cid = created["campaign_id"]
    fire = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    _make_due(cid, fire)
    ends = topic_ends(kafka_bootstrap, stack_env["KAFKA_TOPIC"])
    assert f"{cid}:{iso(fire)}" not in _tick()["skipped"]
    campaign = call_api("GET", f"/api/v1/campaigns/{cid}")[1]
    assert (campaign["status"], campaign["runs_count"], campaign["next_run_at"]) == ("INACTIVE", 1, None)
    (task,) = kafka_values(kafka_bootstrap, stack_env["KAFKA_TOPIC"], cid, since=ends, count=1)
    assert (task["kind"], task["segment_id"], task["template_key"], task["campaign_id"]) == (
        "fanout",
        "all",
        "new_film",
        cid,
    )
    status, runs = call_api("GET", f"/api/v1/campaigns/{cid}/runs")
    assert status == 200 and [r["event_id"] for r in runs["items"]] == [task["event_id"]]
    assert _tick()["fired"] == []  # INACTIVE: never again


def test_concurrent_schedulers_fire_a_run_once(kafka_bootstrap: str, stack_env: dict) -> None:
    from notify.settings import SchedulerSettings, load
    from scheduler.app import build_scheduler

    created = _campaign(cron="* * * * *")
    cid = created["campaign_id"]
    _make_due(cid, datetime.now(UTC).replace(second=0, microsecond=0))
    schedulers = [build_scheduler(load(SchedulerSettings)) for _ in range(4)]  # four containers
    ends = topic_ends(kafka_bootstrap, stack_env["KAFKA_TOPIC"])
    barrier = threading.Barrier(len(schedulers))
    fired: list[str] = []

    def run(scheduler: Any) -> None:
        barrier.wait()
        fired.extend(r for r in scheduler.campaigns.tick().fired if r.startswith(cid))

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fired) == 1
    # One run, one event: Kafka is at-least-once (a produce retried after a slow ack may land twice, as a fresh-
    # clone run under load once showed), so copies of a record count once (kafka_values keeps one per event id
    # and page), and what must hold is that there is only that run's one event, which the fan-out expands once.
    records = kafka_values(kafka_bootstrap, stack_env["KAFKA_TOPIC"], cid, since=ends, count=1)
    assert len(records) == 1, records
    stored = DynamoCampaignStore(boto3.client("dynamodb"), os.environ["CAMPAIGNS_TABLE"]).get(cid)
    assert stored is not None and stored.runs_count == 1 and stored.status is CampaignStatus.ACTIVE
    call_api("DELETE", f"/api/v1/campaigns/{cid}")


def test_a_static_segment_is_fanned_out_page_by_page_by_the_worker(
    auth_service, kafka_bootstrap: str, stack_env: dict
) -> None:
    from worker.app import lambda_handler

    os.environ["FANOUT_PAGE_SIZE"] = "2"
    segment = f"vip-{uuid.uuid4().hex[:6]}"
    members = ["demo-user-90", "demo-user-91", "demo-user-92", "demo-user-93", "demo-user-94"]
    status, created = call_api(
        "POST", "/api/v1/segments", {"segment_id": segment, "name": "VIPs", "user_ids": members[:3]}
    )
    assert (status, created["users"]) == (201, 3)
    assert call_api("POST", f"/api/v1/segments/{segment}/users", {"user_ids": members[3:]})[1]["users"] == 5
    assert call_api("POST", "/api/v1/segments", {"segment_id": segment, "name": "again"})[0] == 409
    ends = topic_ends(kafka_bootstrap, stack_env["KAFKA_TOPIC"])
    status, accepted = call_api(
        "POST",
        "/api/v1/events",
        {"event_type": "new_film", "payload": FILM, "recipients": {"segment_id": segment}, "channels": ["email"]},
    )
    assert status == 202
    delivered: set[str] = set()
    for _ in range(10):  # play the event source mapping: feed the worker what reached Kafka (it publishes before
        # it returns, so what it published is there when it has returned)
        published = kafka_values(kafka_bootstrap, stack_env["KAFKA_TOPIC"], accepted["event_id"], since=ends, count=1)
        records = [json.dumps(r) for r in published]
        fresh = [r for r in records if r not in delivered]
        if not fresh:
            break
        delivered.update(fresh)
        event = msk_event([kafka_record("t", 0, i, r.encode()) for i, r in enumerate(fresh)], kafka_bootstrap)
        lambda_handler(event, LambdaContext("WorkerFunction", 120))
    status, summary = call_api("GET", f"/api/v1/events/{accepted['event_id']}")
    assert (summary["recipients"], summary["pages_expanded"]) == (5, 3)
    assert summary["status_counts"] == {"SENT": 5}
    assert sorted(j["user_id"] for j in summary["jobs"]) == members
    os.environ["FANOUT_PAGE_SIZE"] = stack_env["FANOUT_PAGE_SIZE"]


class Meanwhile:
    """The real trigger (ingestion into Kafka), then ``action`` through the API before the scheduler records the run:
    an edit landing between a run's claim and its completion."""

    def __init__(self, campaign_id: str, action: Any) -> None:
        from notify.settings import SchedulerSettings, load

        settings = load(SchedulerSettings)
        ingest = IngestService(
            DynamoEventLog(boto3.client("dynamodb"), settings.notifications_table),
            KafkaJobPublisher(KafkaConfig.from_settings(settings)),
            SqsDelayQueue(boto3.client("sqs"), settings.delay_queue_url),
            utc_now,
        )
        self._trigger, self._campaign_id, self._action = IngestTrigger(ingest), campaign_id, action
        self.answers: list[tuple[int, Any]] = []
        self.store = DynamoCampaignStore(boto3.client("dynamodb"), settings.campaigns_table)
        self.scheduler = CampaignScheduler(self.store, self, utc_now)

    def trigger(self, campaign: Campaign, run_id: str, event_id: str) -> AcceptedEvent:
        accepted = self._trigger.trigger(campaign, run_id, event_id)
        if campaign.campaign_id == self._campaign_id:
            self.answers.append(self._action())
        return accepted


def _due_now(**changes: Any) -> tuple[str, datetime]:
    """A campaign due at its latest fire time. The cron is yearly, so the run a tick fires is that time however long
    the test takes: with ``* * * * *`` a minute turning before the tick coalesced into the next minute's run."""
    cron = "0 0 1 1 *"
    created = _campaign(cron=cron, timezone="UTC", **changes)
    fire = latest_fire(cron, "UTC", utc_now())
    _make_due(created["campaign_id"], fire)
    return created["campaign_id"], fire


def test_a_pause_between_the_claim_and_the_completion_keeps_the_run_and_the_pause() -> None:
    cid, fire = _due_now(max_runs=3)
    meanwhile = Meanwhile(cid, lambda: call_api("POST", f"/api/v1/campaigns/{cid}/pause"))
    assert f"{cid}:{iso(fire)}" in meanwhile.scheduler.tick().fired
    assert [status for status, _ in meanwhile.answers] == [200]
    campaign = call_api("GET", f"/api/v1/campaigns/{cid}")[1]
    assert (campaign["runs_count"], campaign["last_triggered_at"]) == (1, iso(fire)), campaign
    assert (campaign["status"], campaign["next_run_at"]) == ("PAUSED", None), campaign
    assert [r["run_id"] for r in call_api("GET", f"/api/v1/campaigns/{cid}/runs")[1]["items"]] == [f"{cid}:{iso(fire)}"]
    status, resumed = call_api("POST", f"/api/v1/campaigns/{cid}/resume")
    assert (status, resumed["status"], resumed["runs_count"]) == (200, "ACTIVE", 1)
    call_api("DELETE", f"/api/v1/campaigns/{cid}")


def test_a_put_between_the_claim_and_the_completion_keeps_the_run_and_the_edit() -> None:
    cid, fire = _due_now(max_runs=3)
    meanwhile = Meanwhile(cid, lambda: call_api("PUT", f"/api/v1/campaigns/{cid}", {"cron": "0 12 * * *"}))
    assert f"{cid}:{iso(fire)}" in meanwhile.scheduler.tick().fired
    ((status, edited),) = meanwhile.answers
    assert status == 200, edited
    campaign = call_api("GET", f"/api/v1/campaigns/{cid}")[1]
    assert (campaign["runs_count"], campaign["status"], campaign["cron"]) == (1, "ACTIVE", "0 12 * * *"), campaign
    assert campaign["next_run_at"] == edited["next_run_at"] and campaign["next_run_at"].endswith("T12:00:00.000Z")
    call_api("DELETE", f"/api/v1/campaigns/{cid}")


def test_the_last_run_racing_a_pause_and_a_resume_never_exceeds_max_runs() -> None:
    cid, fire = _due_now(max_runs=1)

    def pause_and_resume() -> tuple[int, Any]:
        assert call_api("POST", f"/api/v1/campaigns/{cid}/pause")[0] == 200
        return call_api("POST", f"/api/v1/campaigns/{cid}/resume")

    meanwhile = Meanwhile(cid, pause_and_resume)
    assert f"{cid}:{iso(fire)}" in meanwhile.scheduler.tick().fired
    campaign = call_api("GET", f"/api/v1/campaigns/{cid}")[1]
    assert (campaign["status"], campaign["runs_count"], campaign["next_run_at"]) == ("INACTIVE", 1, None), campaign
    _make_due(cid, fire + timedelta(minutes=1))  # even if its time came again, no claim is possible
    stored = meanwhile.store.get(cid)
    assert stored is not None and not meanwhile.store.claim(stored, fire + timedelta(minutes=1), utc_now(), 120)
    call_api("DELETE", f"/api/v1/campaigns/{cid}")


def test_an_exhausted_campaign_refuses_pause_and_resume_and_a_higher_max_runs_makes_it_active_from_now() -> None:
    cid, _ = _due_now(max_runs=1)
    assert cid in {r.split(":")[0] for r in _tick()["fired"]}
    assert call_api("GET", f"/api/v1/campaigns/{cid}")[1]["status"] == "INACTIVE"
    for action in ("pause", "resume"):
        status, error = call_api("POST", f"/api/v1/campaigns/{cid}/{action}")
        assert status == 409 and "max_runs" in error["error"]["message"], (action, error)
    status, error = call_api("PUT", f"/api/v1/campaigns/{cid}", {"max_runs": 0})
    assert status == 422 and error["error"]["fields"][0]["loc"] == "max_runs"
    before = datetime.now(UTC)
    status, raised = call_api(
        "PUT", f"/api/v1/campaigns/{cid}", {"cron": "0 9 * * *", "timezone": "Asia/Tokyo", "max_runs": 2}
    )
    after = datetime.now(UTC)
    assert (status, raised["status"], raised["runs_count"]) == (200, "ACTIVE", 1), raised
    expected = {iso(next_fire("0 9 * * *", "Asia/Tokyo", moment)) for moment in (before, after)}
    assert raised["next_run_at"] in expected  # from now, in the campaign's time zone (09:00 Tokyo is 00:00 UTC)
    assert call_api("GET", f"/api/v1/campaigns/{cid}")[1] == raised
    call_api("DELETE", f"/api/v1/campaigns/{cid}")


def test_a_campaign_already_at_max_runs_when_due_is_finished_without_firing() -> None:
    cid, _ = _due_now(max_runs=2)
    boto3.client("dynamodb").update_item(  # as an item stored before a PUT finished such a campaign at once
        TableName=os.environ["CAMPAIGNS_TABLE"],
        Key={"pk": {"S": f"CAMPAIGN#{cid}"}, "sk": {"S": "META"}},
        UpdateExpression="SET runs_count = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    result = _tick()
    assert cid in result["finished"] and not any(r.startswith(cid) for r in result["fired"])
    campaign = call_api("GET", f"/api/v1/campaigns/{cid}")[1]
    assert (campaign["status"], campaign["runs_count"], campaign["next_run_at"]) == ("INACTIVE", 2, None)
    assert call_api("GET", f"/api/v1/campaigns/{cid}/runs")[1]["items"] == []
    call_api("DELETE", f"/api/v1/campaigns/{cid}")

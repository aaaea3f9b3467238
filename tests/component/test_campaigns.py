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
from notify.clock import iso
from notify.records import CampaignStatus

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
        fired.extend(r for r in scheduler.tick().fired if r.startswith(cid))

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

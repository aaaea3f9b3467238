"""A campaign's stored META item is pinned here, attribute by attribute and type by type: it is built from the
campaign's public view (``Campaign.view``), so a change to the API's shape must not change what CampaignsTable holds,
least of all the ``due`` index's keys (``status``, ``next_run_at``)."""

from __future__ import annotations

from datetime import UTC, datetime

from notify.adapters.dynamodb.campaigns import _campaign, _campaign_item
from notify.adapters.dynamodb.items import to_item
from notify.models import Channel, Priority
from notify.records import Campaign, CampaignStatus

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
STAMP = {"S": "2026-12-01T09:00:00.000Z"}


def _campaign_of(**changes: object) -> Campaign:
    fields: dict[str, object] = {
        "campaign_id": "c1",
        "name": "Weekly films",
        "cron": "0 9 * * 1",
        "timezone": "Europe/Berlin",
        "segment_id": "all",
        "event_type": "new_film",
        "payload": {"title": "Dune", "n": 1},
        "channels": [Channel.EMAIL, Channel.PUSH],
        "priority": Priority.HIGH,
        "max_runs": 10,
        "status": CampaignStatus.ACTIVE,
        "runs_count": 2,
        "last_triggered_at": T0,
        "next_run_at": T0,
        "created_at": T0,
        "updated_at": T0,
        "version": 3,
    }
    return Campaign(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_campaigns_item_holds_exactly_these_attributes_with_these_types() -> None:
    assert to_item(_campaign_item(_campaign_of())) == {
        "pk": {"S": "CAMPAIGN#c1"},
        "sk": {"S": "META"},
        "kind": {"S": "campaign"},
        "campaign_id": {"S": "c1"},
        "name": {"S": "Weekly films"},
        "cron": {"S": "0 9 * * 1"},
        "timezone": {"S": "Europe/Berlin"},
        "segment_id": {"S": "all"},
        "event_type": {"S": "new_film"},
        "payload": {"S": '{"title": "Dune", "n": 1}'},  # JSON text: any payload, however nested, is one attribute
        "channels": {"L": [{"S": "email"}, {"S": "push"}]},
        "priority": {"S": "high"},
        "max_runs": {"N": "10"},
        "status": {"S": "ACTIVE"},  # the due index's partition key
        "runs_count": {"N": "2"},
        "last_triggered_at": STAMP,
        "next_run_at": STAMP,  # the due index's sort key: an ISO string, so it sorts by time
        "created_at": STAMP,
        "updated_at": STAMP,
        "version": {"N": "3"},
    }


def test_a_campaign_with_no_next_run_is_left_out_of_the_due_index_and_reads_back_the_same() -> None:
    done = _campaign_of(status=CampaignStatus.INACTIVE, next_run_at=None, max_runs=None, channels=None, priority=None)
    item = to_item(_campaign_item(done))
    assert "next_run_at" not in item  # the due index is sparse: absent, not NULL
    assert {"max_runs", "channels", "priority"}.isdisjoint(item)
    for campaign in (done, _campaign_of()):
        assert _campaign(_campaign_item(campaign)) == campaign

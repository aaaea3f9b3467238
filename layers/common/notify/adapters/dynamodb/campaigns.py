"""Campaigns and their runs (CampaignsTable)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.dynamodb.cursors import NO_PAGING, CursorCodec
from notify.adapters.dynamodb.items import call, conditional, expression_values, from_item, to_item
from notify.clock import iso
from notify.models import Channel, Priority
from notify.records import Campaign, CampaignStatus, Run

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _dt(value: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _campaign_item(c: Campaign) -> dict[str, Any]:
    """The META item: the campaign's public shape (:meth:`Campaign.view`), its payload as JSON text, and its version.

    Only a campaign with a next run is in the ``due`` index (a sparse index): ``next_run_at`` is None otherwise.
    """
    key = {"pk": f"CAMPAIGN#{c.campaign_id}", "sk": "META", "kind": "campaign"}
    return {**key, **c.view(), "payload": json.dumps(c.payload), "version": c.version}


def _campaign(item: Mapping[str, Any]) -> Campaign:
    return Campaign(
        campaign_id=item["campaign_id"],
        name=item["name"],
        cron=item["cron"],
        timezone=item["timezone"],
        segment_id=item["segment_id"],
        event_type=item["event_type"],
        payload=json.loads(item["payload"]),
        channels=[Channel(c) for c in item["channels"]] if item.get("channels") else None,
        priority=Priority(item["priority"]) if item.get("priority") else None,
        max_runs=int(item["max_runs"]) if item.get("max_runs") is not None else None,
        status=CampaignStatus(item["status"]),
        runs_count=int(item.get("runs_count", 0)),
        last_triggered_at=_dt(item.get("last_triggered_at")),
        next_run_at=_dt(item.get("next_run_at")),
        created_at=_dt(item["created_at"]) or datetime.min,
        updated_at=_dt(item["updated_at"]) or datetime.min,
        version=int(item.get("version", 0)),  # items stored before versions are at 0
    )


# What an edit writes: everything but the counters (runs_count, last_triggered_at) and a run's claim.
EDITABLE = (
    "name",
    "cron",
    "timezone",
    "segment_id",
    "event_type",
    "payload",
    "channels",
    "priority",
    "max_runs",
    "status",
    "next_run_at",
    "updated_at",
)


def _at_version(version: int) -> str:
    """The condition that the item exists and is at ``:version`` (items stored before versions are at 0)."""
    if version == 0:
        return "attribute_exists(pk) AND (attribute_not_exists(version) OR version = :version)"
    return "version = :version"


class DynamoCampaignStore:
    """Campaigns (``CAMPAIGN#<id>`` / ``META``) with their runs (``RUN#<fire time>``) in CampaignsTable."""

    def __init__(self, client: DynamoDBClient, table: str, cursors: CursorCodec = NO_PAGING) -> None:
        self._client = client
        self._table = table
        self._cursors = cursors

    def put(self, campaign: Campaign) -> None:
        """PutItem of the campaign's META item."""
        call("store the campaign", self._client.put_item, TableName=self._table, Item=to_item(_campaign_item(campaign)))

    def get(self, campaign_id: str) -> Optional[Campaign]:
        """A consistent GetItem of the campaign's META item."""
        resp = call(
            "read the campaign",
            self._client.get_item,
            TableName=self._table,
            Key=to_item({"pk": f"CAMPAIGN#{campaign_id}", "sk": "META"}),
            ConsistentRead=True,
        )
        item = resp.get("Item") if resp else None
        return _campaign(from_item(item)) if item else None

    def page(self, limit: int, cursor: Optional[str]) -> tuple[list[Campaign], Optional[str]]:
        """A scan of META items (filtered on ``kind``), with a signed cursor for the next page."""
        kwargs: dict[str, Any] = {
            "FilterExpression": "kind = :kind",
            "ExpressionAttributeValues": expression_values({":kind": "campaign"}),
            "Limit": limit,
        }
        start = self._cursors.decode(cursor)
        if start:
            kwargs["ExclusiveStartKey"] = start
        out: list[Campaign] = []
        last = None
        for _ in range(20):
            resp = call("list campaigns", self._client.scan, TableName=self._table, **kwargs)
            out += [_campaign(from_item(i)) for i in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            if not last or len(out) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last
        return out[:limit], self._cursors.encode(last)

    def save(self, campaign: Campaign, unclaimed_at: Optional[datetime] = None) -> bool:
        """An UpdateItem of the editable attributes (those that became None are removed) and the version, conditional
        on the version read (and, with ``unclaimed_at``, on no live claim): the counters and a claim stay."""
        item = _campaign_item(campaign)
        names = {f"#{k}": k for k in EDITABLE}
        values: dict[str, Any] = {f":{k}": item[k] for k in EDITABLE if item[k] is not None}
        sets = [f"#{k} = :{k}" for k in EDITABLE if item[k] is not None] + ["version = :next"]
        removes = [f"#{k}" for k in EDITABLE if item[k] is None]
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        values |= {":version": campaign.version, ":next": campaign.version + 1}
        condition = _at_version(campaign.version)
        if unclaimed_at is not None:
            condition += " AND (attribute_not_exists(claim_until) OR claim_until < :now)"
            values[":now"] = int(unclaimed_at.timestamp())
        return conditional(
            "update the campaign",
            self._client.update_item,
            TableName=self._table,
            Key=to_item({"pk": f"CAMPAIGN#{campaign.campaign_id}", "sk": "META"}),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=expression_values(values),
        )

    def delete(self, campaign_id: str) -> None:
        """Delete the campaign's runs, then its META item."""
        for run in self.runs(campaign_id, 1000):
            call(
                "delete a run",
                self._client.delete_item,
                TableName=self._table,
                Key=to_item(_run_key(run.campaign_id, run.fire_time)),
            )
        call(
            "delete the campaign",
            self._client.delete_item,
            TableName=self._table,
            Key=to_item({"pk": f"CAMPAIGN#{campaign_id}", "sk": "META"}),
        )

    def due(self, now: datetime, limit: int) -> list[Campaign]:
        """ACTIVE campaigns whose next run is at or before ``now``: a query on the `due` index, never a scan."""
        resp = call(
            "find due campaigns",
            self._client.query,
            TableName=self._table,
            IndexName="due",
            KeyConditionExpression="#s = :active AND next_run_at <= :now",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=expression_values({":active": CampaignStatus.ACTIVE.value, ":now": iso(now)}),
            Limit=limit,
        )
        return [_campaign(from_item(i)) for i in resp.get("Items", [])]

    def claim(self, campaign: Campaign, fire_time: datetime, now: datetime, lease_seconds: int) -> bool:
        """Only one scheduler gets a run: the campaign must still be at the version read and expect this run, hold no
        live claim, and have a run left (``runs_count < max_runs``: with no claim live, none is in flight)."""
        assert campaign.next_run_at is not None
        values: dict[str, Any] = {
            ":fire": iso(fire_time),
            ":until": int(now.timestamp()) + lease_seconds,
            ":now": int(now.timestamp()),
            ":expected": iso(campaign.next_run_at),
            ":active": CampaignStatus.ACTIVE.value,
            ":version": campaign.version,
        }
        return conditional(
            "claim the run",
            self._client.update_item,
            TableName=self._table,
            Key=to_item({"pk": f"CAMPAIGN#{campaign.campaign_id}", "sk": "META"}),
            UpdateExpression="SET claim_run = :fire, claim_until = :until",
            ConditionExpression=f"{_at_version(campaign.version)} AND #s = :active AND next_run_at = :expected "
            "AND (attribute_not_exists(claim_until) OR claim_until < :now) "
            "AND (attribute_not_exists(max_runs) OR runs_count < max_runs)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=expression_values(values),
        )

    def complete(self, campaign: Campaign, run: Run, next_run_at: Optional[datetime], status: CampaignStatus) -> bool:
        """Record the run and move the campaign on, in one transaction, only if the claim is still held and the
        campaign is at the version read."""
        now = iso(run.triggered_at)
        sets = "#s = :status, runs_count = runs_count + :one, last_triggered_at = :fire, updated_at = :now, "
        sets += "version = :next"
        values: dict[str, Any] = {
            ":status": status.value,
            ":one": 1,
            ":fire": iso(run.fire_time),
            ":now": now,
            ":version": campaign.version,
            ":next": campaign.version + 1,
        }
        if next_run_at is not None:
            sets += ", next_run_at = :next_run"
            values[":next_run"] = iso(next_run_at)
            update = f"SET {sets} REMOVE claim_run, claim_until"
        else:
            update = f"SET {sets} REMOVE claim_run, claim_until, next_run_at"
        run_item = {
            **_run_key(run.campaign_id, run.fire_time),
            "kind": "run",
            "campaign_id": run.campaign_id,
            "fire_time": iso(run.fire_time),
            "run_id": run.run_id,
            "event_id": run.event_id,
            "triggered_at": now,
        }
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_item({"pk": f"CAMPAIGN#{campaign.campaign_id}", "sk": "META"}),
                    "UpdateExpression": update,
                    "ConditionExpression": f"claim_run = :fire AND {_at_version(campaign.version)}",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": expression_values(values),
                }
            },
            {"Put": {"TableName": self._table, "Item": to_item(run_item)}},
        ]
        return conditional("complete the run", self._client.transact_write_items, TransactItems=items)

    def runs(self, campaign_id: str, limit: int) -> list[Run]:
        """A query of ``RUN#`` items, newest first."""
        resp = call(
            "read runs",
            self._client.query,
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
            ExpressionAttributeValues=expression_values({":pk": f"CAMPAIGN#{campaign_id}", ":run": "RUN#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [
            Run(
                campaign_id=i["campaign_id"],
                fire_time=_dt(i["fire_time"]) or datetime.min,
                run_id=i["run_id"],
                event_id=i["event_id"],
                triggered_at=_dt(i["triggered_at"]) or datetime.min,
            )
            for i in (from_item(raw) for raw in resp.get("Items", []))
        ]


def _run_key(campaign_id: str, fire_time: datetime) -> dict[str, str]:
    return {"pk": f"CAMPAIGN#{campaign_id}", "sk": f"RUN#{iso(fire_time)}"}

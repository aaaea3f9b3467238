"""Campaigns: cron schedules in a time zone, fired to a segment exactly once per due time.

Rules (docs/CAMPAIGN.md):
- fire times are computed by croniter in the campaign's IANA time zone and stored in UTC;
- a local time skipped by a DST change fires at the next valid minute (croniter's rule); a local time
  that occurs twice fires once (both in :mod:`notify.cron`, which digests share);
- missed runs coalesce: a tick that finds several fire times passed fires one run, for the latest;
- a run is claimed with a conditional write before it is triggered, and the campaign's counters move
  only after the trigger succeeded; a failed trigger is retried on the next tick;
- a campaign is INACTIVE exactly when it has a ``max_runs`` and has used it: a run that reaches it, or a PUT that
  lowers it to ``runs_count``, ends the campaign, and a PUT that raises it (or removes it) makes it ACTIVE again;
- every write is conditional on the version it read, and none but the run's own completion touches the run's
  claim or counters: a pause or an edit that lands while a run is under way keeps that run, which is then
  recorded against the campaign as it now is.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Optional
from zoneinfo import ZoneInfo

from pydantic import Field, ValidationError, field_validator, model_validator

from notify.catalog import field_errors, get_event_type, validate_payload
from notify.clock import Clock, iso
from notify.cron import check_cron, check_timezone, latest_fire, next_fire, next_fires
from notify.errors import Conflict, FieldError, NotFound, ValidationFailed
from notify.models import AcceptedEvent, Channel, Priority, Strict
from notify.ports import CampaignStore, CampaignTrigger
from notify.records import Campaign, CampaignStatus, Run
from notify.services.status import StatusQueries

CLAIM_SECONDS = 120
MAX_PREVIEW = 50
ATTEMPTS = 5  # conditional writes that lost a race, read again and retried


class CampaignInput(Strict):
    """Body of POST /api/v1/campaigns."""

    name: str = Field(min_length=1, max_length=200)
    cron: str
    timezone: str = "UTC"
    segment_id: str = Field(min_length=1, max_length=128)
    event_type: str
    payload: dict[str, Any]
    channels: Optional[list[Channel]] = Field(default=None, min_length=1)
    priority: Optional[Priority] = None
    max_runs: Optional[int] = Field(default=None, ge=1)

    _cron = field_validator("cron")(check_cron)
    _tz = field_validator("timezone")(check_timezone)

    @model_validator(mode="after")
    def _event(self) -> CampaignInput:
        spec = get_event_type(self.event_type)
        if spec.name == "campaign_triggered":
            raise ValueError("a campaign sends an event type of its own, not campaign_triggered")
        object.__setattr__(self, "payload", validate_payload(spec, self.payload))
        return self


class CampaignUpdate(Strict):
    """Body of PUT /api/v1/campaigns/{id}: the fields sent replace the current ones."""

    name: Optional[str] = Field(default=None, min_length=1, max_length=200)
    cron: Optional[str] = None
    timezone: Optional[str] = None
    segment_id: Optional[str] = Field(default=None, min_length=1, max_length=128)
    event_type: Optional[str] = None
    payload: Optional[dict[str, Any]] = None
    channels: Optional[list[Channel]] = Field(default=None, min_length=1)
    priority: Optional[Priority] = None
    max_runs: Optional[int] = Field(default=None, ge=1)


def run_id(campaign_id: str, fire_time: datetime) -> str:
    """A run's id: the campaign and the fire time, ``<campaign_id>:<ISO time>``."""
    return f"{campaign_id}:{iso(fire_time)}"


def run_event_id(campaign_id: str, fire_time: datetime) -> str:
    """Deterministic: triggering the same run twice creates the same event, hence the same jobs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"campaign:{campaign_id}:{iso(fire_time)}"))


# -- states ------------------------------------------------------------------------------------


def _merge(current: Campaign, changes: CampaignUpdate) -> CampaignInput:
    """The campaign with the fields a PUT sent, validated as a whole: one field error per problem."""
    merged = {k: getattr(current, k) for k in CampaignUpdate.model_fields} | changes.model_dump(exclude_unset=True)
    try:
        return CampaignInput.model_validate({k: v for k, v in merged.items() if v is not None})
    except ValidationFailed:
        raise
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc)) from None


def _used_up(max_runs: Optional[int], runs_count: int) -> bool:
    return max_runs is not None and runs_count >= max_runs


def _after_edit(current: Campaign, data: CampaignInput, now: datetime) -> tuple[CampaignStatus, Optional[datetime]]:
    """The status and next run after a PUT: INACTIVE exactly when max_runs is used up, ACTIVE again from now when
    a raised (or removed) max_runs leaves runs, a new schedule of an ACTIVE campaign from now, else unchanged."""
    if _used_up(data.max_runs, current.runs_count):
        return CampaignStatus.INACTIVE, None
    if current.status is CampaignStatus.INACTIVE:
        return CampaignStatus.ACTIVE, next_fire(data.cron, data.timezone, now)
    if current.status is CampaignStatus.ACTIVE and (data.cron, data.timezone) != (current.cron, current.timezone):
        return CampaignStatus.ACTIVE, next_fire(data.cron, data.timezone, now)
    return current.status, current.next_run_at


def after_run(campaign: Campaign, fire: datetime, now: datetime) -> tuple[Optional[datetime], CampaignStatus]:
    """The next run and status once the run at ``fire`` is recorded against ``campaign`` as it is now.

    The run that reaches max_runs ends the campaign; a PAUSED campaign stays paused; an ACTIVE one keeps a next run
    an edit or a resume set after the claim, else moves on to the cron's next time after now.
    """
    if _used_up(campaign.max_runs, campaign.runs_count + 1):
        return None, CampaignStatus.INACTIVE
    if campaign.status is not CampaignStatus.ACTIVE:
        return None, campaign.status
    if campaign.next_run_at is not None and campaign.next_run_at > fire:
        return campaign.next_run_at, CampaignStatus.ACTIVE
    return next_fire(campaign.cron, campaign.timezone, max(now, fire)), CampaignStatus.ACTIVE


# -- services ----------------------------------------------------------------------------------


class CampaignService:
    """Campaign management: create, read, change, pause and resume campaigns, and report on their runs.

    ``status`` reads the events a run triggered, for :meth:`run_summaries`; without it a run is reported
    with no recipients yet.
    """

    def __init__(
        self,
        store: CampaignStore,
        clock: Clock,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        status: Optional[StatusQueries] = None,
    ):
        self._store = store
        self._clock = clock
        self._new_id = new_id
        self._status = status

    def create(self, data: CampaignInput) -> Campaign:
        """Store a new ACTIVE campaign; its first run is the cron's next fire time in its time zone."""
        now = self._clock()
        campaign = Campaign(
            campaign_id=self._new_id(),
            name=data.name,
            cron=data.cron,
            timezone=data.timezone,
            segment_id=data.segment_id,
            event_type=data.event_type,
            payload=data.payload,
            channels=data.channels,
            priority=data.priority,
            max_runs=data.max_runs,
            status=CampaignStatus.ACTIVE,
            runs_count=0,
            last_triggered_at=None,
            next_run_at=next_fire(data.cron, data.timezone, now),
            created_at=now,
            updated_at=now,
        )
        self._store.put(campaign)
        return campaign

    def get(self, campaign_id: str) -> Campaign:
        """The campaign; NotFound if there is none."""
        campaign = self._store.get(campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} not found")
        return campaign

    def page(self, limit: int = 50, cursor: Optional[str] = None) -> tuple[list[Campaign], Optional[str]]:
        """Up to ``limit`` campaigns from ``cursor`` on, and the cursor of the next page (None: the last)."""
        return self._store.page(limit, cursor)

    def update(self, campaign_id: str, changes: CampaignUpdate) -> Campaign:
        """Replace the fields sent, validated with the rest as a whole (ValidationFailed).

        A new cron or time zone of an ACTIVE campaign recomputes the next run from now. ``max_runs`` moves the
        status: raised above ``runs_count`` (or removed), an INACTIVE campaign is ACTIVE again from now; lowered to
        ``runs_count``, the campaign is INACTIVE (a Conflict while a run is under way, which would go past it);
        below ``runs_count`` it is a field error.
        """

        def change(current: Campaign, now: datetime) -> Campaign:
            data = _merge(current, changes)
            if data.max_runs is not None and data.max_runs < current.runs_count:
                runs = current.runs_count
                message = f"the campaign has already run {runs} times: max_runs must be at least {runs}"
                raise ValidationFailed([FieldError("max_runs", message, "greater_than_equal")])
            updated = replace(current, **{k: getattr(data, k) for k in CampaignUpdate.model_fields}, updated_at=now)
            updated.status, updated.next_run_at = _after_edit(current, data, now)
            return updated

        return self._change(campaign_id, change)

    def delete(self, campaign_id: str) -> None:
        """Delete the campaign; NotFound if there is none. A run under way is sent but not recorded."""
        self.get(campaign_id)
        self._store.delete(campaign_id)

    def pause(self, campaign_id: str) -> Campaign:
        """PAUSED: it never fires until resumed. Pausing a PAUSED campaign changes nothing; an INACTIVE one is a
        Conflict (it has used its max_runs: nothing to pause)."""

        def change(current: Campaign, now: datetime) -> Optional[Campaign]:
            if current.status is CampaignStatus.PAUSED:
                return None
            return replace(current, status=CampaignStatus.PAUSED, next_run_at=None, updated_at=now)

        return self._change(campaign_id, change, refused_when_inactive="pause")

    def resume(self, campaign_id: str) -> Campaign:
        """ACTIVE again, next run computed from now: runs missed while paused are not fired. Resuming an ACTIVE
        campaign changes nothing (a run that is due stays due); an INACTIVE one is a Conflict."""

        def change(current: Campaign, now: datetime) -> Optional[Campaign]:
            if current.status is CampaignStatus.ACTIVE:
                return None
            next_run = next_fire(current.cron, current.timezone, now)
            return replace(current, status=CampaignStatus.ACTIVE, next_run_at=next_run, updated_at=now)

        return self._change(campaign_id, change, refused_when_inactive="resume")

    def _change(
        self,
        campaign_id: str,
        change: Callable[[Campaign, datetime], Optional[Campaign]],
        refused_when_inactive: Optional[str] = None,
    ) -> Campaign:
        """Read, change (None: nothing to change), and write conditionally on the version read; a write that lost a
        race is retried. A write that ends the campaign is refused while a run is under way, which would be one run
        more than max_runs."""
        for _ in range(ATTEMPTS):
            current = self.get(campaign_id)
            if refused_when_inactive and current.status is CampaignStatus.INACTIVE:
                raise Conflict(
                    f"campaign {campaign_id} is INACTIVE: it has run {current.runs_count} of its max_runs "
                    f"{current.max_runs} times, so there is nothing to {refused_when_inactive}; to run it again, "
                    f"raise max_runs with PUT /api/v1/campaigns/{campaign_id}"
                )
            now = self._clock()
            updated = change(current, now)
            if updated is None:
                return current
            ending = updated.status is CampaignStatus.INACTIVE and current.status is not CampaignStatus.INACTIVE
            if self._store.save(updated, now if ending else None):
                return replace(updated, version=current.version + 1)
            latest = self._store.get(campaign_id)
            if latest is None:
                raise NotFound(f"campaign {campaign_id} not found")
            if ending and latest.version == current.version:  # unchanged: the claim of a live run refused it
                raise Conflict(
                    f"a run of campaign {campaign_id} is under way: with it, runs_count will be "
                    f"{current.runs_count + 1}, above max_runs {updated.max_runs}; try again in a minute"
                )
        raise Conflict(f"campaign {campaign_id} keeps changing; read it again and retry")

    def preview(self, campaign_id: str, count: int) -> list[datetime]:
        """The next ``count`` (at most MAX_PREVIEW) fire times from now, in UTC."""
        campaign = self.get(campaign_id)
        return next_fires(campaign.cron, campaign.timezone, self._clock(), min(count, MAX_PREVIEW))

    def schedule(self, cron: str, timezone: str, count: int = 5) -> dict[str, Any]:
        """The next ``count`` (at most MAX_PREVIEW) fire times from now of a cron and time zone no campaign has
        yet (a form's, as it is typed): ``{cron, timezone, next_runs, local_times}``, in UTC and in the zone.

        A bad cron or zone is a field error on ``cron`` or ``timezone``, both checked at once, with the
        messages a save gives.
        """
        errors: list[FieldError] = []
        for loc, check, value in (("cron", check_cron, cron), ("timezone", check_timezone, timezone)):
            try:
                check(value)
            except ValueError as exc:
                errors.append(FieldError(loc, str(exc), "value_error"))
        if errors:
            raise ValidationFailed(errors)
        times = next_fires(cron, timezone, self._clock(), min(count, MAX_PREVIEW))
        zone = ZoneInfo(timezone)
        return {
            "cron": cron,
            "timezone": timezone,
            "next_runs": [iso(t) for t in times],
            "local_times": [t.astimezone(zone).isoformat() for t in times],
        }

    def due_within(self, window: timedelta, limit: int = 20) -> list[Campaign]:
        """ACTIVE campaigns whose next run comes within ``window`` from now (overdue ones too), soonest first."""
        due = self._store.due(self._clock() + window, limit)
        return sorted(due, key=lambda c: (c.next_run_at or datetime.max.replace(tzinfo=UTC), c.campaign_id))

    def runs(self, campaign_id: str, limit: int = 50) -> list[Run]:
        """The campaign's runs, newest first; NotFound if there is no such campaign."""
        self.get(campaign_id)
        return self._store.runs(campaign_id, limit)

    def run_summaries(self, campaign_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """Each run, newest first, with its recipients and delivery counts so far (from the run's event)."""
        summaries = []
        for run in self.runs(campaign_id, limit):
            summary = self._status.event(run.event_id) if self._status is not None else {}
            summaries.append(
                {
                    "run_id": run.run_id,
                    "fire_time": iso(run.fire_time),
                    "triggered_at": iso(run.triggered_at),
                    "event_id": run.event_id,
                    "recipients": summary.get("recipients", 0),
                    "pages_expanded": summary.get("pages_expanded", 0),
                    "status_counts": summary.get("status_counts"),
                    "feedback_counts": summary.get("feedback_counts"),
                    "skipped_counts": summary.get("skipped_counts"),
                }
            )
        return summaries


@dataclass
class TickResult:
    """What one scheduler tick did, by campaign or run id."""

    fired: list[str] = field(default_factory=list)  # run ids
    skipped: list[str] = field(default_factory=list)  # claimed elsewhere
    failed: list[str] = field(default_factory=list)  # trigger failed: retried next tick
    finished: list[str] = field(default_factory=list)  # max_runs reached
    unrecorded: list[str] = field(default_factory=list)  # triggered, but the campaign was deleted or the claim lost


class CampaignScheduler:
    """One tick: fire every due ACTIVE campaign once, for its latest passed fire time."""

    def __init__(self, store: CampaignStore, trigger: CampaignTrigger, clock: Clock, batch: int = 100) -> None:
        self._store = store
        self._trigger = trigger
        self._clock = clock
        self._batch = batch

    def tick(self) -> TickResult:
        """Fire every campaign due now (up to ``batch``); see the module's rules."""
        now = self._clock()
        result = TickResult()
        for campaign in self._store.due(now, self._batch):
            self._fire(campaign, now, result)
        return result

    def _fire(self, campaign: Campaign, now: datetime, result: TickResult) -> None:
        if campaign.status is not CampaignStatus.ACTIVE or campaign.next_run_at is None or campaign.next_run_at > now:
            return
        if _used_up(campaign.max_runs, campaign.runs_count):  # stored so before a PUT ended such campaigns at once
            done = replace(campaign, status=CampaignStatus.INACTIVE, next_run_at=None, updated_at=now)
            if self._store.save(done):
                result.finished.append(campaign.campaign_id)
            return
        fire = max(campaign.next_run_at, latest_fire(campaign.cron, campaign.timezone, now))  # coalesce missed runs
        if not self._store.claim(campaign, fire, now, CLAIM_SECONDS):
            result.skipped.append(campaign.campaign_id)
            return
        rid, event_id = run_id(campaign.campaign_id, fire), run_event_id(campaign.campaign_id, fire)
        try:
            self._trigger.trigger(campaign, rid, event_id)
        except Exception:  # noqa: BLE001 - any failure leaves the campaign as it was; the claim expires
            result.failed.append(rid)
            return
        run = Run(campaign.campaign_id, fire, rid, event_id, now)
        current = campaign
        for _ in range(ATTEMPTS):
            next_run, status = after_run(current, fire, now)
            if self._store.complete(current, run, next_run, status):
                result.fired.append(rid)
                return
            # A pause or an edit landed since the claim (it kept the claim): record the run against the campaign as
            # it is now. Unchanged, or gone: the claim is not ours any more (or the campaign was deleted).
            latest = self._store.get(campaign.campaign_id)
            if latest is None or latest.version == current.version:
                break
            current = latest
        result.unrecorded.append(rid)


class IngestTrigger:
    """Fires a run through ingestion: one campaign_triggered event for the segment, with a deterministic id."""

    def __init__(self, ingest: Any) -> None:
        self._ingest = ingest

    def trigger(self, campaign: Campaign, run_id: str, event_id: str) -> AcceptedEvent:
        """Accept the run's campaign_triggered event under ``event_id``; accepting it again sends nothing new."""
        from notify.models import EventRequest

        request = EventRequest.model_validate(
            {
                "event_type": "campaign_triggered",
                "payload": {
                    "campaign_id": campaign.campaign_id,
                    "run_id": run_id,
                    "event_type": campaign.event_type,
                    "payload": campaign.payload,
                },
                "recipients": {"segment_id": campaign.segment_id},
                "channels": [c.value for c in campaign.channels] if campaign.channels else None,
                "priority": campaign.priority.value if campaign.priority else None,
            }
        )
        accepted: AcceptedEvent = self._ingest.accept(request, event_id=event_id)
        return accepted

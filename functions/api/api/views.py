"""What each operation answers: the response models the OpenAPI document is generated from.

The services build plain dicts (``job_view``, ``view()``, ``letter_view``...); these models describe
exactly those shapes, and the Event Handler validates every answer against them, so the documented
schema and the wire cannot drift. A key the service leaves out stays out (see ``Compact``).
"""
# No `from __future__ import annotations`: the Event Handler reads these models at runtime.

from typing import Any, Literal, Optional

from notify.digests import CronWindow, SecondsWindow
from notify.models import Category, Channel, Priority, QuietHours, Status
from notify.records import CampaignStatus, WebhookOutcome
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from api.openapi import ErrorBody


class View(BaseModel):
    """A response shape. A key the service adds without the model is an error, so the schema cannot lag behind."""

    model_config = ConfigDict(extra="forbid")


class Compact(View):
    """A shape whose optional keys are absent rather than null when the service leaves them out."""

    # No return annotation: with one, pydantic would publish the annotation's schema instead of the model's.
    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set or v is not None}


class Health(View):
    status: str = Field(examples=["ok"])


# -- events and notifications --------------------------------------------------------------


class BatchResult(Compact):
    """One event of a batch: 202 with its ids, or 422 with the error."""

    index: int
    status: int = Field(description="202 accepted, 422 invalid")
    event_id: Optional[str] = None
    job_ids: Optional[list[str]] = None
    segment_id: Optional[str] = None
    error: Optional[ErrorBody] = None


class BatchResults(View):
    results: list[BatchResult]


class Transition(Compact):
    """One entry of a job's history."""

    status: Status
    at: str
    attempt: int
    error: Optional[str] = None
    detail: Optional[dict[str, Any]] = None


class JobSummary(Compact):
    """A job's current state."""

    job_id: str
    event_id: str
    event_type: str
    user_id: str
    channel: Channel
    status: Status
    attempts: int
    created_at: str
    updated_at: str
    send_after: Optional[str]
    expires_at: Optional[str]
    last_error: Optional[str]
    template_version: Optional[int]
    provider_message_id: Optional[str]
    opens: int = Field(default=0, description="an email's opens SES reported (the history keeps the first)")
    clicks: int = Field(
        default=0,
        description="clicks SES reported on an email, and clicks on the job's short links (the history keeps the "
        "first of each: SES's as feedback Click, a short link's as feedback CLICKED)",
    )
    digest_job_id: Optional[str] = Field(
        default=None, description="a DIGESTED job's digest: the job that sends it with the bucket's other members"
    )


class DigestMemberView(View):
    """One notification collected into a digest."""

    job_id: str
    occurred_at: str = Field(description="when its event occurred")


class DigestView(View):
    """A digest's bucket: how many notifications it collected, their first and last times, when it closed (null if
    its record has expired), and its first 20 members, oldest first (the rest: ``GET .../members``)."""

    bucket_id: str
    count: Optional[int]
    first_at: Optional[str]
    last_at: Optional[str]
    closed_at: Optional[str]
    members: list[DigestMemberView]
    members_next_cursor: Optional[str] = Field(description="the cursor of GET .../members' next page (null: no more)")


class Notification(JobSummary):
    """A job with its transition history (at most 100 entries: later ones are counted in ``history_omitted``)."""

    history_omitted: int = Field(default=0, description="entries not recorded because the history was full")
    history: list[Transition]
    digest: Optional[DigestView] = Field(default=None, description="a digest's job: the notifications it collected")


class NotificationPage(View):
    items: list[Notification]
    next_cursor: Optional[str]


class DigestMemberPage(View):
    """A page of a digest's members, oldest first."""

    items: list[DigestMemberView]
    next_cursor: Optional[str]


class EventStatus(Compact):
    """An event and its jobs. Segment events add the expansion's progress; past 1,000 recipients
    ``jobs`` is null and ``status_counts`` absent (follow the jobs per user or per campaign run)."""

    event_id: str
    event_type: str
    priority: Priority
    created_at: str
    expires_at: str
    send_after: Optional[str]
    segment_id: Optional[str] = None
    pages_expanded: Optional[int] = None
    recipients: Optional[int] = None
    status_counts: Optional[dict[str, int]] = None
    feedback_counts: Optional[dict[str, int]] = Field(
        default=None,
        description="emails SES reported delivered, bounced, complained about, opened; jobs clicked (SES's "
        "click tracking or a short link)",
    )
    skipped_counts: Optional[dict[str, int]] = Field(
        default=None,
        description="SKIPPED jobs by reason: opted_out, suppressed, unreachable (no address on the channel), throttled",
    )
    jobs: Optional[list[JobSummary]]


# -- templates -----------------------------------------------------------------------------


class TemplateView(Compact):
    """One template version; the parts are the channel's (email: subject, body_text, body_html;
    push: title, body; websocket: body), each present even when empty (null)."""

    template_id: str = Field(examples=["new_film.email.en"])
    event_type: str
    channel: Channel
    locale: str
    version: int
    created_at: str
    subject: Optional[str] = None
    body_text: Optional[str] = None
    body_html: Optional[str] = None
    title: Optional[str] = None
    body: Optional[str] = None


class TemplateList(View):
    items: list[TemplateView]


class ThrottleRuleView(View):
    """At most ``limit`` notifications of ``category`` on ``channel`` per ``period_seconds``, per user; past it a job
    is ``SKIPPED`` (``throttled``)."""

    category: Category = Field(examples=["marketing"])
    channel: Channel = Field(examples=["email"])
    limit: int = Field(examples=[1])
    period_seconds: int = Field(examples=[86400])
    updated_at: str


class ThrottleRuleList(View):
    items: list[ThrottleRuleView]


class DigestRuleView(View):
    """Jobs of ``event_type`` on ``channels`` are collected into one notification per ``window`` and ``key`` values;
    a digest of ``max_items`` members goes out early."""

    event_type: str = Field(examples=["review_liked"])
    channels: list[Channel] = Field(examples=[["email"]], description="sorted")
    window: SecondsWindow | CronWindow = Field(
        description='{"seconds": n} from the first member, or {"cron", "timezone"} in the user\'s zone'
    )
    key: list[str] = Field(examples=[["review_id"]], description="the payload fields that split digests")
    max_items: int = Field(examples=[50])
    updated_at: str


class DigestRuleList(View):
    items: list[DigestRuleView]


# -- status webhooks -------------------------------------------------------------------------------------------------


class WebhookView(View):
    """A status webhook endpoint (never its secrets)."""

    webhook_id: str = Field(examples=["wh_5f0c2a9e41b7d3c86a1e0f42"])
    url: str = Field(examples=["https://hooks.example.com/notify"])
    events: list[str] = Field(examples=[["notification.delivered", "notification.bounced"]], description="sorted")
    description: Optional[str] = Field(examples=["CRM: mark bounced addresses"])
    status: Literal["enabled", "disabled"]
    disabled_reason: Optional[str] = Field(
        examples=["gone"],
        description="by_user; gone (the receiver answered 410); failing (its deliveries failed for 24 h)",
    )
    created_at: str
    updated_at: str


class WebhookWithSecret(WebhookView):
    """A new endpoint, or one whose secret was rotated, with its signing secret: shown this once."""

    secret: str = Field(
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        description="the Standard Webhooks signing secret (whsec_ and base64): shown only in this answer",
    )


class WebhookList(View):
    items: list[WebhookView]


class WebhookDeliveryView(View):
    """One attempt to deliver a message to the endpoint."""

    at: str
    message_id: str = Field(description="the webhook-id header: the same on every attempt of one message")
    message_type: str = Field(examples=["notification.delivered"])
    attempt: int = Field(description="0 for the first attempt")
    outcome: WebhookOutcome = Field(description="delivered (2xx), gone (410: endpoint disabled), retry (anything else)")
    status_code: Optional[int] = Field(description="null when no answer came")
    latency_ms: int
    error: Optional[str]


class WebhookDeliveryPage(View):
    """An endpoint's attempts, newest first (kept 30 days)."""

    items: list[WebhookDeliveryView]
    next_cursor: Optional[str]


class WebhookTestQueued(View):
    """The test message queued; its attempt shows in the endpoint's deliveries under ``message_id``."""

    webhook_id: str
    message_id: str
    message_type: Literal["webhook.test"]


class RenderedPreview(Compact):
    """A rendered template; parts the template does not have are absent."""

    template_id: str
    template_version: int = Field(description="the version rendered; 0 for content not saved (templates:preview)")
    locale: str
    subject: Optional[str] = None
    text: Optional[str] = None
    html: Optional[str] = None
    title: Optional[str] = None
    body: Optional[str] = None


class RenderedNotification(View):
    """A notification's message as it was rendered: its template version with its event's payload."""

    job_id: str
    template_id: str = Field(description="the template (event type × channel × locale) the worker rendered")
    template_version: int
    payload: dict[str, Any] = Field(description="the payload the templates saw (a campaign run's: the campaign's)")
    rendered: RenderedPreview = Field(
        description="the parts, rendered for a sample recipient with the job's user id (profiles stay with Auth)"
    )


class EventTypeView(View):
    """An event type: its payload's fields, defaults and a payload that validates."""

    event_type: str
    category: Category
    channels: list[Channel] = Field(description="the default channels of its events")
    priority: Priority
    ttl_seconds: int = Field(description="how long its notifications stay deliverable unless expires_at says")
    required: list[str] = Field(description="the payload fields an event must carry")
    optional: list[str]
    sample_payload: dict[str, Any] = Field(description="a payload that validates (what previews render with)")


class EventTypeList(View):
    items: list[EventTypeView]


# -- dead letters --------------------------------------------------------------------------


class DeadLetter(View):
    """One letter on the dead-letter queue; job fields are null for records that were not jobs."""

    message_id: str
    reason: Optional[str]
    error: Optional[str]
    attempt: Optional[int]
    failed_at: Optional[str]
    source: Optional[str]
    job_id: Optional[str]
    event_id: Optional[str]
    event_type: Optional[str]
    user_id: Optional[str]
    channel: Optional[str]
    raw: Any = Field(description="the original record when it was not a job, as text (cut at a limit)")
    raw_base64: Optional[str] = Field(description="the original record, base64, when it was not UTF-8 text")
    raw_size: Optional[int] = Field(description="the original record's size in bytes")
    kafka: Optional[dict[str, Any]] = Field(description="partitions and offsets a Kafka event source gave up on")
    dead_lettered_at: Optional[str]
    receive_count: int


class DeadLetterList(View):
    items: list[DeadLetter]


class Skipped(Compact):
    message_id: Optional[str] = None
    job_id: Optional[str] = None
    reason: str


class RedriveResult(View):
    redriven: list[str] = Field(description="job ids, or fanout:<event_id>:<page> for fan-out tasks")
    skipped: list[Skipped]


# -- campaigns and segments ----------------------------------------------------------------


class CampaignView(View):
    campaign_id: str
    name: str
    cron: str
    timezone: str
    segment_id: str
    event_type: str
    payload: dict[str, Any]
    channels: Optional[list[Channel]]
    priority: Optional[Priority]
    max_runs: Optional[int]
    status: CampaignStatus
    runs_count: int
    last_triggered_at: Optional[str]
    next_run_at: Optional[str]
    created_at: str
    updated_at: str


class CampaignPage(View):
    items: list[CampaignView]
    next_cursor: Optional[str]


class NextRuns(View):
    next_runs: list[str] = Field(description="fire times in UTC, ISO 8601")


class Schedule(NextRuns):
    """The next fire times of a cron and time zone (not of any campaign yet), in UTC and in that zone."""

    cron: str
    timezone: str
    local_times: list[str] = Field(description="the same fire times in the time zone, ISO 8601 with its offset")


# -- the operators' overview -----------------------------------------------------------------


class QueueDepthView(View):
    """SQS's approximate counts of one queue."""

    visible: int = Field(ge=0, description="ready to be received")
    in_flight: int = Field(ge=0, description="received, not yet deleted")
    delayed: int = Field(ge=0, description="waiting out a delay (retries, send_after hops)")


class Overview(View):
    """What an operator looks at first (the console's overview page)."""

    generated_at: str
    dlq: Optional[QueueDepthView] = Field(description="the dead-letter queue; null when it could not be read")
    delay_queue: Optional[QueueDepthView] = Field(description="the delay queue; null when it could not be read")
    campaigns_due: list[CampaignView] = Field(
        description="ACTIVE campaigns whose next run is within the hour (or overdue), soonest first; at most 20"
    )
    latest_failures: list[DeadLetter] = Field(
        description="the newest of a sample of up to 10 dead letters (SQS samples a large queue), newest first"
    )
    problems: list[str] = Field(description="what could not be read (the rest of the answer stands)")


class RunView(View):
    run_id: str
    fire_time: str
    triggered_at: str
    event_id: str
    recipients: int
    pages_expanded: int
    status_counts: Optional[dict[str, int]]
    feedback_counts: Optional[dict[str, int]] = Field(
        default=None, description="the run's emails SES reported delivered, bounced, complained about, opened, clicked"
    )
    skipped_counts: Optional[dict[str, int]] = Field(
        default=None, description="the run's SKIPPED jobs by reason: opted_out, suppressed, unreachable, throttled"
    )


class RunList(View):
    items: list[RunView]


class SegmentSummary(View):
    segment_id: str
    name: str
    created_at: str


class SegmentView(SegmentSummary):
    users: int


class SegmentList(View):
    items: list[SegmentSummary]


# -- preferences ---------------------------------------------------------------------------


class PreferencesView(View):
    """A user's preferences, every channel and category spelled out (true: on)."""

    user_id: str
    channels: dict[Channel, bool]
    categories: dict[Category, dict[Channel, bool]]
    quiet_hours: Optional[QuietHours]
    suppressed: list[str] = Field(
        description="the user's addresses no email goes to after a hard bounce or a complaint (read-only)"
    )
    updated_at: Optional[str] = Field(description="null for a user who never set preferences")


class PreferencesList(View):
    items: list[PreferencesView]


# -- the in-app inbox ----------------------------------------------------------------------


class InboxCountsView(View):
    """A user's badge numbers over the items not archived (and not expired)."""

    unseen: int = Field(ge=0)
    unread: int = Field(ge=0)
    total: int = Field(ge=0)


class InboxItemView(View):
    """One in-app notification: what the inbox lists and the ``notification`` frame carries."""

    id: str = Field(description="32 hex characters; ids sort by creation time", examples=["0193a1b2c3d4" + "0" * 20])
    job_id: str
    event_type: str
    title: Optional[str] = Field(description="the rendered websocket template's title")
    body: Optional[str] = Field(description="the rendered websocket template's body")
    data: dict[str, Any] = Field(description="the event's payload (empty when it was too large to keep)")
    created_at: str
    seen_at: Optional[str] = Field(description="when the user first saw it in a list; null: unseen")
    read_at: Optional[str] = Field(description="null: unread")
    archived_at: Optional[str] = Field(description="null: in the inbox; archived items are listed only on request")


class InboxPageView(View):
    """One page of an inbox, newest first, and the user's counts."""

    items: list[InboxItemView]
    next_cursor: Optional[str] = Field(description="pass as ?cursor= for the next page; null: the last page")
    counts: InboxCountsView


class InboxItemChange(View):
    """One item as stored after the change, and the counts (pushed to the user's connections too)."""

    item: InboxItemView
    counts: InboxCountsView


class ReadAllResult(View):
    updated: int = Field(ge=0, description="how many unread items were marked read")
    counts: InboxCountsView


class UserTokenView(View):
    """A user token for the user's browser or app: ``Authorization: Bearer`` and the WebSocket's ``?token=``."""

    user_id: str
    token: str
    expires_at: str = Field(description="when the token stops working (whole seconds); ask for a new one before")


# -- short links ---------------------------------------------------------------------------------------------------


class LinkView(Compact):
    """A short link: ``short_url`` (``{SHORT_LINK_BASE}/l/{code}``) redirects to ``url`` until ``expires_at``. A link
    a template made (``{{ url | short }}``) names its job and user, and its clicks also count on the job; one made
    with ``POST /api/v1/links`` counts its own."""

    code: str = Field(examples=["b3JpZ2luYWwtY29k"], description="16 characters of base64url: 96 bits")
    short_url: str = Field(examples=["https://notifications.example.com/l/b3JpZ2luYWwtY29k"])
    url: str = Field(examples=["https://example.com/watch/s1e2"], description="where it leads: http or https only")
    expires_at: str = Field(description="after this, GET /l/{code} is a 404")
    created_at: Optional[str] = None
    job_id: Optional[str] = Field(default=None, description="the notification whose template made it")
    user_id: Optional[str] = Field(default=None, description="the recipient of that notification")
    clicks: int = Field(default=0, description="clicks counted (HEAD and link scanners are not)")
    first_click_at: Optional[str] = Field(
        default=None, description="a link made with POST: its first click (a job's link: see the job's CLICKED)"
    )

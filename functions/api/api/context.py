"""The API's composition root: clients and services, built once per container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.config import Config
from notify.adapters.apigw import ApiGatewayConnectionPoster
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.campaigns import DynamoCampaignStore
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.adapters.dynamodb.digests import DynamoDigestStore
from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.adapters.dynamodb.links import DynamoLinkStore
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.adapters.dynamodb.segments import DynamoSegmentStore
from notify.adapters.dynamodb.status import DynamoStatusReader
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.adapters.dynamodb.throttles import DynamoThrottleRules
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.adapters.secrets import SsmSecret
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue, SqsQueueStats
from notify.adapters.transport import publisher_for
from notify.clock import Clock, utc_now
from notify.errors import KeyReused
from notify.ports import ApiKeyLookup, RunOnce
from notify.services.campaigns import CampaignService
from notify.services.digest_rules import DigestRuleService
from notify.services.dlq import DeadLetterService
from notify.services.inbox import InboxService
from notify.services.ingest import IngestService
from notify.services.links import LinkService
from notify.services.overview import OverviewService
from notify.services.preferences import PreferenceService
from notify.services.rendered import RenderedJobs
from notify.services.segments import SegmentService
from notify.services.status import StatusQueries
from notify.services.templates import TemplateService
from notify.services.throttles import ThrottleService
from notify.services.webhook_emitter import WebhookEmitter
from notify.services.webhooks import WebhookAdmin
from notify.settings import ApiSettings, load
from notify.unsubscribe import UnsubscribeLinks
from notify.usertokens import UserTokens
from notify.webhooks import system_resolver

# The Idempotency-Key's record: keyed by ``key``, the body must match the first use, kept 24 hours. The
# handler registers each invocation's Lambda context with it (so an in-progress record expires with a
# function that timed out).
IDEMPOTENCY = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=24 * 3600,
)


@dataclass(frozen=True)
class Services:
    """Every service a route may be given (see api.deps), and the API key store behind the scope checks."""

    ingest: IngestService
    status: StatusQueries
    keys: ApiKeyLookup
    templates: TemplateService
    dlq: DeadLetterService
    campaigns: CampaignService
    segments: SegmentService
    preferences: PreferenceService
    unsubscribe: UnsubscribeLinks  # reads the tokens of one-click unsubscribe links (the worker makes them)
    inbox: InboxService
    user_tokens: UserTokens
    overview: OverviewService  # the console's first page: queue depths, campaigns due, latest failures
    rendered: RenderedJobs  # a job's message as rendered
    links: LinkService  # short links: followed (GET /l/{code}), made and read (/api/v1/links)
    throttles: ThrottleService  # throttle rules, stored beside the templates
    digest_rules: DigestRuleService  # digest rules, stored beside the templates
    webhooks: WebhookAdmin  # status webhook endpoints (issue 24), stored beside the templates
    dev_user_tokens: bool = False  # the local stack's POST /dev/users/{user_id}/tokens answers (never deployed)
    dev_token_origins: tuple[str, ...] = ()  # the pages whose browser requests it answers (the stack's own)
    clock: Clock = utc_now


def build_services(settings: ApiSettings) -> Services:
    """Build every client and service from ``settings``."""
    # The adapters build every request themselves; skipping botocore's client-side validation of
    # each attribute saves about a third of the CPU of a batch write.
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    # Each kind of token has its own key list (SSM SecureStrings, cached): a forged or altered cursor is a 422.
    cursors = CursorCodec(SsmSecret(settings.cursor_keys_parameter))
    events = DynamoEventLog(dynamodb, settings.notifications_table)
    reader = DynamoStatusReader(dynamodb, settings.notifications_table, cursors)
    sqs = boto3.client("sqs")
    publisher = publisher_for(settings, sqs)  # the Kafka topic or the SQS jobs queue (TRANSPORT)
    fallback = SqsDelayQueue(sqs, settings.delay_queue_url)
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
    # A digest's notification reads its bucket (members a page at a time, under the same cursor keys).
    status = StatusQueries(reader, DynamoDigestStore(dynamodb, settings.notifications_table, cursors))
    templates = TemplateService(DynamoTemplateStore(dynamodb, settings.templates_table, cache_seconds=0), utc_now)
    dead_letters = SqsDeadLetterQueue(sqs, settings.dlq_url)
    # Status webhooks: the API changes statuses too (an inbox read, a short link's first click), and what an endpoint
    # subscribes to goes onto the delay queue like the worker's. The emitter's read of the endpoints is cached (it runs
    # for every such change); the admin's is not, so a GET right after a POST or PATCH shows it.
    emitter = WebhookEmitter(
        DynamoWebhookStore(
            dynamodb,
            settings.templates_table,
            settings.notifications_table,
            cache_seconds=settings.webhook_cache_seconds,
        ),
        fallback,
        utc_now,
    )
    webhooks = WebhookAdmin(
        DynamoWebhookStore(
            dynamodb, settings.templates_table, settings.notifications_table, cursors=cursors, cache_seconds=0
        ),
        utc_now,
        allow_http_loopback=settings.webhook_allow_http_loopback,
        resolver=system_resolver,
        delay_queue=fallback,
    )
    campaigns = CampaignService(
        DynamoCampaignStore(dynamodb, settings.campaigns_table, cursors), utc_now, status=status
    )
    overview = OverviewService(
        SqsQueueStats(sqs, settings.dlq_url),
        SqsQueueStats(sqs, settings.delay_queue_url),
        dead_letters,
        campaigns,
        utc_now,
    )
    return Services(
        ingest=IngestService(events, publisher, fallback, utc_now, once=_idempotent_accept(persistence, IDEMPOTENCY)),
        status=status,
        keys=DynamoApiKeyStore(dynamodb, settings.api_keys_table),
        templates=templates,
        # No cache here: a GET right after a PUT shows it (the worker's reads are cached PREFERENCES_CACHE_SECONDS).
        throttles=ThrottleService(DynamoThrottleRules(dynamodb, settings.templates_table, cache_seconds=0), utc_now),
        digest_rules=DigestRuleService(DynamoDigestRules(dynamodb, settings.templates_table, cache_seconds=0), utc_now),
        webhooks=webhooks,
        dlq=DeadLetterService(dead_letters, reader, fallback, utc_now),
        campaigns=campaigns,
        segments=SegmentService(DynamoSegmentStore(dynamodb, settings.campaigns_table), utc_now),
        # No cache here: a GET right after a PUT shows it (the worker's reads are cached 30 s).
        preferences=PreferenceService(
            DynamoPreferenceStore(dynamodb, settings.notifications_table, cache_seconds=0), utc_now
        ),
        unsubscribe=UnsubscribeLinks(SsmSecret(settings.unsubscribe_keys_parameter), base_url=""),
        inbox=_inbox(settings, dynamodb, cursors, emitter),
        user_tokens=UserTokens(
            SsmSecret(settings.user_token_keys_parameter), ttl=timedelta(seconds=settings.user_token_seconds)
        ),
        dev_user_tokens=settings.dev_user_tokens,
        dev_token_origins=tuple(o.strip() for o in settings.dev_user_token_origins.split(",") if o.strip()),
        overview=overview,
        rendered=RenderedJobs(reader, templates),
        links=LinkService(
            DynamoLinkStore(dynamodb, settings.links_table),
            DynamoJobLedger(dynamodb, settings.notifications_table),  # a click lands on its job (ClickStore)
            utc_now,
            settings.short_link_base,
            webhooks=emitter,  # a link's first click: notification.clicked
        ),
    )


def _inbox(settings: ApiSettings, dynamodb: Any, cursors: CursorCodec, webhooks: WebhookEmitter) -> InboxService:
    """The inbox; each change pushes counts through the WebSocket API's management endpoint, when there is one, and
    an item's first read is emitted to the status webhooks (inbox.read)."""
    poster = None
    if settings.websocket_endpoint:
        management = boto3.client(
            "apigatewaymanagementapi", endpoint_url=settings.websocket_endpoint, config=SEND_CONFIG
        )
        poster = ApiGatewayConnectionPoster(management)
    connections = DynamoConnectionStore(dynamodb, settings.connections_table)
    inbox = DynamoInboxStore(dynamodb, settings.inbox_table, cursors)
    return InboxService(
        inbox, connections, poster, utc_now, max_connections=settings.max_connections_per_user, webhooks=webhooks
    )


def _idempotent_accept(persistence: DynamoDBPersistenceLayer, config: IdempotencyConfig) -> RunOnce:
    """Powertools idempotency as the ingest service's ``RunOnce``: one record per key, the body checked.

    Powertools drops the record when the action raises (a 503), so the event id does not come from the
    record: the service fixes it beforehand (the client's own or derived from the key and body), and a
    retry after a 503 or a timeout publishes the same job ids again.
    """

    # The record's name includes this function's qualified name: keep it, or records written before a
    # deployment stop matching.
    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def accept_once(request: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return action()

    def once(key: str, body: dict[str, Any], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return accept_once(request={"key": key, "body": body}, action=action)
        except IdempotencyValidationError:
            raise KeyReused(key) from None

    return once


@cache
def services() -> Services:
    """The container's services, built on first use."""
    return build_services(load(ApiSettings))

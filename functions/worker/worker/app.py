"""WorkerFunction: delivers jobs from the Kafka topic (TRANSPORT sqs: the SQS jobs queue) and the SQS delay queue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kafka_event import KafkaEventRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from notify import snapstart
from notify.adapters.apigw import ApiGatewayConnectionPoster
from notify.adapters.auth import HttpUserDirectory
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.dynamodb.connections import DynamoConnectionStore
from notify.adapters.dynamodb.digest_rules import DynamoDigestRules
from notify.adapters.dynamodb.digests import DynamoDigestStore
from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.dynamodb.inbox import DynamoInboxStore
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.adapters.dynamodb.links import DynamoLinkStore
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.adapters.dynamodb.segments import DynamoSegmentStore
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.adapters.dynamodb.throttles import DynamoThrottleRules
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.adapters.secrets import SsmSecret
from notify.adapters.ses import SesEmailSender
from notify.adapters.sns import SnsPushSender
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue
from notify.adapters.transport import publisher_for
from notify.adapters.webhook_http import HttpWebhookSender
from notify.clock import utc_now
from notify.links import ShortLinks
from notify.models import Channel
from notify.ratelimit import RateLimitedEmailSender, TokenBucket
from notify.services.channels import EmailChannel, InAppChannel, PushChannel
from notify.services.delivery import DeliveryService, Outcome
from notify.services.digests import DigestService
from notify.services.fanout import FanoutService
from notify.services.inbox import InboxService
from notify.services.segments import CompositeSegmentSource
from notify.services.triage import Result, Triage
from notify.services.webhook_delivery import WebhookDeliveryService
from notify.services.webhook_emitter import WebhookEmitter
from notify.settings import WorkerSettings, load
from notify.unsubscribe import UnsubscribeLinks
from notify.webhooks import system_resolver

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@dataclass(frozen=True)
class Services:
    triage: Triage
    pool: ThreadPoolExecutor


def build_services(settings: WorkerSettings) -> Services:
    """The composition root: every client is built here, once per container."""
    # One pooled connection per delivery thread (botocore's default pool is 10).
    pool = Config(max_pool_connections=settings.worker_concurrency + 4)
    # The adapters build every request themselves: skip botocore's client-side validation of each attribute.
    dynamodb = boto3.client("dynamodb", config=pool.merge(Config(parameter_validation=False)))
    sqs = boto3.client("sqs", config=pool)
    store = DynamoJobLedger(dynamodb, settings.notifications_table)
    pages = DynamoEventLog(dynamodb, settings.notifications_table)
    # The Auth token comes from SSM Parameter Store (cached 5 minutes, so a rotation needs no deployment).
    token = SsmSecret(settings.auth_api_token_parameter) if settings.auth_api_token_parameter else None
    users = HttpUserDirectory.build(settings.auth_api_url, token)
    delay_queue = SqsDelayQueue(sqs, settings.delay_queue_url)
    dlq = SqsDeadLetterQueue(sqs, settings.dlq_url)
    publisher = publisher_for(settings, sqs)  # fan-out's: the Kafka topic or the SQS jobs queue (TRANSPORT)
    fanout = FanoutService(
        pages,
        CompositeSegmentSource(DynamoSegmentStore(dynamodb, settings.campaigns_table), users),
        publisher,
        delay_queue,
        dlq,
        utc_now,
        settings.fanout_page_size,
    )
    # Sends: one HTTP attempt each, timeouts well inside the lease; emails under the account's SES rate.
    email = RateLimitedEmailSender(
        SesEmailSender(
            boto3.client("sesv2", config=pool.merge(SEND_CONFIG)),
            settings.sender_email,
            settings.ses_configuration_set,
            settings.ses_untracked_configuration_set,
        ),
        TokenBucket(settings.ses_max_send_rate),
    )
    # In-app: the item is stored in the inbox, then posted to the user's sockets (one attempt per connection).
    inbox = InboxService(
        DynamoInboxStore(dynamodb, settings.inbox_table),
        DynamoConnectionStore(dynamodb, settings.connections_table),
        ApiGatewayConnectionPoster(
            boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=settings.websocket_endpoint,
                config=pool.merge(SEND_CONFIG),
            )
        )
        if settings.websocket_endpoint
        else None,
        utc_now,
        retention=timedelta(days=settings.inbox_retention_days),
        max_connections=settings.max_connections_per_user,
    )
    # Status webhooks (docs/WEBHOOKS.md): the endpoints are read as the rules are (cached), each recorded status an
    # endpoint subscribes to is queued as a message on the delay queue, and that message comes back here to be posted.
    webhook_store = DynamoWebhookStore(
        dynamodb,
        settings.templates_table,
        settings.notifications_table,
        cache_seconds=settings.webhook_cache_seconds,
    )
    emitter = WebhookEmitter(webhook_store, delay_queue, utc_now)
    webhooks = WebhookDeliveryService(
        webhook_store,
        HttpWebhookSender.build(),
        delay_queue,
        dlq,
        utc_now,
        resolver=system_resolver,
        allow_loopback=settings.webhook_allow_http_loopback,
    )
    # Digests (docs/WORKER.md#digests): rules beside the templates, read as the throttle rules are; buckets beside
    # the jobs they collect.
    digests = DigestService(
        DynamoDigestStore(dynamodb, settings.notifications_table),
        DynamoDigestRules(dynamodb, settings.templates_table, cache_seconds=settings.preferences_cache_seconds),
        delay_queue,
        users,
        utc_now,
        webhooks=emitter,
    )
    delivery = DeliveryService(
        store=store,
        templates=DynamoTemplateStore(dynamodb, settings.templates_table),
        users=users,
        delay_queue=delay_queue,
        dlq=dlq,
        clock=utc_now,
        # One sender per channel (notify.services.channels): a new channel is one more line here.
        senders={
            Channel.EMAIL: EmailChannel(email),
            Channel.PUSH: PushChannel(SnsPushSender(boto3.client("sns", config=pool.merge(SEND_CONFIG)))),
            Channel.WEBSOCKET: InAppChannel(inbox),
        },
        unsubscribe=(
            UnsubscribeLinks(SsmSecret(settings.unsubscribe_keys_parameter), settings.public_api_url)
            if settings.public_api_url and settings.unsubscribe_keys_parameter
            else None
        ),
        # Short links ({{ url | short }}): codes derived under their own key list, stored before the message goes out.
        links=(
            ShortLinks(SsmSecret(settings.short_link_keys_parameter), settings.short_link_base)
            if settings.short_link_base and settings.short_link_keys_parameter
            else None
        ),
        link_store=DynamoLinkStore(dynamodb, settings.links_table) if settings.links_table else None,
        # Opt-outs, quiet hours, suppressions: one read per user and PREFERENCES_CACHE_SECONDS (docs/PREFERENCES.md).
        preferences=DynamoPreferenceStore(
            dynamodb, settings.notifications_table, cache_seconds=settings.preferences_cache_seconds
        ),
        # Throttle rules (beside the templates): one Query per PREFERENCES_CACHE_SECONDS; the counters are on the
        # user's preferences item (docs/WORKER.md#throttles).
        throttles=DynamoThrottleRules(
            dynamodb, settings.templates_table, cache_seconds=settings.preferences_cache_seconds
        ),
        digests=digests,
        webhooks=emitter,
    )
    # Each record is sorted first: a job goes to delivery, a segment's page to fan-out, a due digest to the digest
    # step (its job then to delivery), a webhook's message to its POST, anything else to the DLQ.
    triage = Triage(delivery, dlq, utc_now, fanout, digests, webhooks)
    return Services(triage, ThreadPoolExecutor(max_workers=settings.worker_concurrency))


@cache
def services() -> Services:
    return build_services(load(WorkerSettings))


# SnapStart (template.yaml): the snapshot holds the built services; each restored environment builds its own.
snapstart.register(services)


def _deliver(raw: str | bytes, source: str) -> Result:
    result = services().triage.handle_raw(raw, source)
    job = result.job
    channel = job.channel.value if job else "unknown"
    with single_metric(name=result.outcome.value, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as m:
        m.add_dimension(name="channel", value=channel)
    if job is not None and result.outcome is Outcome.SENT:
        latency = (utc_now() - job.created_at).total_seconds() * 1000
        metrics.add_metric(name="EndToEndLatency", unit=MetricUnit.Milliseconds, value=latency)
    logger.info(
        "job handled",
        extra={
            "outcome": result.outcome.value,
            "source": source,
            "job_id": job and job.job_id,
            "event_id": job and job.event_id,
            "channel": channel,
        },
    )
    return result


class ConcurrentBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor, with the records of one batch handled on the container's thread pool.

    ``outcomes`` counts the last batch's outcomes (``unrecorded`` for records reported back for a retry).
    """

    def __init__(self, event_type: EventType, pool: Callable[[], ThreadPoolExecutor]) -> None:
        super().__init__(event_type=event_type, raise_on_entire_batch_failure=False)
        self._pool = pool
        self.outcomes: dict[str, int] = {}

    def process(self) -> list[Any]:
        results = list(self._pool().map(self._process_record, self.records))
        self.outcomes = dict(Counter(r[1] if r[0] == "success" else "unrecorded" for r in results))
        logger.info("batch done", extra={"records": len(results), "outcomes": self.outcomes})
        return results


kafka_processor = ConcurrentBatchProcessor(EventType.Kafka, lambda: services().pool)
sqs_processor = ConcurrentBatchProcessor(EventType.SQS, lambda: services().pool)


def _kafka_record(record: KafkaEventRecord) -> str:
    """One Kafka record (``aws:kafka`` or ``SelfManagedKafka``): its value as raw bytes, whatever they are."""
    source = f"kafka:{record.topic}-{record.partition}@{record.offset}"
    try:
        raw = record.decoded_value if record.get("value") is not None else b""
    except (ValueError, TypeError) as exc:  # not base64: Lambda never does this, but a hand-made event may
        raw = str(record.get("value")).encode()
        services().triage.dead_letter_raw("undecodable_record", f"value is not base64: {exc}", raw, source)
        return Outcome.DEAD_LETTERED.value
    return _deliver(raw, source).outcome.value


def _sqs_record(record: SQSRecord) -> str:
    """One SQS message (the delay queue's, or Transport sqs's jobs queue's): a letter names its queue and message,
    as a Kafka record's names its coordinates, so two poison messages are two letters an operator can tell apart."""
    queue = (record.event_source_arn or "").rsplit(":", 1)[-1] or "unknown"
    return _deliver(record.body, f"sqs:{queue}@{record.message_id}").outcome.value


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    # Only a record whose outcome could not be recorded is reported back, alone; every other one has ended in
    # a status or the DLQ. The Kafka event sources retry a reported record a bounded number of times.
    if event.get("eventSource") in ("aws:kafka", "SelfManagedKafka"):
        return process_partial_response(
            event=event, record_handler=_kafka_record, processor=kafka_processor, context=context
        )
    return process_partial_response(event=event, record_handler=_sqs_record, processor=sqs_processor, context=context)

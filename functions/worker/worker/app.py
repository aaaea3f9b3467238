"""WorkerFunction: delivers jobs from the MSK topic and from the SQS delay queue."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import KafkaMskEventModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from notify.adapters.auth import HttpUserDirectory
from notify.adapters.campaigns import DynamoSegmentStore
from notify.adapters.dynamo import DynamoStatusStore, DynamoTemplateStore
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.ses import SesEmailSender
from notify.adapters.sns import SnsPushSender
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue
from notify.clock import utc_now
from notify.delivery import DeliveryService, DeliverySettings, Outcome, Result
from notify.errors import StoreUnavailable
from notify.fanout import FanoutService
from notify.segments import CompositeSegmentSource
from notify.settings import WorkerSettings, load

logger = Logger()
tracer = Tracer()
metrics = Metrics()
sqs_processor = BatchProcessor(event_type=EventType.SQS)


@dataclass(frozen=True)
class Services:
    delivery: DeliveryService
    pool: ThreadPoolExecutor


def build_services(settings: WorkerSettings) -> Services:
    """The composition root: every client is built here, once per container."""
    # One pooled connection per delivery thread (botocore's default pool is 10).
    pool = Config(max_pool_connections=settings.worker_concurrency + 4)
    # The adapters build every request themselves: skip botocore's client-side validation of each attribute.
    dynamodb = boto3.client("dynamodb", config=pool.merge(Config(parameter_validation=False)))
    sqs = boto3.client("sqs", config=pool)
    store = DynamoStatusStore(dynamodb, settings.notifications_table)
    users = HttpUserDirectory.build(settings.auth_api_url, settings.auth_api_token)
    delay_queue = SqsDelayQueue(sqs, settings.delay_queue_url)
    dlq = SqsDeadLetterQueue(sqs, settings.dlq_url)
    publisher = KafkaJobPublisher(KafkaConfig.from_settings(settings))
    fanout = FanoutService(
        store,
        CompositeSegmentSource(DynamoSegmentStore(dynamodb, settings.campaigns_table), users),
        publisher,
        delay_queue,
        dlq,
        utc_now,
        settings.fanout_page_size,
    )
    delivery = DeliveryService(
        store=store,
        templates=DynamoTemplateStore(dynamodb, settings.templates_table),
        users=users,
        delay_queue=delay_queue,
        dlq=dlq,
        clock=utc_now,
        email=SesEmailSender(boto3.client("sesv2", config=pool), settings.sender_email),
        push=SnsPushSender(boto3.client("sns", config=pool)),
        settings=DeliverySettings(unsubscribe_url=settings.unsubscribe_url),
        fanout=fanout,
    )
    return Services(delivery, ThreadPoolExecutor(max_workers=settings.worker_concurrency))


@cache
def services() -> Services:
    return build_services(load(WorkerSettings))


def _deliver(raw: str | bytes, source: str) -> Result:
    result = services().delivery.handle_raw(raw, source)
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


@tracer.capture_method
def handle_kafka(event: dict[str, Any]) -> dict[str, Any]:
    """Deliver an MSK batch concurrently. Raises only if an outcome could not be recorded, so the batch is retried."""
    batch = parse(event=event, model=KafkaMskEventModel)
    # The parser model has already base64-decoded each value.
    values = [str(record.value) for records in batch.records.values() for record in records]
    futures = [services().pool.submit(_deliver, value, "kafka") for value in values]
    counts: dict[str, int] = {}
    lost: list[str] = []
    for future in futures:
        try:
            outcome = future.result().outcome
        except StoreUnavailable as exc:
            lost.append(str(exc))
            continue
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    logger.info("kafka batch done", extra={"records": len(values), "outcomes": counts, "unrecorded": len(lost)})
    if lost:
        raise StoreUnavailable("outcomes could not be recorded; the batch will be retried", lost)
    return {"records": len(values), "outcomes": counts}


def _sqs_record(record: SQSRecord) -> None:
    _deliver(record.body, "sqs")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if event.get("eventSource") in ("aws:kafka", "SelfManagedKafka"):
        return handle_kafka(event)
    return process_partial_response(event=event, record_handler=_sqs_record, processor=sqs_processor, context=context)

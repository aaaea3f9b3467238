"""SchedulerFunction: the one-minute EventBridge tick that fires due campaigns."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from notify.adapters.dynamodb.campaigns import DynamoCampaignStore
from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.kafka import KafkaConfig, guarded_publisher
from notify.adapters.sqs import SqsDelayQueue
from notify.clock import utc_now
from notify.services.campaigns import CampaignScheduler, IngestTrigger
from notify.services.ingest import IngestService
from notify.settings import SchedulerSettings, load

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def build_scheduler(settings: SchedulerSettings) -> CampaignScheduler:
    """The composition root: every client is built here, once per container."""
    dynamodb = boto3.client("dynamodb")
    publisher = guarded_publisher(KafkaConfig.from_settings(settings))
    ingest = IngestService(
        DynamoEventLog(dynamodb, settings.notifications_table),
        publisher,
        SqsDelayQueue(boto3.client("sqs"), settings.delay_queue_url),
        utc_now,
    )
    return CampaignScheduler(DynamoCampaignStore(dynamodb, settings.campaigns_table), IngestTrigger(ingest), utc_now)


@cache
def services() -> CampaignScheduler:
    return build_scheduler(load(SchedulerSettings))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    result = services().tick()
    metrics.add_metric(name="CampaignRunsFired", unit=MetricUnit.Count, value=len(result.fired))
    logger.info("scheduler tick", extra={"scheduled_for": event.time.isoformat(), **result.__dict__})
    return {"tick": event.time.isoformat(), **result.__dict__}

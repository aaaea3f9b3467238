"""SchedulerFunction: the one-minute EventBridge tick that fires due campaigns and queues the digests due within the
next minute whose windows were too long for the delay queue (notify.services.digests.DigestSweep)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from notify.adapters.dynamodb.campaigns import DynamoCampaignStore
from notify.adapters.dynamodb.digests import DynamoDigestStore
from notify.adapters.dynamodb.events import DynamoEventLog
from notify.adapters.sqs import SqsDelayQueue
from notify.adapters.transport import publisher_for
from notify.clock import utc_now
from notify.services.campaigns import CampaignScheduler, IngestTrigger
from notify.services.digests import DigestSweep
from notify.services.ingest import IngestService
from notify.settings import SchedulerSettings, load

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@dataclass(frozen=True)
class Services:
    """What a tick runs: the campaigns' scheduler and the digests' sweep."""

    campaigns: CampaignScheduler
    digests: DigestSweep


def build_scheduler(settings: SchedulerSettings) -> Services:
    """The composition root: every client is built here, once per container."""
    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    publisher = publisher_for(settings, sqs)  # the Kafka topic or the SQS jobs queue (TRANSPORT)
    delay_queue = SqsDelayQueue(sqs, settings.delay_queue_url)
    ingest = IngestService(DynamoEventLog(dynamodb, settings.notifications_table), publisher, delay_queue, utc_now)
    campaigns = CampaignScheduler(
        DynamoCampaignStore(dynamodb, settings.campaigns_table), IngestTrigger(ingest), utc_now
    )
    return Services(
        campaigns, DigestSweep(DynamoDigestStore(dynamodb, settings.notifications_table), delay_queue, utc_now)
    )


@cache
def services() -> Services:
    return build_scheduler(load(SchedulerSettings))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    result = services().campaigns.tick()
    metrics.add_metric(name="CampaignRunsFired", unit=MetricUnit.Count, value=len(result.fired))
    # After the campaigns: a sweep that fails (DynamoDB or SQS away) fails the tick, and the next makes it up.
    digests = services().digests.sweep()
    metrics.add_metric(name="DigestFlushesQueued", unit=MetricUnit.Count, value=digests)
    logger.info(
        "scheduler tick",
        extra={"scheduled_for": event.time.isoformat(), "digests_queued": digests, **result.__dict__},
    )
    return {"tick": event.time.isoformat(), "digests_queued": digests, **result.__dict__}

"""FeedbackFunction: SES's events for the emails the worker sent (delivery, bounce, complaint…), from SNS.

SES publishes every event of a send made through the configuration set to an SNS topic; each SNS record's message
is one event in AWS's documented event-publishing format. ``notify.services.feedback`` applies it to the job once.
A message that is not an SES event is logged and dropped (a retry would not change it); a store that cannot be
reached, or an event about a send its job has not recorded yet (``FeedbackEarly``), raises, so Lambda retries the
invocation and, after its retries, sends it to the DLQ.

A change of status (delivered, bounced, complained) and a first open or click become status webhook messages on the
delay queue (issue 24) for the endpoints that subscribe to them; a queue that refuses them raises too, and the
retry emits them again under the same ids.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from notify.adapters.dynamodb.jobs import DynamoJobLedger
from notify.adapters.dynamodb.preferences import DynamoPreferenceStore
from notify.adapters.dynamodb.webhooks import DynamoWebhookStore
from notify.adapters.sqs import SqsDelayQueue
from notify.clock import utc_now
from notify.services.feedback import FeedbackService
from notify.services.webhook_emitter import WebhookEmitter
from notify.settings import FeedbackSettings, load

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def build_service(settings: FeedbackSettings) -> FeedbackService:
    """The composition root: every client is built here, once per container."""
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    # Status webhooks: the endpoints (TemplatesTable's WEBHOOK partition) read once per 30 s per container, the
    # messages queued on the delay queue for the worker to post.
    webhooks = WebhookEmitter(
        DynamoWebhookStore(
            dynamodb,
            settings.templates_table,
            settings.notifications_table,
            cache_seconds=settings.webhook_cache_seconds,
        ),
        SqsDelayQueue(boto3.client("sqs"), settings.delay_queue_url),
        utc_now,
    )
    return FeedbackService(
        DynamoJobLedger(dynamodb, settings.notifications_table),
        DynamoPreferenceStore(dynamodb, settings.notifications_table, cache_seconds=0),
        utc_now,
        webhooks,
    )


@cache
def services() -> FeedbackService:
    return build_service(load(FeedbackSettings))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for record in event.records:
        try:
            data = json.loads(record.sns.message)
            outcome = services().apply(data if isinstance(data, dict) else {}).value
        except (ValueError, RecursionError) as exc:  # not JSON (or nested past any sense), or not an SES event
            logger.warning("dropped an SNS message that is not an SES event", extra={"error": str(exc)})
            outcome = "not_ses"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        metrics.add_metric(name=f"Feedback_{outcome}", unit=MetricUnit.Count, value=1)
    logger.info("feedback applied", extra={"outcomes": outcomes})
    return {"outcomes": outcomes}

"""SchedulerFunction: the one-minute EventBridge tick that fires due campaigns."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from notify.settings import SchedulerSettings, load

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def settings() -> SchedulerSettings:
    return load(SchedulerSettings)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def lambda_handler(event: EventBridgeModel, context: LambdaContext) -> dict[str, Any]:
    settings()
    logger.info("scheduler tick", extra={"scheduled_for": event.time.isoformat()})
    return {"tick": event.time.isoformat(), "fired": []}

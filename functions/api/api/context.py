"""The API's composition root: clients and services, built once per container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.config import Config
from notify.access import authorize
from notify.adapters.campaigns import DynamoCampaignStore, DynamoSegmentStore
from notify.adapters.dynamo import DynamoApiKeyStore, DynamoStatusStore, DynamoTemplateStore
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue
from notify.campaigns import CampaignService
from notify.clock import utc_now
from notify.dlq import DeadLetterService
from notify.ingest import IngestService
from notify.models import EventRequest
from notify.settings import ApiSettings, load
from notify.status import StatusQueries
from notify.templates import TemplateService


@dataclass(frozen=True)
class Services:
    ingest: IngestService
    status: StatusQueries
    keys: DynamoApiKeyStore
    templates: TemplateService
    dlq: DeadLetterService
    campaigns: CampaignService
    segments: DynamoSegmentStore
    idempotency: IdempotencyConfig
    accept_once: Callable[..., dict[str, Any]]


def build_services(settings: ApiSettings) -> Services:
    """Build every client and service from ``settings``."""
    # The adapters build every request themselves; skipping botocore's client-side validation of
    # each attribute saves about a third of the CPU of a batch write.
    dynamodb = boto3.client("dynamodb", config=Config(parameter_validation=False))
    store = DynamoStatusStore(dynamodb, settings.notifications_table)
    publisher = KafkaJobPublisher(KafkaConfig.from_settings(settings))
    sqs = boto3.client("sqs")
    fallback = SqsDelayQueue(sqs, settings.delay_queue_url)
    ingest = IngestService(store, publisher, fallback, utc_now)
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto3_client=dynamodb)
    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=24 * 3600,
    )
    return Services(
        ingest=ingest,
        status=StatusQueries(store),
        keys=DynamoApiKeyStore(dynamodb, settings.api_keys_table),
        templates=TemplateService(DynamoTemplateStore(dynamodb, settings.templates_table, cache_seconds=0), utc_now),
        dlq=DeadLetterService(SqsDeadLetterQueue(sqs, settings.dlq_url), store, fallback, utc_now),
        campaigns=CampaignService(DynamoCampaignStore(dynamodb, settings.campaigns_table), utc_now),
        segments=DynamoSegmentStore(dynamodb, settings.campaigns_table),
        idempotency=config,
        accept_once=_idempotent_accept(ingest, persistence, config),
    )


def _idempotent_accept(
    ingest: IngestService, persistence: DynamoDBPersistenceLayer, config: IdempotencyConfig
) -> Callable[..., dict[str, Any]]:
    """``accept`` keyed by the caller's Idempotency-Key; the body must match the first use."""

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def accept_once(request: dict[str, Any]) -> dict[str, Any]:
        return ingest.accept(EventRequest.model_validate(request["body"])).model_dump(mode="json")

    return accept_once


@cache
def services() -> Services:
    """The container's services, built on first use."""
    return build_services(load(ApiSettings))


def require(router: Router, scope: str) -> None:
    """Authorize the current request's X-API-Key for ``scope`` (401/403 otherwise)."""
    authorize(services().keys, router.current_event.headers.get("x-api-key"), scope)

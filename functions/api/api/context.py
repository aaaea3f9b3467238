"""The API's composition root: clients and services, built once per container."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Optional

import boto3
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError
from botocore.config import Config
from notify.access import authorize
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.campaigns import DynamoCampaignStore
from notify.adapters.dynamodb.cursors import CursorCodec
from notify.adapters.dynamodb.segments import DynamoSegmentStore
from notify.adapters.dynamodb.status import DynamoStatusStore
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.adapters.secrets import SsmSecret
from notify.adapters.sqs import SqsDeadLetterQueue, SqsDelayQueue
from notify.campaigns import CampaignService
from notify.clock import utc_now
from notify.dlq import DeadLetterService
from notify.errors import Conflict
from notify.ingest import IngestService
from notify.jobs import keyed_event_id
from notify.models import AcceptedEvent, EventRequest
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
    # Page cursors are signed with the service's key (SSM, cached), so a forged or altered one is a 422.
    cursors = CursorCodec(SsmSecret(settings.signing_key_parameter))
    store = DynamoStatusStore(dynamodb, settings.notifications_table, cursors)
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
        campaigns=CampaignService(DynamoCampaignStore(dynamodb, settings.campaigns_table, cursors), utc_now),
        segments=DynamoSegmentStore(dynamodb, settings.campaigns_table),
        idempotency=config,
        accept_once=_idempotent_accept(ingest, persistence, config),
    )


def _idempotent_accept(
    ingest: IngestService, persistence: DynamoDBPersistenceLayer, config: IdempotencyConfig
) -> Callable[..., dict[str, Any]]:
    """``accept`` keyed by ``request["key"]``, under the event id ``request["event_id"]``.

    The body must match the first use. Powertools drops the record when ``accept`` raises (a 503), so
    the event id does not come from the record: it is the client's own or derived from the key and
    body, and a retry after a 503 or a timeout publishes the same job ids again.
    """

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def accept_once(request: dict[str, Any]) -> dict[str, Any]:
        event = EventRequest.model_validate(request["body"])
        return ingest.accept(event, request["event_id"]).model_dump(mode="json")

    return accept_once


def accept_retryable(
    event: EventRequest, caller: str, idempotency_key: Optional[str], lambda_context: Any
) -> AcceptedEvent:
    """Accept an event that carries an Idempotency-Key or its own ``event_id``: a retry never sends twice.

    The event id is fixed before anything is published: the client's ``event_id``, or one derived from
    the caller, the key and the body. So a retry after a timeout or a 503 (when Powertools has dropped
    the key's record) publishes the same job ids, and the worker's claim on each drops the second copy.
    Without a key, the ``event_id`` itself is the idempotency key: another body with it is a 409.
    """
    svc = services()
    svc.idempotency.register_lambda_context(lambda_context)
    body = event.model_dump(mode="json")
    if idempotency_key:
        key = f"{caller}:{idempotency_key}"
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        event_id = event.event_id or keyed_event_id(caller, idempotency_key, hashlib.sha256(canonical).hexdigest())
    else:
        assert event.event_id is not None
        key, event_id = f"event:{event.event_id}", event.event_id
    try:
        data = svc.accept_once(request={"key": key, "body": body, "event_id": event_id})
    except IdempotencyValidationError:
        if idempotency_key:
            raise
        raise Conflict(f"event_id {event_id} was already used with a different body") from None
    return AcceptedEvent.model_validate(data)


@cache
def services() -> Services:
    """The container's services, built on first use."""
    return build_services(load(ApiSettings))


def require(router: Router, scope: str) -> None:
    """Authorize the current request's X-API-Key for ``scope`` (401/403 otherwise)."""
    authorize(services().keys, router.current_event.headers.get("x-api-key"), scope)

"""The jobs' transport (``TRANSPORT``): which :class:`~notify.ports.JobPublisher` the functions publish through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from notify.adapters.kafka import KafkaConfig, guarded_publisher
from notify.adapters.sqs import SqsJobPublisher
from notify.ports import JobPublisher
from notify.settings import KafkaSettings

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def publisher_for(settings: KafkaSettings, sqs: SQSClient) -> JobPublisher:
    """The API's, the scheduler's and fan-out's publisher, built once per container: with ``TRANSPORT`` kafka the
    topic behind its circuit breaker (:func:`~notify.adapters.kafka.guarded_publisher`), with sqs the jobs queue
    through ``sqs``, the container's SQS client. Either raises TransientError when the jobs are not all taken, so
    :func:`~notify.services.ingest.publish_durably` parks them in the delay queue."""
    if settings.transport == "sqs":
        assert settings.jobs_queue_url is not None  # KafkaSettings requires it with sqs
        return SqsJobPublisher(sqs, settings.jobs_queue_url)
    return guarded_publisher(KafkaConfig.from_settings(settings))

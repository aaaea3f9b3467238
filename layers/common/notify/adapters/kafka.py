"""Kafka (MSK) job publisher: idempotent producer, acks=all, key = user_id."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from notify.errors import TransientError
from notify.models import FanoutTask, Message, NotificationJob
from notify.settings import KafkaSettings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from kafka import KafkaProducer

# kafka-python is imported on first use: it loads its whole admin client on import,
# which would add ~50 ms to every cold start, including requests that never publish.


@dataclass(frozen=True)
class KafkaConfig:
    """How to reach the jobs topic: brokers, topic, the time one publish may take, and authentication."""

    bootstrap_servers: str
    topic: str
    timeout_seconds: float = 5.0
    auth: str = "none"  # "none" (PLAINTEXT), "tls", or "iam" (MSK IAM over SASL_SSL)
    region: Optional[str] = None
    api_version: tuple[int, ...] = (2, 8, 0)

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> KafkaConfig:
        """The config a function's ``KAFKA_*`` variables (and ``AWS_REGION``, for MSK IAM) describe."""
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            timeout_seconds=settings.kafka_timeout_seconds,
            auth=settings.kafka_auth,
            region=settings.region,
        )

    def client_options(self) -> dict[str, Any]:
        """Connection options shared by producers and consumers."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "api_version": self.api_version,  # no version probe: no 30 s hang when the broker is down
            "request_timeout_ms": int(self.timeout_seconds * 1000),
        }
        if self.auth == "tls":
            options["security_protocol"] = "SSL"
        elif self.auth == "iam":
            options.update(
                security_protocol="SASL_SSL",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=_msk_token_provider(self.region or ""),
            )
        return options


def _msk_token_provider(region: str) -> Any:
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
        def token(self) -> str:
            token, _expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
            return str(token)

    return MskIamTokenProvider()


class KafkaJobPublisher:
    """Publishes jobs and waits for every acknowledgement, within a bounded time.

    The producer is created on first use and kept for the container's life;
    if the broker cannot be reached it raises :class:`TransientError` and tries
    again to connect on the next call.
    """

    def __init__(self, config: KafkaConfig, producer: Optional[KafkaProducer] = None) -> None:
        self._config = config
        self._producer = producer
        self._lock = threading.Lock()

    def _get_producer(self) -> KafkaProducer:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        with self._lock:
            if self._producer is None:
                timeout_ms = int(self._config.timeout_seconds * 1000)
                try:
                    self._producer = KafkaProducer(
                        **self._config.client_options(),
                        acks="all",
                        enable_idempotence=True,
                        linger_ms=2,
                        max_block_ms=timeout_ms,
                        delivery_timeout_ms=max(timeout_ms, 1000) + 2000,
                        retry_backoff_ms=100,
                        compression_type=None,
                    )
                except KafkaError as exc:
                    raise TransientError(f"Kafka unreachable: {exc!r}") from exc
            return self._producer

    def publish(self, jobs: Sequence[Message]) -> None:
        """``send`` every message (key: the user id for a job, the event id for a fan-out task; headers ``kind`` and
        ``schema_version``), then ``flush`` and wait for each acknowledgement, all within ``timeout_seconds``.

        A KafkaError (an acknowledgement that timed out included) is TransientError, and the producer is closed and
        dropped, so the next call connects afresh.
        """
        from kafka.errors import KafkaError

        producer = self._get_producer()
        deadline = time.monotonic() + self._config.timeout_seconds
        try:
            futures = [
                producer.send(
                    self._config.topic,
                    key=_key(job).encode(),
                    value=job.model_dump_json(exclude_none=True).encode(),
                    headers=[("kind", _kind(job)), ("schema_version", str(job.schema_version).encode())],
                )
                for job in jobs
            ]
            producer.flush(timeout=max(0.1, deadline - time.monotonic()))
            for future in futures:
                future.get(timeout=max(0.1, deadline - time.monotonic()))
        except KafkaError as exc:
            # A producer that failed (a broker restart, a lost leader) may keep failing or crawling on its stale
            # connections and batches: the next call starts a fresh one.
            self._discard(producer)
            raise TransientError(f"Kafka did not acknowledge the jobs: {exc!r}") from exc

    def _discard(self, producer: KafkaProducer) -> None:
        with self._lock:
            if self._producer is producer:
                self._producer = None
        try:
            producer.close(timeout=0)
        except Exception:  # noqa: BLE001 - it is being dropped; its unsent batches fail their own futures
            log.debug("closing a failed Kafka producer raised", exc_info=True)

    def close(self) -> None:
        """Close the producer if one was made (waiting up to 1 s for unsent batches); a later publish makes another."""
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=1)
                self._producer = None


def _key(message: Message) -> str:
    """Jobs are keyed by user (one user's jobs stay ordered); fan-out tasks by event."""
    return message.user_id if isinstance(message, NotificationJob) else message.event_id


def _kind(message: Message) -> bytes:
    return b"fanout" if isinstance(message, FanoutTask) else b"job"

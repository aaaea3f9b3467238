"""Kafka (MSK or self-managed) job publisher: idempotent producer, acks=all, key = user_id; TLS, SASL/SCRAM,
mTLS and MSK IAM authentication."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from notify.adapters.secrets import SecretsManagerJson
from notify.errors import TransientError
from notify.models import DigestFlushTask, FanoutTask, Message, NotificationJob
from notify.publish_circuit import CircuitPublisher
from notify.settings import KAFKA_SECRET_AUTHS, KafkaSettings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from kafka import KafkaProducer

# kafka-python is imported on first use: it loads its whole admin client on import,
# which would add ~50 ms to every cold start, including requests that never publish.


@dataclass(frozen=True)
class KafkaConfig:
    """How to reach the jobs topic: brokers, topic, the time one publish may take, and authentication.

    ``auth`` is ``KafkaSettings.kafka_auth``; for scram-sha-256, scram-sha-512 and mtls the credentials are in
    the Secrets Manager secret ``secret_arn``, and ``root_ca_secret_arn`` holds a private CA the brokers'
    certificates are signed by: the secrets and formats of the worker's event source mapping
    (docs/DEPLOY.md#kafka-authentication).
    """

    bootstrap_servers: str
    topic: str
    timeout_seconds: float = 5.0
    auth: str = "none"  # none (PLAINTEXT), tls, iam (MSK IAM), scram-sha-256, scram-sha-512 or mtls
    region: Optional[str] = None
    api_version: tuple[int, ...] = (2, 8, 0)
    secret_arn: Optional[str] = None
    root_ca_secret_arn: Optional[str] = None

    @classmethod
    def from_settings(cls, settings: KafkaSettings) -> KafkaConfig:
        """The config a function's ``KAFKA_*`` variables (and ``AWS_REGION``, for MSK IAM) describe; ValueError with
        ``TRANSPORT`` sqs, which configures no brokers or topic."""
        if settings.kafka_bootstrap_servers is None or settings.kafka_topic is None:
            raise ValueError(f"TRANSPORT {settings.transport} configures no Kafka brokers or topic")
        return cls(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            timeout_seconds=settings.kafka_timeout_seconds,
            auth=settings.kafka_auth,
            region=settings.region,
            secret_arn=settings.kafka_secret_arn,
            root_ca_secret_arn=settings.kafka_root_ca_secret_arn,
        )

    def client_options(self, secrets: Optional[Callable[[str], Mapping[str, Any]]] = None) -> dict[str, Any]:
        """Connection options shared by producers and consumers.

        ``secrets`` reads a secret's fields by ARN (Secrets Manager through Powertools' cache when not given);
        it is called only when the authentication has a secret.
        """
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "api_version": self.api_version,  # no version probe: no 30 s hang when the broker is down
            "request_timeout_ms": int(self.timeout_seconds * 1000),
        }
        if self.auth == "iam":
            options.update(
                security_protocol="SASL_SSL",
                sasl_mechanism="OAUTHBEARER",
                sasl_oauth_token_provider=_msk_token_provider(self.region or ""),
            )
            return options
        if self.auth == "none":
            return options
        credentials = root_ca = None
        if self.secret_arn or self.root_ca_secret_arn:
            read = secrets or _secrets_manager()
            credentials = read(self.secret_arn) if self.secret_arn else None
            root_ca = read(self.root_ca_secret_arn) if self.root_ca_secret_arn else None
        options.update(auth_options(self.auth, credentials, root_ca, self.secret_arn or ""))
        return options


# SourceAccessConfigurations Type -> the KafkaAuth it stands for (the local event source mapping reads these).
SOURCE_ACCESS_AUTH = {
    "SASL_SCRAM_256_AUTH": "scram-sha-256",
    "SASL_SCRAM_512_AUTH": "scram-sha-512",
    "CLIENT_CERTIFICATE_TLS_AUTH": "mtls",
}


def auth_options(
    auth: str,
    credentials: Optional[Mapping[str, Any]],
    root_ca: Optional[Mapping[str, Any]],
    secret_name: str = "the Kafka secret",
) -> dict[str, Any]:
    """kafka-python's options for ``auth`` (tls, scram-sha-256, scram-sha-512 or mtls) with the fields of its
    secret and of the root CA's, as Lambda reads them: SCRAM ``{"username", "password"}``; mTLS
    ``{"certificate", "privateKey"[, "privateKeyPassword"]}`` in PEM, the certificate field holding the client's
    certificate first, then its chain; root CA ``{"certificate"}``, the brokers' CA chain in PEM.

    Every TLS connection verifies the brokers' certificates and host names, against the root CA if there is one
    and the system's trust store otherwise. A missing field is a TransientError naming the field, never a value.
    """
    ca = _field(root_ca, "certificate", "the Kafka root CA secret") if root_ca is not None else None
    if auth == "tls":
        return {"security_protocol": "SSL", **({"ssl_context": _tls_context(ca, None, None, None)} if ca else {})}
    if auth in ("scram-sha-256", "scram-sha-512"):
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": auth.upper(),
            "sasl_plain_username": _field(credentials, "username", secret_name),
            "sasl_plain_password": _field(credentials, "password", secret_name),
            **({"ssl_context": _tls_context(ca, None, None, None)} if ca else {}),
        }
    if auth == "mtls":
        certificate = _field(credentials, "certificate", secret_name)
        key = _field(credentials, "privateKey", secret_name)
        password = (credentials or {}).get("privateKeyPassword") or None
        return {"security_protocol": "SSL", "ssl_context": _tls_context(ca, certificate, key, password)}
    raise ValueError(f"no authentication options for KafkaAuth {auth!r}")


def _field(secret: Optional[Mapping[str, Any]], name: str, secret_name: str) -> str:
    value = (secret or {}).get(name)
    if not isinstance(value, str) or not value:
        raise TransientError(f"{secret_name} has no {name!r} field")
    return value


@functools.lru_cache(maxsize=4)
def _tls_context(
    ca: Optional[str], certificate: Optional[str], private_key: Optional[str], password: Optional[str]
) -> ssl.SSLContext:
    """A client TLS context verifying the brokers (against ``ca`` if given), with a client certificate if given.

    Python's ssl loads a certificate and key only from files: they are written once per container and content
    into a directory of their own under the temp dir (mode 0700, files 0600), loaded, and removed at once, so the
    key lives in this context only.
    """
    context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if certificate is not None and private_key is not None:
        directory = tempfile.mkdtemp(prefix="kafka-client-")  # 0700
        paths = [os.path.join(directory, name) for name in ("certificate.pem", "private-key.pem")]
        try:
            for path, content in zip(paths, (certificate, private_key), strict=True):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as file:
                    file.write(content)
            try:
                context.load_cert_chain(paths[0], paths[1], password=password)
            except (ssl.SSLError, ValueError) as exc:  # the reason only: never the key or its password
                raise TransientError(
                    f"the Kafka client certificate or key cannot be loaded: {exc.__class__.__name__}"
                ) from None
        finally:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            os.rmdir(directory)
    return context


def _msk_token_provider(region: str) -> Any:
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]
        def token(self) -> str:
            token, _expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
            return str(token)

    return MskIamTokenProvider()


@functools.cache
def _secrets_manager() -> SecretsManagerJson:
    """This container's Secrets Manager reader (its cache is the container's)."""
    return SecretsManagerJson()


class _LoginRefusals(logging.Handler):
    """The last login a broker refused: kafka-python logs it and retries until the publish times out, so what the
    caller sees is a timeout; this turns it into the refusal. Reads the exception logged, by type."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self._last: Optional[tuple[float, BaseException]] = None

    def emit(self, record: logging.LogRecord) -> None:
        from kafka.errors import SaslAuthenticationFailedError

        for arg in record.args if isinstance(record.args, tuple) else ():
            if isinstance(arg, SaslAuthenticationFailedError):
                self._last = (time.monotonic(), arg)

    def since(self, moment: float) -> Optional[BaseException]:
        """The last refusal logged after ``moment`` (``time.monotonic()``), if any."""
        last = self._last
        return last[1] if last is not None and last[0] >= moment else None


@functools.cache
def _login_refusals() -> _LoginRefusals:
    handler = _LoginRefusals()
    logging.getLogger("kafka").addHandler(handler)
    return handler


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
        with self._lock:
            if self._producer is None:
                self._producer = self._new_producer()
            return self._producer

    def _new_producer(self) -> KafkaProducer:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        if self._config.auth in KAFKA_SECRET_AUTHS:
            _login_refusals()  # installed before the first login
        timeout_ms = int(self._config.timeout_seconds * 1000)
        try:
            return KafkaProducer(
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

    def probe(self) -> None:
        """Whether the brokers answer: a new producer fetches the topic's metadata (its partitions), within
        ``timeout_seconds``, and publishes nothing; TransientError if it cannot.

        A new producer, because one that already holds the topic's metadata answers from it without asking a
        broker. When the probe succeeds and this publisher has no producer (a failed publish dropped it), the
        probe's becomes it, connected already; otherwise it is closed.
        """
        from kafka.errors import KafkaError

        started = time.monotonic()
        producer = self._new_producer()
        try:
            if not producer.partitions_for(self._config.topic):
                raise TransientError(f"Kafka knows no partition of {self._config.topic}")
        except (KafkaError, TransientError) as exc:
            self._close_quietly(producer)
            refused = _login_refusals().since(started) if self._config.auth in KAFKA_SECRET_AUTHS else None
            if refused is not None:
                raise TransientError(f"Kafka refused the login (KAFKA_AUTH {self._config.auth}): {refused}") from exc
            raise TransientError(f"Kafka unreachable: {exc!r}") from exc
        with self._lock:
            if self._producer is None:
                self._producer = producer
                return
        self._close_quietly(producer)

    def publish(self, jobs: Sequence[Message]) -> None:
        """``send`` every message (key: the user id for a job, the event id for a fan-out task; headers ``kind`` and
        ``schema_version``), then ``flush`` and wait for each acknowledgement, all within ``timeout_seconds``.

        A KafkaError (an acknowledgement that timed out included) is TransientError, and the producer is closed and
        dropped, so the next call connects afresh.
        """
        from kafka.errors import KafkaError

        started = time.monotonic()
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
            refused = _login_refusals().since(started) if self._config.auth in KAFKA_SECRET_AUTHS else None
            if refused is not None:  # what timed out was a login the broker refused, not the broker
                raise TransientError(f"Kafka refused the login (KAFKA_AUTH {self._config.auth}): {refused}") from exc
            raise TransientError(f"Kafka did not acknowledge the jobs: {exc!r}") from exc

    def _discard(self, producer: KafkaProducer) -> None:
        with self._lock:
            if self._producer is producer:
                self._producer = None
        self._close_quietly(producer)

    @staticmethod
    def _close_quietly(producer: KafkaProducer) -> None:
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


# While the circuit is open, a publish starts a probe when the last one is this old (docs/ARCHITECTURE.md).
PROBE_SECONDS = 5.0


def guarded_publisher(config: KafkaConfig, probe_every: float = PROBE_SECONDS) -> CircuitPublisher:
    """The functions' job publisher: a :class:`KafkaJobPublisher` behind a circuit breaker, so that while Kafka
    is down a publish fails at once (to the delay queue) instead of waiting ``timeout_seconds``; probed in the
    background with :meth:`KafkaJobPublisher.probe`. Each publish that did not reach Kafka adds its messages to
    the ``KafkaUnavailable`` metric."""
    kafka = KafkaJobPublisher(config)
    return CircuitPublisher(kafka, kafka.probe, name="Kafka", probe_every=probe_every, unavailable=_count_unavailable)


# The Powertools metric (namespace and service from POWERTOOLS_*) that KafkaUnavailableAlarm watches.
UNAVAILABLE_METRIC = "KafkaUnavailable"


def _count_unavailable(messages: int) -> None:
    """``KafkaUnavailable``: messages a publish could not put on Kafka (it failed, or the circuit was open)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    try:
        with single_metric(name=UNAVAILABLE_METRIC, unit=MetricUnit.Count, value=messages):
            pass
    except Exception:  # noqa: BLE001 - a metric never fails a publish (no namespace configured, say)
        log.debug("the KafkaUnavailable metric could not be written", exc_info=True)


def _key(message: Message) -> str:
    """Jobs are keyed by user (one user's jobs stay ordered); fan-out tasks by event; digest flushes and webhook
    messages (only the delay queue carries them) by bucket and by endpoint."""
    if isinstance(message, NotificationJob):
        return message.user_id
    if isinstance(message, FanoutTask):
        return message.event_id
    return message.group_key if isinstance(message, DigestFlushTask) else message.webhook_id


def _kind(message: Message) -> bytes:
    return message.kind_name().encode()

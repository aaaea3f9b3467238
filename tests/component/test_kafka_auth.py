"""Kafka authentication against real connections: the service's producer and the local event source mapping log in
with SASL/SCRAM (SHA-256, SHA-512) and mTLS from Secrets Manager secrets (moto server), in the formats Lambda's
event source reads, over TLS verified against a private root CA from its own secret.

The broker is Tansu behind :class:`KafkaFront` (tests/component/kafka_front.py): the Tansu in the wheel can neither
check a SCRAM login nor ask for a client certificate, so the front does what a secured listener does, with a CA
made here, and relays to Tansu, which advertises the front's address.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.errors import TransientError
from notify.settings import KafkaSettings, load

from local.cfn import KafkaSource
from local.infra import create_topic
from local.mappings import KafkaMapping, KafkaWiring, source_access
from local.processes import Process, free_port, tansu_process
from local.stack import LocalStack
from tests.certificates import TestCa

from .helpers import call_api, job_for, queue_bodies
from .kafka_front import KafkaFront, server_context

pytestmark = pytest.mark.usefixtures("local_stack")

USERS = {("SCRAM-SHA-256", "notify-256"): "pw-256-Xq", ("SCRAM-SHA-512", "notify-512"): "pw-512-Zr"}
EVENT = {
    "event_type": "user_registered",
    "payload": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
    "recipients": {"user_ids": ["demo-user-1"]},
}


@dataclasses.dataclass
class Broker:
    front: KafkaFront
    tansu: Process

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.front.port}"


@pytest.fixture(scope="module")
def ca() -> TestCa:
    return TestCa("notify test brokers' CA")


@pytest.fixture(scope="module")
def brokers(ca: TestCa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Broker]]:
    """Start a Tansu behind a front (TLS with ``ca``'s certificate, and SCRAM or client certificates)."""
    started: list[Broker] = []
    directory = tmp_path_factory.mktemp("kafka-auth")

    def start(**front: Any) -> Broker:
        port = free_port()
        tansu = tansu_process(log_path=directory / f"tansu-{port}.log", advertised_port=port)
        tansu.start()
        broker = Broker(
            KafkaFront(port, tansu.port, server_context(ca, directory, **front.pop("tls", {})), **front), tansu
        )
        started.append(broker)
        broker.front.start()
        return broker

    yield start
    for broker in started:
        broker.front.stop()
        broker.tansu.stop()


@pytest.fixture(scope="module")
def scram(brokers: Callable[..., Broker]) -> Broker:
    return brokers(scram_users=USERS)


@pytest.fixture(scope="module")
def mtls(brokers: Callable[..., Broker], ca: TestCa) -> Broker:
    return brokers(tls={"client_ca": ca})


def _secret(fields: dict[str, str]) -> str:
    """A secret in moto's Secrets Manager, as an operator makes it; its ARN."""
    client = boto3.client("secretsmanager")
    return str(client.create_secret(Name=f"test/kafka-{uuid.uuid4().hex}", SecretString=json.dumps(fields))["ARN"])


@pytest.fixture(scope="module")
def root_ca(ca: TestCa) -> str:
    return _secret({"certificate": ca.pem})


def _settings(broker: Broker, topic: str, auth: str, secret: str | None, root_ca: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_AUTH": auth,
        "KAFKA_SECRET_ARN": secret or "",
        "KAFKA_ROOT_CA_SECRET_ARN": root_ca,
    }


def _topic(broker: Broker, env: dict[str, str]) -> str:
    config = KafkaConfig.from_settings(load(KafkaSettings, env))
    options = {k: v for k, v in config.client_options().items() if k.startswith(("security_", "sasl_", "ssl_"))}
    create_topic(broker.bootstrap, env["KAFKA_TOPIC"], partitions=1, options=options)
    return env["KAFKA_TOPIC"]


class Recorder:
    """A stand-in worker: the job ids of every Kafka event it is invoked with."""

    name = "WorkerFunction"
    timeout = 30

    def __init__(self) -> None:
        self.job_ids: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.changed = threading.Condition()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self.changed:
            self.events.append(event)
            for records in event["records"].values():
                self.job_ids += [json.loads(base64.b64decode(r["value"]))["job_id"] for r in records]
            self.changed.notify_all()
        return {"batchItemFailures": []}

    def wait_for(self, job_ids: list[str], seconds: float = 60) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: set(job_ids) <= set(self.job_ids), timeout=seconds):
                raise AssertionError(f"the mapping delivered {self.job_ids}, not {job_ids}, in {seconds:.0f} s")


@pytest.mark.parametrize(("auth", "user"), [("scram-sha-256", "notify-256"), ("scram-sha-512", "notify-512")])
def test_the_api_publishes_and_the_mapping_reads_with_scram_from_secrets_manager(
    scram: Broker,
    root_ca: str,
    local_stack: LocalStack,
    monkeypatch: pytest.MonkeyPatch,
    fresh_services: None,
    auth: str,
    user: str,
) -> None:
    mechanism = auth.upper()
    secret = _secret({"username": user, "password": USERS[(mechanism, user)]})
    env = _settings(scram, f"jobs-{auth}-{uuid.uuid4().hex[:6]}", auth, secret, root_ca)
    _topic(scram, env)
    logins = scram.front.logins
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    status, accepted = call_api("POST", "/api/v1/events", EVENT)

    assert status == 202
    assert scram.front.logins > logins  # the API's producer logged in
    # The worker's event source as the template makes it for these parameters, reading the same secrets.
    parameters = {**local_stack.infra.parameters, "KafkaAuth": auth, "KafkaSecretArn": secret}  # type: ignore[union-attr]
    source = local_stack.template.kafka_source("WorkerFunction", {**parameters, "KafkaRootCaSecretArn": root_ca})
    assert dict(source.secrets) == {
        f"SASL_{mechanism.replace('-SHA-', '_')}_AUTH": secret,
        "SERVER_ROOT_CA_CERTIFICATE": root_ca,
    }
    source = dataclasses.replace(source, consumer_group=f"group-{uuid.uuid4().hex[:6]}")
    worker = Recorder()
    mapping = KafkaMapping(worker, KafkaWiring(source, scram.bootstrap, env["KAFKA_TOPIC"]))
    mapping.start()
    try:
        worker.wait_for(accepted["job_ids"])
    finally:
        mapping.stop()
    assert worker.events[0]["eventSource"] == "SelfManagedKafka"


def test_a_refused_scram_login_parks_the_jobs_in_the_delay_queue_and_says_why(
    scram: Broker,
    root_ca: str,
    stack_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    fresh_services: None,
    purge_queues: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = _secret({"username": "notify-256", "password": "not-the-password-9"})
    env = _settings(scram, f"jobs-refused-{uuid.uuid4().hex[:6]}", "scram-sha-256", secret, root_ca)
    refused = scram.front.refused
    for key, value in {**env, "KAFKA_TIMEOUT_SECONDS": "2"}.items():
        monkeypatch.setenv(key, value)

    with caplog.at_level(logging.WARNING):
        status, accepted = call_api("POST", "/api/v1/events", EVENT)

    assert status == 202  # as with Kafka down: stored durably, in the delay queue
    parked = queue_bodies(stack_env["DELAY_QUEUE_URL"], accepted["job_ids"], count=len(accepted["job_ids"]))
    assert [j["job_id"] for j in parked] == accepted["job_ids"]
    assert scram.front.refused > refused
    (warning,) = [r for r in caplog.records if r.name == "notify.services.ingest"]
    assert "Kafka refused the login (KAFKA_AUTH scram-sha-256)" in warning.getMessage()
    assert "SaslAuthenticationFailedError" in warning.getMessage()
    # Never the secret (botocore's DEBUG wire log, off in Lambda, shows every request's parameters).
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "not-the-password-9" in r.getMessage()]


def test_mtls_publishes_with_the_secrets_certificate_and_a_producer_without_one_is_refused(
    mtls: Broker, ca: TestCa, root_ca: str, local_stack: LocalStack
) -> None:
    client = ca.issue("notify-producer", server=False, password=b"key-pw-7")
    secret = _secret(
        {"certificate": client.certificate, "privateKey": client.private_key, "privateKeyPassword": "key-pw-7"}
    )
    env = _settings(mtls, f"jobs-mtls-{uuid.uuid4().hex[:6]}", "mtls", secret, root_ca)
    topic = _topic(mtls, env)
    publisher = KafkaJobPublisher(
        KafkaConfig.from_settings(load(KafkaSettings, {**env, "KAFKA_TIMEOUT_SECONDS": "10"}))
    )
    jobs = [job_for("u1", "password_reset")]
    publisher.publish(jobs)
    publisher.close()
    source = _worker_source(local_stack, "mtls", secret, root_ca)
    assert dict(source.secrets) == {"CLIENT_CERTIFICATE_TLS_AUTH": secret, "SERVER_ROOT_CA_CERTIFICATE": root_ca}
    assert source_access(source)["security_protocol"] == "SSL"
    worker = Recorder()
    mapping = KafkaMapping(worker, KafkaWiring(source, mtls.bootstrap, topic))
    mapping.start()
    try:
        worker.wait_for([j.job_id for j in jobs])
    finally:
        mapping.stop()

    # Without the client certificate (TLS and the root CA only), the front refuses the handshake.
    anonymous = _publisher({**env, "KAFKA_AUTH": "tls", "KAFKA_SECRET_ARN": "", "KAFKA_TIMEOUT_SECONDS": "2"})
    started = time.monotonic()
    with pytest.raises(TransientError):
        anonymous.publish(jobs)
    assert time.monotonic() - started < 10


def _publisher(env: dict[str, str]) -> KafkaJobPublisher:
    """The service's producer, as a function's settings build it."""
    return KafkaJobPublisher(KafkaConfig.from_settings(load(KafkaSettings, env)))


def _worker_source(local_stack: LocalStack, auth: str, secret: str, root_ca: str) -> KafkaSource:
    """The worker's Kafka event source as template.yaml makes it with these parameters, in a group of its own."""
    assert local_stack.infra is not None
    values = {
        **local_stack.infra.parameters,
        "KafkaAuth": auth,
        "KafkaSecretArn": secret,
        "KafkaRootCaSecretArn": root_ca,
    }
    source = local_stack.template.kafka_source("WorkerFunction", values)
    return dataclasses.replace(source, consumer_group=f"group-{uuid.uuid4().hex[:6]}")

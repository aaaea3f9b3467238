"""The jobs' transport (issue 25): TRANSPORT's settings."""

from __future__ import annotations

import pytest
from notify.adapters.kafka import KafkaConfig
from notify.settings import KafkaSettings, SchedulerSettings, SettingsError, load

STORES = {
    "NOTIFICATIONS_TABLE": "n",
    "TEMPLATES_TABLE": "t",
    "CAMPAIGNS_TABLE": "c",
    "DELAY_QUEUE_URL": "http://q/delay",
    "DLQ_URL": "http://q/dlq",
}
KAFKA = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_TOPIC": "notification-jobs"}
JOBS_QUEUE = "http://q/jobs"
SQS = {"TRANSPORT": "sqs", "JOBS_QUEUE_URL": JOBS_QUEUE}


# --- settings --------------------------------------------------------------------------------------------------


def test_kafka_is_the_default_transport_and_needs_its_brokers_and_topic() -> None:
    settings = load(SchedulerSettings, {**STORES, **KAFKA})
    assert (settings.transport, settings.jobs_queue_url) == ("kafka", None)
    with pytest.raises(SettingsError) as info:
        load(SchedulerSettings, STORES)
    assert "KAFKA_BOOTSTRAP_SERVERS: Field required; KAFKA_TOPIC: Field required" in str(info.value)
    assert "JOBS_QUEUE_URL" not in str(info.value)


def test_the_sqs_transport_needs_the_jobs_queue_and_nothing_of_kafka() -> None:
    settings = load(SchedulerSettings, {**STORES, **SQS})
    assert (settings.transport, settings.jobs_queue_url, settings.kafka_topic) == ("sqs", JOBS_QUEUE, None)
    # Kafka's variables, left by a template or a copied environment, are not checked: nothing reads them.
    load(KafkaSettings, {**SQS, "KAFKA_AUTH": "scram-sha-512", "KAFKA_BOOTSTRAP_SERVERS": ""})


def test_a_missing_jobs_queue_is_named_with_every_other_problem() -> None:
    with pytest.raises(SettingsError) as info:
        load(SchedulerSettings, {"TRANSPORT": "sqs", "JOBS_QUEUE_URL": "", "NOTIFICATIONS_TABLE": "n"})
    message = str(info.value)
    assert "JOBS_QUEUE_URL: Field required (TRANSPORT sqs publishes the jobs to this queue)" in message
    assert "DLQ_URL: Field required" in message
    assert "KAFKA" not in message


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(SettingsError, match="TRANSPORT: Input should be 'kafka' or 'sqs'"):
        load(KafkaSettings, {**KAFKA, "TRANSPORT": "rabbitmq"})


def test_the_kafka_auth_checks_still_hold_with_the_kafka_transport() -> None:
    with pytest.raises(SettingsError, match="KAFKA_AUTH scram-sha-512 needs KAFKA_SECRET_ARN"):
        load(KafkaSettings, {**KAFKA, "TRANSPORT": "kafka", "KAFKA_AUTH": "scram-sha-512"})


def test_a_kafka_config_is_not_made_of_sqs_settings() -> None:
    with pytest.raises(ValueError, match="TRANSPORT sqs configures no Kafka brokers or topic"):
        KafkaConfig.from_settings(load(KafkaSettings, SQS))

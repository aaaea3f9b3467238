"""The Kafka publisher's probe against Tansu: it asks the broker, never a producer's memory of it."""

from __future__ import annotations

import pytest
from notify.adapters.kafka import KafkaConfig, KafkaJobPublisher
from notify.errors import TransientError

from local.processes import Process

from .helpers import job_for

pytestmark = pytest.mark.usefixtures("local_stack")


def test_the_probe_fails_while_the_broker_is_down_even_with_a_producer_that_knows_the_topic(
    kafka_broker: Process, kafka_bootstrap: str, stack_env: dict[str, str]
) -> None:
    publisher = KafkaJobPublisher(KafkaConfig(kafka_bootstrap, stack_env["KAFKA_TOPIC"], 1.0))
    publisher.publish([job_for("u1", "password_reset")])  # its producer now holds the topic's metadata
    publisher.probe()
    kafka_broker.stop()
    try:
        with pytest.raises(TransientError, match="Kafka unreachable"):
            publisher.probe()
    finally:
        kafka_broker.start()
        publisher.close()


def test_a_probe_that_succeeds_hands_its_connected_producer_to_a_publisher_without_one(
    kafka_bootstrap: str, stack_env: dict[str, str]
) -> None:
    publisher = KafkaJobPublisher(KafkaConfig(kafka_bootstrap, stack_env["KAFKA_TOPIC"], 10.0))
    try:
        publisher.probe()
        probed = publisher._producer
        assert probed is not None
        publisher.publish([job_for("u1", "password_reset")])
        assert publisher._producer is probed
    finally:
        publisher.close()

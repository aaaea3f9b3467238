"""MSK IAM authentication builds with the pinned kafka-python (its SASL module moved in 3.0)."""

from __future__ import annotations

from kafka.net.sasl.oauth import AbstractTokenProvider
from notify.adapters.kafka import KafkaConfig


def test_iam_auth_gives_the_producer_an_oauthbearer_token_provider() -> None:
    options = KafkaConfig("b-1.msk:9098", "jobs", auth="iam", region="eu-west-1").client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(options["sasl_oauth_token_provider"], AbstractTokenProvider)


def test_tls_and_plaintext_need_no_token() -> None:
    assert KafkaConfig("b:9094", "jobs", auth="tls").client_options()["security_protocol"] == "SSL"
    assert "security_protocol" not in KafkaConfig("b:9092", "jobs").client_options()

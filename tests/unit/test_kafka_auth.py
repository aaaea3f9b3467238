"""The producer's Kafka authentication: MSK IAM with the pinned kafka-python (its SASL module moved in 3.0), and
SASL/SCRAM, mTLS and a private root CA from the Secrets Manager secrets the event source mapping reads."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import pytest
from kafka.net.sasl.oauth import AbstractTokenProvider
from notify.adapters.kafka import KafkaConfig
from notify.errors import TransientError
from notify.settings import KafkaSettings, SettingsError, load

from tests.certificates import TestCa


def test_iam_auth_gives_the_producer_an_oauthbearer_token_provider() -> None:
    options = KafkaConfig("b-1.msk:9098", "jobs", auth="iam", region="eu-west-1").client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(options["sasl_oauth_token_provider"], AbstractTokenProvider)


def test_tls_and_plaintext_need_no_token() -> None:
    assert KafkaConfig("b:9094", "jobs", auth="tls").client_options()["security_protocol"] == "SSL"
    assert "security_protocol" not in KafkaConfig("b:9092", "jobs").client_options()


# --- SASL/SCRAM and mTLS through the event source mapping's Secrets Manager secrets ----------------------------------

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-client-AbCdEf"
ROOT_CA = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-root-ca-AbCdEf"
KAFKA_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "b-1:9096", "KAFKA_TOPIC": "jobs"}


class Secrets:
    """Secret fields by ARN, recording what was read."""

    def __init__(self, **by_arn: Mapping[str, str]) -> None:
        self.by_arn = by_arn
        self.read: list[str] = []

    def __call__(self, arn: str) -> Mapping[str, str]:
        self.read.append(arn)
        return self.by_arn[arn]


def _config(auth: str, secret: Optional[str] = SECRET, root_ca: Optional[str] = None) -> KafkaConfig:
    return KafkaConfig("b-1:9096", "jobs", auth=auth, secret_arn=secret, root_ca_secret_arn=root_ca)


@pytest.mark.parametrize("auth", ["scram-sha-256", "scram-sha-512"])
def test_scram_logs_in_over_tls_with_the_secrets_username_and_password(auth: str) -> None:
    secrets = Secrets(**{SECRET: {"username": "notify", "password": "pw-1"}})
    options = _config(auth).client_options(secrets)
    assert options["security_protocol"] == "SASL_SSL"  # Lambda takes no SCRAM over plaintext either
    assert options["sasl_mechanism"] == auth.upper()
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("notify", "pw-1")
    assert secrets.read == [SECRET]


def test_a_root_ca_secret_is_what_the_brokers_are_verified_against() -> None:
    ca = TestCa("brokers' CA")
    secrets = Secrets(**{SECRET: {"username": "u", "password": "p"}, ROOT_CA: {"certificate": ca.pem}})
    context = _config("scram-sha-512", root_ca=ROOT_CA).client_options(secrets)["ssl_context"]
    assert [dict(x[0] for x in c["subject"])["commonName"] for c in context.get_ca_certs()] == ["brokers' CA"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    tls = _config("tls", secret=None, root_ca=ROOT_CA).client_options(secrets)
    assert tls["security_protocol"] == "SSL" and tls["ssl_context"].get_ca_certs()


@pytest.mark.parametrize("password", [None, b"key-password"])
def test_mtls_loads_the_secrets_certificate_and_key_and_leaves_no_file(
    password: Optional[bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = TestCa().issue("notify-producer", server=False, password=password)
    fields = {"certificate": client.certificate, "privateKey": client.private_key}
    if password:
        fields["privateKeyPassword"] = password.decode()
    options = _config("mtls").client_options(Secrets(**{SECRET: fields}))
    assert options["security_protocol"] == "SSL" and isinstance(options["ssl_context"], ssl.SSLContext)
    assert list(tmp_path.iterdir()) == []  # the key was written (0600), loaded and removed


def test_an_mtls_key_that_does_not_load_says_so_without_the_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = TestCa().issue("notify-producer", server=False, password=b"right-password")
    fields = {"certificate": client.certificate, "privateKey": client.private_key, "privateKeyPassword": "nope-42"}
    with pytest.raises(TransientError) as refused:
        _config("mtls").client_options(Secrets(**{SECRET: fields}))
    assert "cannot be loaded" in str(refused.value) and "nope-42" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("auth", "fields", "missing"),
    [
        ("scram-sha-256", {"username": "notify-user-7"}, "password"),
        ("mtls", {"certificate": "-----BEGIN CERTIFICATE-----"}, "privateKey"),
    ],
)
def test_a_secret_without_a_field_names_the_field_and_never_a_value(auth: str, fields: dict, missing: str) -> None:
    with pytest.raises(TransientError) as refused:
        _config(auth).client_options(Secrets(**{SECRET: fields}))
    assert repr(missing) in str(refused.value) and SECRET in str(refused.value)
    assert all(value not in str(refused.value) for value in fields.values())


def test_plaintext_tls_and_iam_read_no_secret() -> None:
    secrets = Secrets()
    for auth in ("none", "tls"):
        KafkaConfig("b:9092", "jobs", auth=auth).client_options(secrets)
    assert secrets.read == []


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"KAFKA_AUTH": "scram-sha-256"}, "KAFKA_AUTH scram-sha-256 needs KAFKA_SECRET_ARN"),
        ({"KAFKA_AUTH": "mtls", "KAFKA_SECRET_ARN": ""}, "KAFKA_AUTH mtls needs KAFKA_SECRET_ARN"),
        ({"KAFKA_AUTH": "tls", "KAFKA_SECRET_ARN": SECRET}, "KAFKA_SECRET_ARN is for KAFKA_AUTH"),
        ({"KAFKA_AUTH": "none", "KAFKA_ROOT_CA_SECRET_ARN": ROOT_CA}, "KAFKA_ROOT_CA_SECRET_ARN verifies TLS"),
        ({"KAFKA_AUTH": "iam", "KAFKA_ROOT_CA_SECRET_ARN": ROOT_CA}, "KAFKA_ROOT_CA_SECRET_ARN verifies TLS"),
        ({"KAFKA_AUTH": "scram-sha-1"}, "KAFKA_AUTH"),
    ],
)
def test_settings_refuse_an_auth_and_secrets_that_do_not_go_together_at_cold_start(env: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load(KafkaSettings, {**KAFKA_ENV, **env})


def test_settings_carry_the_secrets_to_the_producer() -> None:
    settings = load(
        KafkaSettings,
        {**KAFKA_ENV, "KAFKA_AUTH": "scram-sha-512", "KAFKA_SECRET_ARN": SECRET, "KAFKA_ROOT_CA_SECRET_ARN": ROOT_CA},
    )
    config = KafkaConfig.from_settings(settings)
    assert (config.auth, config.secret_arn, config.root_ca_secret_arn) == ("scram-sha-512", SECRET, ROOT_CA)

"""The local stack in each Transport (`TRANSPORT=sqs make local`), and while one is drained (`DRAIN_TRANSPORT=kafka`,
the first step of a switch: docs/DEPLOY.md#transport): the parameters, resources, environment and event source
mappings it runs are those of a deployment with the same values, as SAM translates the template; and the TRANSPORT
and DRAIN_TRANSPORT values `make local` refuses, by name."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from local import launch
from local.__main__ import _busy
from local.cfn import Template
from local.infra import function_environments, planned_infra
from local.sam import Translations
from local.stack import Config, LocalStack

TRANSPORTS = ["kafka", "sqs"]
# (Transport, DrainTransport) of a switch's first step, in each direction.
DRAINS = [("sqs", "kafka"), ("kafka", "sqs")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_local_parameters_pass_the_rules_and_create_the_jobs_queue_with_sqs_only(transport: str) -> None:
    stack = LocalStack(Config(transport=transport))
    parameters = stack.parameters()
    assert parameters["Transport"] == transport
    assert stack.template.rule_failures(parameters) == []
    apis = dict.fromkeys(stack.template.websocket_apis(), "http://127.0.0.1:3002")  # as provision() gives them
    infra = planned_infra(stack.template, "notify-local", parameters, apis)
    assert ("JobsQueue" in infra.queues) == (transport == "sqs")
    worker = function_environments(stack.template, infra)["WorkerFunction"]
    assert worker["TRANSPORT"] == transport
    assert worker["JOBS_QUEUE_URL"] == infra.queues.get("JobsQueue", "")
    if transport == "sqs":  # a deployment without Kafka: no brokers, no Kafka event source to wire
        assert parameters["KafkaBootstrapServers"] == "" == parameters["MskClusterArn"]
        with pytest.raises(LookupError):
            stack.template.kafka_source("WorkerFunction", parameters)
    else:
        assert parameters["KafkaBootstrapServers"] == stack.bootstrap != ""


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_local_stack_runs_the_sqs_mappings_sam_translates(sam: Translations, transport: str) -> None:
    """The delay queue's SAM event and, with sqs, the jobs queue's plain mapping: read from template.yaml as the
    runner reads them, they are the mappings of SAM's translation with the local stack's own parameter values."""
    parameters = LocalStack(Config(transport=transport)).parameters()
    translation = sam.of(overrides=parameters)
    local = LocalStack(Config(transport=transport)).template.sqs_sources("WorkerFunction", parameters)
    assert local == translation.template.sqs_sources("WorkerFunction", translation.parameters)
    queues = {source.queue: source for source in local.values()}
    assert set(queues) == ({"DelayQueue", "JobsQueue"} if transport == "sqs" else {"DelayQueue"})
    assert all(s.report_batch_item_failures and s.batch_size == 10 for s in local.values())
    if transport == "sqs":
        jobs = queues["JobsQueue"]
        assert (jobs.batching_window_seconds, jobs.maximum_concurrency) == (
            1,
            int(parameters["JobsQueueMaximumConcurrency"]),
        )


def test_make_local_with_sqs_does_not_need_the_kafka_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free = Config.free_ports(kafka_port=port)
        assert f"KAFKA_PORT={port}" in _busy(free)
        assert _busy(Config.free_ports(kafka_port=port, transport="sqs")) == []


def test_transport_is_kafka_unless_transport_or_the_parameter_overrides_say_sqs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TRANSPORT", "PARAMETER_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    assert Config.from_env().transport == "kafka"
    monkeypatch.setenv("TRANSPORT", "sqs")
    assert Config.from_env().transport == "sqs"
    monkeypatch.delenv("TRANSPORT")
    monkeypatch.setenv("PARAMETER_OVERRIDES", "LogLevel=DEBUG Transport=sqs")
    assert Config.from_env().transport == "sqs"


@pytest.mark.parametrize(
    ("transport", "overrides", "message"),
    [
        ("rabbitmq", "", "TRANSPORT='rabbitmq': kafka or sqs"),
        ("kafka", "Transport=sqs", "TRANSPORT=kafka and PARAMETER_OVERRIDES Transport=sqs"),
    ],
)
def test_a_transport_the_stack_cannot_run_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, transport: str, overrides: str, message: str
) -> None:
    monkeypatch.setenv("TRANSPORT", transport)
    monkeypatch.setenv("PARAMETER_OVERRIDES", overrides)
    with pytest.raises(ValueError, match=message):
        Config.from_env()


@pytest.mark.parametrize(("transport", "drain"), DRAINS)
def test_while_a_transport_is_drained_the_local_stack_wires_both_worker_mappings_sam_translates(
    sam: Translations, transport: str, drain: str
) -> None:
    stack = LocalStack(Config.free_ports(transport=transport, drain_transport=drain))
    parameters = stack.parameters()
    assert (parameters["Transport"], parameters["DrainTransport"]) == (transport, drain)
    assert stack.template.rule_failures(parameters) == []
    # Kafka runs either way (Tansu, on its port), with brokers as a deployment gives them; the jobs queue is made.
    assert stack.config.uses_kafka and parameters["KafkaBootstrapServers"] == stack.bootstrap != ""
    assert f"KAFKA_PORT={stack.config.kafka_port}" in _busy_when_taken(stack.config)
    apis = dict.fromkeys(stack.template.websocket_apis(), "http://127.0.0.1:3002")
    stack.infra = planned_infra(stack.template, "notify-local", parameters, apis)
    assert "JobsQueue" in stack.infra.queues
    # The functions publish to Transport only.
    worker = function_environments(stack.template, stack.infra)["WorkerFunction"]
    assert worker["TRANSPORT"] == transport
    assert worker["JOBS_QUEUE_URL"] == (stack.infra.queues["JobsQueue"] if transport == "sqs" else "")
    # What start_functions() runs: the Kafka mapping and the jobs queue's beside the delay queue's, each as SAM's
    # translation of the same values has it.
    translation = sam.of(overrides=parameters)
    (wiring,) = stack.kafka_wirings()
    assert wiring.source == translation.template.kafka_source("WorkerFunction", translation.parameters)
    assert wiring.bootstrap == stack.bootstrap
    triggers = {trigger: source for trigger, source in stack.sqs_sources().values()}
    assert set(triggers) == {"sqs", "jobs"}
    assert {s.logical_id: s for s in triggers.values()} == translation.template.sqs_sources(
        "WorkerFunction", translation.parameters
    )


def _busy_when_taken(config: Config) -> list[str]:
    """What `make local` reports busy with ``config`` while its Kafka port is taken by another process."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", config.kafka_port))
        taken.listen()
        return _busy(config)


def test_with_sqs_alone_the_local_stack_wires_no_kafka_mapping() -> None:
    stack = LocalStack(Config(transport="sqs"))
    apis = dict.fromkeys(stack.template.websocket_apis(), "http://127.0.0.1:3002")
    stack.infra = planned_infra(stack.template, "notify-local", stack.parameters(), apis)
    assert stack.kafka_wirings() == []
    assert {trigger for trigger, _ in stack.sqs_sources().values()} == {"sqs", "jobs"}


@pytest.mark.parametrize(("transport", "drain"), [("kafka", "none"), ("sqs", "kafka")])
def test_a_stack_that_consumes_kafka_and_cannot_wire_its_mapping_fails_rather_than_run_without_it(
    monkeypatch: pytest.MonkeyPatch, transport: str, drain: str
) -> None:
    stack = LocalStack(Config(transport=transport, drain_transport=drain))
    apis = dict.fromkeys(stack.template.websocket_apis(), "http://127.0.0.1:3002")
    stack.infra = planned_infra(stack.template, "notify-local", stack.parameters(), apis)

    def broken(*args: Any) -> Any:
        raise KeyError("KafkaTopic")  # a lookup bug, which must not read as "no Kafka mapping"

    monkeypatch.setattr(Template, "kafka_source", broken)
    with pytest.raises(KeyError, match="KafkaTopic"):
        stack.kafka_wirings()


def test_drain_transport_is_none_unless_drain_transport_or_the_parameter_overrides_say_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TRANSPORT", "DRAIN_TRANSPORT", "PARAMETER_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    assert Config.from_env().drain_transport == "none"
    monkeypatch.setenv("TRANSPORT", "sqs")
    monkeypatch.setenv("DRAIN_TRANSPORT", "kafka")
    assert (Config.from_env().transport, Config.from_env().drain_transport) == ("sqs", "kafka")
    monkeypatch.delenv("DRAIN_TRANSPORT")
    monkeypatch.setenv("PARAMETER_OVERRIDES", "Transport=sqs DrainTransport=kafka")
    assert Config.from_env().drain_transport == "kafka"


@pytest.mark.parametrize(
    ("transport", "drain", "overrides", "message"),
    [
        ("sqs", "sqs", "", "DRAIN_TRANSPORT=sqs: the transport being left, not TRANSPORT=sqs"),
        ("kafka", "rabbitmq", "", "DRAIN_TRANSPORT='rabbitmq': none, kafka, sqs"),
        ("sqs", "kafka", "DrainTransport=none", "DRAIN_TRANSPORT=kafka and PARAMETER_OVERRIDES DrainTransport=none"),
    ],
)
def test_a_drain_the_stack_cannot_run_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, transport: str, drain: str, overrides: str, message: str
) -> None:
    monkeypatch.setenv("TRANSPORT", transport)
    monkeypatch.setenv("DRAIN_TRANSPORT", drain)
    monkeypatch.setenv("PARAMETER_OVERRIDES", overrides)
    with pytest.raises(ValueError, match=message):
        Config.from_env()


class _Started:
    """``python -m local`` as the launcher sees it: running, and its /health answering."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.env = kwargs["env"]

    def poll(self) -> None:
        return None


@pytest.mark.parametrize(
    ("env", "transports"),
    [
        ({}, ("kafka", "none")),
        ({"PARAMETER_OVERRIDES": "LogLevel=DEBUG Transport=sqs DrainTransport=kafka"}, ("sqs", "kafka")),
        ({"TRANSPORT": "kafka", "DRAIN_TRANSPORT": "sqs"}, ("kafka", "sqs")),
    ],
)
def test_the_launcher_knows_the_transports_the_stack_it_starts_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], transports: tuple[str, str]
) -> None:
    """local.launch.start reads TRANSPORT, DRAIN_TRANSPORT and PARAMETER_OVERRIDES as Config.from_env does."""
    for name in ("TRANSPORT", "DRAIN_TRANSPORT", "PARAMETER_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(subprocess, "Popen", _Started)
    monkeypatch.setattr(launch.StackProcess, "call", lambda *args, **kwargs: (200, {"status": "ok"}))
    started = launch.start(tmp_path, 120, **env)
    assert (started.transport, started.drain_transport) == transports
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert (Config.from_env().transport, Config.from_env().drain_transport) == transports

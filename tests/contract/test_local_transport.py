"""The local stack in each Transport (`TRANSPORT=sqs make local`): the parameters, resources, environment and event
source mappings it runs are those of a deployment with the same values, as SAM translates the template; and the
TRANSPORT values `make local` refuses, by name."""

from __future__ import annotations

import socket

import pytest

from local.__main__ import _busy
from local.infra import function_environments, planned_infra
from local.sam import Translations
from local.stack import Config, LocalStack

TRANSPORTS = ["kafka", "sqs"]


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

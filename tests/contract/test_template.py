"""template.yaml against the code: lint, build, handlers, environment, tables, queues, sample events."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    EventBridgeModel,
    KafkaMskEventModel,
    SqsModel,
)
from notify.models import NotificationJob
from notify.settings import ApiSettings, SchedulerSettings, WorkerSettings, env_names

from local.cfn import ROOT, template
from tests.support.events import load_event

SAM = ROOT / ".venv-sam" / "bin" / "sam"
SETTINGS = {"ApiFunction": ApiSettings, "WorkerFunction": WorkerSettings, "SchedulerFunction": SchedulerSettings}
SET_BY_LAMBDA = {"AWS_REGION"}
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def _sam(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    assert SAM.exists(), "the SAM CLI is missing: `make sam-venv` installs it (make test does)"
    return subprocess.run(
        [str(SAM), *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0", **env}
    )


def test_sam_validate_lint_finds_nothing() -> None:
    result = _sam("validate", "--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_build_succeeds(tmp_path: Path) -> None:
    # pyenv's shim may resolve to another version; its versions folder holds the real interpreter.
    python312 = next((str(p) for p in sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))), None)
    python312 = python312 or shutil.which("python3.12")
    if python312 is None:
        pytest.fail("sam build needs python3.12 on PATH (Lambda's runtime); none was found")
    path = f"{Path(python312).parent}{os.pathsep}{os.environ['PATH']}"
    result = _sam("build", "--build-dir", str(tmp_path / "build"), PATH=path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = tmp_path / "build" / "CommonLayer" / "python"
    assert (layer / "notify" / "delivery.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "kafka").is_dir()
    for function in SETTINGS:
        assert any((tmp_path / "build" / function).rglob("app.py")), function


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_every_handler_exists(function: str) -> None:
    fn = template().functions()[function]
    module, _, attribute = fn.handler.rpartition(".")
    assert (ROOT / fn.code_uri / Path(*module.split("."))).with_suffix(".py").exists()
    assert callable(getattr(importlib.import_module(module), attribute))


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_the_template_sets_exactly_what_the_code_reads(function: str) -> None:
    env = set(template().functions()[function].environment)
    wanted = env_names(SETTINGS[function]) - SET_BY_LAMBDA
    assert env - POWERTOOLS == wanted, f"missing {wanted - env}, unused {env - POWERTOOLS - wanted}"


def test_every_reference_in_an_environment_exists() -> None:
    tpl = template()
    names = set(tpl.data["Resources"]) | set(tpl.data["Parameters"])
    for function in tpl.functions().values():
        for key, value in function.environment.items():
            if isinstance(value, dict):
                assert value.get("Ref") in names, f"{function.logical_id}.{key} refers to {value}"


def test_tables_and_queues_have_the_shapes_the_adapters_use() -> None:
    tpl = template()
    tables = tpl.resources("AWS::DynamoDB::Table")

    def keys(props: dict[str, Any]) -> list[str]:
        return [k["AttributeName"] for k in props["KeySchema"]]

    def indexes(props: dict[str, Any]) -> dict[str, list[str]]:
        return {i["IndexName"]: keys(i) for i in props.get("GlobalSecondaryIndexes", [])}

    notifications = tables["NotificationsTable"]["Properties"]
    assert keys(notifications) == ["pk", "sk"]
    assert indexes(notifications) == {"by-user": ["gsi1pk", "gsi1sk"]}
    assert notifications["TimeToLiveSpecification"]["AttributeName"] == "ttl"
    assert keys(tables["IdempotencyTable"]["Properties"]) == ["id"]  # Powertools' default key
    assert tables["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "expiration"
    assert keys(tables["TemplatesTable"]["Properties"]) == ["pk", "sk"]
    assert indexes(tables["CampaignsTable"]["Properties"]) == {"due": ["status", "next_run_at"]}
    assert keys(tables["ApiKeysTable"]["Properties"]) == ["pk"]
    queues = tpl.resources("AWS::SQS::Queue")
    redrive = queues["DelayQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    worker_timeout = tpl.data["Resources"]["WorkerFunction"]["Properties"]["Timeout"]
    assert queues["DelayQueue"]["Properties"]["VisibilityTimeout"] >= 6 * worker_timeout


def test_the_worker_is_triggered_by_kafka_and_the_delay_queue() -> None:
    tpl = template()
    assert tpl.kafka_batch_size("WorkerFunction") == 100
    queue, batch = tpl.sqs_event("WorkerFunction")
    assert (queue, batch) == ("DelayQueue", 10)
    sqs = next(e for e in tpl.functions()["WorkerFunction"].events.values() if e["Type"] == "SQS")
    assert sqs["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert tpl.schedule("SchedulerFunction") == "rate(1 minute)"


def test_sample_events_match_the_aws_shapes_and_carry_valid_jobs() -> None:
    APIGatewayProxyEventV2Model.model_validate(load_event("api_post_event"))
    EventBridgeModel.model_validate(load_event("schedule_tick"))
    msk = KafkaMskEventModel.model_validate(load_event("msk_batch"))
    for records in msk.records.values():
        for record in records:
            NotificationJob.model_validate_json(str(record.value))
            assert record.headers and record.key == b"demo-user-1"
    sqs = SqsModel.model_validate(load_event("sqs_delay_batch"))
    for sqs_record in sqs.Records:
        NotificationJob.model_validate_json(sqs_record.body)

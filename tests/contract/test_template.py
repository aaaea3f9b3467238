"""template.yaml against the code: lint, build, handlers, environment, tables, queues, event sources, IAM."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
from notify.settings import (
    ApiSettings,
    FeedbackSettings,
    KafkaAuth,
    KafkaSettings,
    SchedulerSettings,
    StoreSettings,
    WebSocketSettings,
    WorkerSettings,
    env_names,
)

from local.cfn import ROOT, Template, load_yaml, references, template
from local.snapshot_restore import STAND_IN

SAM = ROOT / ".venv-sam" / "bin" / "sam"
Settings = (
    type[ApiSettings]
    | type[WorkerSettings]
    | type[SchedulerSettings]
    | type[FeedbackSettings]
    | type[WebSocketSettings]
)
SETTINGS: dict[str, Settings] = {
    "ApiFunction": ApiSettings,
    "WorkerFunction": WorkerSettings,
    "SchedulerFunction": SchedulerSettings,
    "FeedbackFunction": FeedbackSettings,
    "WebSocketFunction": WebSocketSettings,
}
SET_BY_LAMBDA = {"AWS_REGION"}
POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    # Read by Powertools' Tracer, not by the settings (tests/contract/test_translation.py).
    "POWERTOOLS_TRACER_CAPTURE_RESPONSE",
    "POWERTOOLS_TRACER_CAPTURE_ERROR",
}
CONSUMER_GROUP = "notification-worker"
# Lambda's runtime for every function and the layer; the Makefile and mypy use the same minor version.
LAMBDA_RUNTIME = "python3.13"
# Functions with SnapStart (the scheduler's one-a-minute tick keeps it warm: docs/ARCHITECTURE.md).
SNAPSTART = {"ApiFunction", "WorkerFunction", "WebSocketFunction"}
ALIAS = "live"


def _sam(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if not SAM.exists():
        pytest.fail(f"the SAM CLI is missing at {SAM.relative_to(ROOT)}: run `make sam-venv` (make test does)")
    return subprocess.run(
        [str(SAM), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", **env},
    )


@pytest.fixture(scope="module")
def tpl() -> Template:
    return template()


# --- the SAM CLI -------------------------------------------------------------------------------------------


@pytest.mark.timeout(720)  # above _sam's 600 s ceiling, which ends a slow SAM CLI run first
@pytest.mark.parametrize("config_env", ["default", "localstack"])
def test_sam_validate_lint_finds_nothing(config_env: str) -> None:
    result = _sam("validate", "--lint", "--config-env", config_env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "is a valid SAM Template" in output
    assert "[[" not in output, output  # cfn-lint's findings are printed as a list of matches


@pytest.mark.timeout(720)  # above _sam's 600 s ceiling, which ends a slow SAM CLI run first
def test_sam_build_succeeds(tmp_path: Path) -> None:
    # pyenv's shim may resolve to another version; its versions folder holds the real interpreter.
    version = LAMBDA_RUNTIME.removeprefix("python")
    found = sorted(Path.home().glob(f".pyenv/versions/{version}*/bin/{LAMBDA_RUNTIME}"))
    python = str(found[-1]) if found else shutil.which(LAMBDA_RUNTIME)
    if python is None:
        pytest.fail(f"sam build needs {LAMBDA_RUNTIME} (Lambda's runtime) on PATH or under ~/.pyenv/versions")
    path = f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}"
    build = tmp_path / "build"
    result = _sam("build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache"), PATH=path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    layer = build / "CommonLayer" / "python"  # BuildMethod python3.x puts a layer's code under python/
    assert (layer / "notify" / "settings.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "kafka").is_dir() and (layer / "pydantic").is_dir()
    for function, props in template().resources("AWS::Serverless::Function").items():
        module = props["Properties"]["Handler"].rpartition(".")[0]
        assert (build / function / Path(*module.split("."))).with_suffix(".py").exists(), function


# --- runtime and SnapStart -------------------------------------------------------------------------------


def test_every_function_and_the_layer_run_one_python(tpl: Template) -> None:
    assert tpl.globals_function()["Runtime"] == LAMBDA_RUNTIME
    for name, function in tpl.functions().items():
        assert function.properties["Runtime"] == LAMBDA_RUNTIME, name
    (layer,) = tpl.resources("AWS::Serverless::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == [LAMBDA_RUNTIME]
    assert layer["Metadata"]["BuildMethod"] == LAMBDA_RUNTIME


def test_the_makefile_and_mypy_use_the_runtimes_python() -> None:
    version = LAMBDA_RUNTIME.removeprefix("python")
    assert re.search(rf"^LAMBDA_PYTHON := {re.escape(version)}$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["python_version"] == version


def test_snapstart_runs_published_versions_behind_an_alias(tpl: Template) -> None:
    for name, function in tpl.functions().items():
        props = function.properties
        if name not in SNAPSTART:
            assert "SnapStart" not in props, name
            continue
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}, name
        assert props["AutoPublishAlias"] == ALIAS, name  # SnapStart never runs $LATEST
        # What SnapStart does not support.
        assert "ProvisionedConcurrencyConfig" not in props and "FileSystemConfigs" not in props, name
        assert props.get("EphemeralStorage", {"Size": 512})["Size"] <= 512, name
    mappings = tpl.event_source_mappings("WorkerFunction")
    assert {m["Properties"]["FunctionName"]["Ref"] for m in mappings.values()} == {"WorkerFunction.Alias"}


# Registers the hooks the way Lambda's snapshot_restore_py does, then runs them as a snapshot and a restore would.
HOOKS = (
    STAND_IN
    + """
import importlib, json, random
importlib.import_module(sys.argv[1])
(before, args, kwargs), = hooks.before
(after, after_args, after_kwargs), = hooks.after
services = args[0]
before(*args, **kwargs)
snapshot = services()
random.seed(0)
state = random.getstate()
after(*after_args, **after_kwargs)
print(json.dumps({
    "kafka imported before the snapshot": "kafka" in sys.modules,
    "same factory": after_args[0] is services,
    "services rebuilt after the restore": services() is not snapshot,
    "random reseeded": random.getstate() != state,
}))
"""
)


def _placeholder_environment(model: Settings) -> dict[str, str]:
    """A value of the right type for each variable the settings read (nothing is called)."""
    env = {}
    for field in model.model_fields.values():
        if not field.alias:
            continue
        kind = str(field.annotation)
        if field.alias == "KAFKA_AUTH":
            env[field.alias] = "none"
        elif field.alias == "TRANSPORT":
            env[field.alias] = "kafka"  # the default, whose producer SnapStart's hooks preload
        elif field.alias in ("KAFKA_SECRET_ARN", "KAFKA_ROOT_CA_SECRET_ARN"):
            env[field.alias] = ""  # unset: plaintext Kafka takes no secret (KafkaSettings refuses one)
        elif field.alias.endswith(("_URL", "_ENDPOINT")):
            env[field.alias] = "http://127.0.0.1:9/placeholder"
        elif field.alias.endswith("_KEYS_PARAMETER"):
            env[field.alias] = f"/placeholder/{field.alias.lower()}"  # each purpose its own (notify.settings)
        elif "bool" in kind:
            env[field.alias] = "false"
        elif "int" in kind or "float" in kind:
            # The default is valid by construction (a bound like USER_TOKEN_SECONDS >= 60 refuses a small number).
            env[field.alias] = "4" if field.default is None or field.is_required() else str(field.default)
        else:
            env[field.alias] = "placeholder"
    return env


@pytest.mark.parametrize("function", sorted(SNAPSTART))
def test_snapstart_functions_register_hooks_that_rebuild_their_services(tpl: Template, function: str) -> None:
    module = tpl.functions()[function].handler.rpartition(".")[0]
    settings = SETTINGS[function]
    assert settings is not SchedulerSettings
    env = {
        **os.environ,
        **_placeholder_environment(settings),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "placeholder",
        "AWS_SECRET_ACCESS_KEY": "placeholder",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # the Lambda import roots, however pytest got them
    }
    out = subprocess.run([sys.executable, "-c", HOOKS, module], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "kafka imported before the snapshot": True,
        "same factory": True,
        "services rebuilt after the restore": True,
        "random reseeded": True,
    }


# --- handlers and environment ----------------------------------------------------------------------------


def test_every_function_has_a_settings_model(tpl: Template) -> None:
    assert set(tpl.functions()) == set(SETTINGS)


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_every_handler_resolves(tpl: Template, function: str) -> None:
    fn = tpl.functions()[function]
    module, _, attribute = fn.handler.rpartition(".")
    assert (ROOT / fn.code_uri / Path(*module.split("."))).with_suffix(".py").exists()
    # Lambda imports the handler from the function's CodeUri root; pytest's pythonpath lists each of them.
    imported = importlib.import_module(module)
    assert Path(imported.__file__ or "").resolve().is_relative_to((ROOT / fn.code_uri).resolve())
    assert callable(getattr(imported, attribute))


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_the_template_sets_exactly_what_the_code_reads(tpl: Template, function: str) -> None:
    env = set(tpl.functions()[function].environment)
    wanted = env_names(SETTINGS[function]) - SET_BY_LAMBDA
    assert POWERTOOLS <= env
    unread = set()
    if not issubclass(SETTINGS[function], StoreSettings):
        # Globals give every function the stores and Kafka (SAM has no opting out); a function that uses neither
        # gets them unread, and no permission on any of them (see the IAM tests).
        unread = (env_names(StoreSettings) | env_names(KafkaSettings)) - SET_BY_LAMBDA
        assert unread == set(tpl.globals_function()["Environment"]["Variables"]) - POWERTOOLS
    assert env - POWERTOOLS - unread == wanted, f"missing {wanted - env}, unused {env - POWERTOOLS - unread - wanted}"
    assert not env & SET_BY_LAMBDA, "Lambda sets AWS_REGION itself; a template may not"


# An API Gateway API's own URL, which the local runner resolves to its local gateway (local/infra.py).
EXECUTE_API_URL = re.compile(r"^https://\$\{(\w+)\}\.execute-api\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}/\$\{(\w+)\}$")


def test_every_reference_in_an_environment_exists(tpl: Template) -> None:
    names = set(tpl.resources()) | set(tpl.parameters) | {"AWS::Region", "AWS::AccountId", "AWS::Partition"}
    for function in tpl.functions().values():
        for key, value in function.environment.items():
            # The local runner resolves literals, a plain Ref, an Fn::If on a Condition whose branch it takes
            # is one of those, and an API's execute-api URL with its stage; keep the environment to them.
            where = f"{function.logical_id}.{key}"
            if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
                found = EXECUTE_API_URL.match(value["Fn::Sub"])
                assert found, f"{where}: only an API's execute-api URL may be an Fn::Sub"
                api, stage = found.groups()
                assert tpl.resources()[api]["Type"] == "AWS::ApiGatewayV2::Api", where
                assert tpl.properties(stage)["ApiId"] == {"Ref": api}, where
                continue
            assert isinstance(value, str | int | float) or set(value) in ({"Ref"}, {"Fn::If"}), where
            for target in references(value):
                assert target in names, f"{where} refers to {target}, which does not exist"


def test_no_secret_is_a_parameter_or_an_environment_value(tpl: Template) -> None:
    # Secrets live in SSM Parameter Store; the template and the functions' environment only name them.
    assert not [name for name in tpl.parameters if name.endswith(("Token", "Secret", "Password", "Key"))]
    for function in tpl.functions().values():
        assert not [k for k in function.environment if k.endswith(("_TOKEN", "_SECRET", "_PASSWORD"))]


# --- tables and queues -----------------------------------------------------------------------------------


def _target(tpl: Template, function: str, variable: str) -> str:
    value = tpl.functions()[function].environment[variable]
    assert isinstance(value, dict) and set(value) == {"Ref"}, f"{function}.{variable} should be a !Ref"
    return str(value["Ref"])


@pytest.mark.parametrize("function", sorted(SETTINGS))
def test_tables_and_queues_in_the_settings_are_resources_of_the_right_type(tpl: Template, function: str) -> None:
    for variable in env_names(SETTINGS[function]):
        if variable.endswith("_TABLE"):
            kind = "AWS::DynamoDB::Table"
        elif variable in ("DELAY_QUEUE_URL", "DLQ_URL"):
            kind = "AWS::SQS::Queue"  # Ref of a queue is its URL
        else:
            continue
        target = _target(tpl, function, variable)
        assert target in tpl.resources(kind), f"{function}.{variable} -> {target} is not a {kind}"


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


TABLES: dict[str, tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]], str | None]] = {
    "InboxTable": ([("user_id", "HASH"), ("item_id", "RANGE")], {}, "ttl"),
    "ConnectionsTable": (
        [("user_id", "HASH"), ("connection_id", "RANGE")],
        {"by-connection": [("connection_id", "HASH")]},
        "ttl",
    ),
    # table: (key schema, GSIs, TTL attribute)
    "NotificationsTable": (
        [("pk", "HASH"), ("sk", "RANGE")],
        {"by-user": [("gsi1pk", "HASH"), ("gsi1sk", "RANGE")]},
        "ttl",
    ),
    "IdempotencyTable": ([("id", "HASH")], {}, "expiration"),  # Powertools' DynamoDBPersistenceLayer defaults
    "LinksTable": ([("code", "HASH")], {}, "ttl"),  # short links (adapters/dynamodb/links.py)
    "TemplatesTable": ([("pk", "HASH"), ("sk", "RANGE")], {}, None),
    "CampaignsTable": (
        [("pk", "HASH"), ("sk", "RANGE")],
        {"due": [("status", "HASH"), ("next_run_at", "RANGE")]},
        None,
    ),
    "ApiKeysTable": ([("pk", "HASH")], {}, None),
}
# $disconnect finds a connection's user through by-connection, which needs no more than the keys.
KEYS_ONLY = {"ConnectionsTable"}
# A connection lives two hours at most: there is nothing to restore, so no point-in-time recovery.
NO_BACKUP = {"ConnectionsTable"}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_tables_have_the_keys_the_adapters_use(tpl: Template, table: str) -> None:
    keys, indexes, ttl = TABLES[table]
    props = tpl.properties(table)
    assert tpl.resources()[table]["Type"] == "AWS::DynamoDB::Table"
    assert _keys(props["KeySchema"]) == keys
    gsis = {i["IndexName"]: i for i in props.get("GlobalSecondaryIndexes", [])}
    assert {name: _keys(i["KeySchema"]) for name, i in gsis.items()} == indexes
    projection = "KEYS_ONLY" if table in KEYS_ONLY else "ALL"
    assert all(i["Projection"] == {"ProjectionType": projection} for i in gsis.values())
    key_names = {name for name, _ in keys} | {name for index in indexes.values() for name, _ in index}
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == dict.fromkeys(
        key_names, "S"
    )
    if ttl is None:
        assert "TimeToLiveSpecification" not in props
    else:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    if table in NO_BACKUP:
        assert "PointInTimeRecoverySpecification" not in props
    else:
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_every_table_is_known_here(tpl: Template) -> None:
    assert set(tpl.resources("AWS::DynamoDB::Table")) == set(TABLES)


def test_the_delay_queue_redrives_to_the_dead_letter_queue(tpl: Template) -> None:
    delay, dlq = tpl.properties("DelayQueue"), tpl.properties("DeadLetterQueue")
    assert delay["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    worker_timeout = tpl.functions()["WorkerFunction"].properties["Timeout"]
    assert delay["VisibilityTimeout"] >= 6 * worker_timeout  # AWS's advice for an SQS event source
    assert dlq["MessageRetentionPeriod"] == 1209600
    assert delay["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True


# --- event sources ---------------------------------------------------------------------------------------


def test_the_api_is_every_route_of_the_http_api(tpl: Template) -> None:
    events = tpl.functions()["ApiFunction"].events_of_type("HttpApi").values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events}
    assert routes == {("ANY", "/"), ("ANY", "/{proxy+}")}
    assert all(e["Properties"]["ApiId"] == {"Ref": "HttpApi"} for e in events)
    assert tpl.resources()["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
    assert "${HttpApi}.execute-api" in tpl.outputs["ApiUrl"]["Value"]["Fn::Sub"]


def test_browsers_on_other_origins_may_call_the_http_api(tpl: Template) -> None:
    # In the OpenAPI body, where CloudFormation evaluates the Fn::Split (SAM's CorsConfiguration would take the
    # intrinsic for the whole object: tests/contract/test_translation.py reads what AWS receives).
    assert "CorsConfiguration" not in tpl.properties("HttpApi")
    cors = tpl.properties("HttpApi")["DefinitionBody"]["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowedOrigins"}]}
    assert tpl.parameters["CorsAllowedOrigins"]["Type"] == "String"
    assert tpl.parameters["CorsAllowedOrigins"]["Default"] == "*"
    evaluated = tpl.http_cors("ApiFunction", {**tpl.parameter_defaults(), "CorsAllowedOrigins": "https://a.example"})
    assert evaluated["AllowOrigins"] == ["https://a.example"]
    # What a browser sends to the inbox API and the event API.
    assert {"authorization", "content-type", "x-api-key", "idempotency-key"} <= set(evaluated["AllowHeaders"])
    assert {"GET", "POST", "OPTIONS"} <= set(evaluated["AllowMethods"])


WEBSOCKET_ROUTES = {"$connect", "$disconnect", "$default"}


def test_the_websocket_api_routes_everything_to_the_websocket_function(tpl: Template) -> None:
    (api,) = tpl.resources("AWS::ApiGatewayV2::Api")
    props = tpl.properties(api)
    assert (props["ProtocolType"], props["RouteSelectionExpression"]) == ("WEBSOCKET", "$request.body.action")
    (integration,) = tpl.resources("AWS::ApiGatewayV2::Integration")
    integration_props = tpl.properties(integration)
    assert integration_props["ApiId"] == {"Ref": api} and integration_props["IntegrationType"] == "AWS_PROXY"
    assert integration_props["IntegrationUri"]["Fn::Sub"][1] == {"Function": {"Ref": "WebSocketFunction.Alias"}}
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in tpl.resources("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == WEBSOCKET_ROUTES
    for key, route in routes.items():
        assert route["ApiId"] == {"Ref": api}, key
        assert route["Target"] == {"Fn::Sub": "integrations/${" + integration + "}"}, key
    # The function checks the token: API Gateway must let the handshake through to it.
    assert routes["$connect"].get("AuthorizationType", "NONE") == "NONE"
    (stage,) = tpl.resources("AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["ApiId"] == {"Ref": api} and stage["Properties"]["AutoDeploy"] is True
    (permission,) = [
        p["Properties"]
        for p in tpl.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "WebSocketFunction.Alias"}
    ]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${" + api + "}/*"
    }
    assert tpl.websocket_function(api) == "WebSocketFunction"


def test_the_functions_post_to_the_websocket_apis_stage(tpl: Template) -> None:
    ((api, stage),) = tpl.websocket_apis().items()
    (stage_id,) = tpl.resources("AWS::ApiGatewayV2::Stage")
    assert stage == "prod"
    url = "https://${" + api + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${" + stage_id + "}"
    for function in ("ApiFunction", "WorkerFunction", "WebSocketFunction"):
        assert tpl.functions()[function].environment["WEBSOCKET_ENDPOINT"] == {"Fn::Sub": url}, function
    assert tpl.outputs["WebSocketUrl"]["Value"] == {"Fn::Sub": "wss" + url.removeprefix("https")}
    assert tpl.outputs["WebSocketManagementUrl"]["Value"] == {"Fn::Sub": url}
    # The local stack's dev-only token route is never on in a deployed stack.
    assert tpl.functions()["ApiFunction"].environment["DEV_USER_TOKENS"] == "false"
    # Nor may a deployed stack's webhooks go to plain http on loopback (only the local stack's demo receiver may).
    for function in ("ApiFunction", "WorkerFunction"):
        assert tpl.functions()[function].environment["WEBHOOK_ALLOW_HTTP_LOOPBACK"] == "false", function
    # The functions that emit webhooks keep the endpoints as long as the other cached reads (PreferencesCacheSeconds).
    for function in ("ApiFunction", "WorkerFunction", "FeedbackFunction"):
        assert tpl.functions()[function].environment["WEBHOOK_CACHE_SECONDS"] == {"Ref": "PreferencesCacheSeconds"}
    for table in ("InboxTable", "ConnectionsTable"):
        assert tpl.outputs[f"{table}Name"]["Value"] == {"Ref": table}


def test_the_worker_reads_kafka_through_msk_or_self_managed_kafka(tpl: Template) -> None:
    mappings = tpl.event_source_mappings("WorkerFunction")
    by_condition = {m.get("Condition"): m["Properties"] for m in mappings.values() if "Topics" in m["Properties"]}
    assert set(by_condition) == {"UseMsk", "UseSelfManagedKafka"}
    # One of the two with Transport kafka, whichever KafkaMode says; neither with sqs.
    for transport in tpl.parameters["Transport"]["AllowedValues"]:
        for mode in tpl.parameters["KafkaMode"]["AllowedValues"]:
            values = {**tpl.parameter_defaults(), "Transport": transport, "KafkaMode": mode}
            values |= {"KafkaBootstrapServers": "broker:9093", "MskClusterArn": "arn" if mode == "msk" else ""}
            held = {c for c in by_condition if tpl.condition(str(c), values)}
            assert held == ({"UseMsk" if mode == "msk" else "UseSelfManagedKafka"} if transport == "kafka" else set())
    msk, self_managed = by_condition["UseMsk"], by_condition["UseSelfManagedKafka"]
    assert msk["EventSourceArn"] == {"Ref": "MskClusterArn"}
    assert msk["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": CONSUMER_GROUP}
    assert self_managed["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"] == {
        "Fn::Split": [",", {"Ref": "KafkaBootstrapServers"}]
    }
    assert self_managed["SelfManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": CONSUMER_GROUP}
    for props in (msk, self_managed):
        assert props["Topics"] == [{"Ref": "KafkaTopic"}]
        assert props["StartingPosition"] == "TRIM_HORIZON"
    assert tpl.kafka_batch_size("WorkerFunction") == 100
    # The Kafka the functions produce to is the one the worker consumes.
    env = tpl.functions()["WorkerFunction"].environment
    assert env["KAFKA_TOPIC"] == {"Ref": "KafkaTopic"}
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == {"Ref": "KafkaBootstrapServers"}


def test_the_worker_reads_the_delay_queue_with_partial_batch_failures(tpl: Template) -> None:
    assert tpl.sqs_event("WorkerFunction") == ("DelayQueue", 10)
    (sqs,) = tpl.functions()["WorkerFunction"].events_of_type("SQS").values()
    assert sqs["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["Properties"]["MaximumBatchingWindowInSeconds"] >= 0


def test_the_scheduler_ticks_every_minute(tpl: Template) -> None:
    assert tpl.schedule("SchedulerFunction") == "rate(1 minute)"


def test_kafka_parameters_match_the_settings(tpl: Template) -> None:
    params = tpl.parameters
    assert params["KafkaTopic"]["Default"] == "notification-jobs"
    assert set(params["KafkaAuth"]["AllowedValues"]) == set(get_args(KafkaAuth))
    # tls: the Rules refuse iam with KafkaMode's default (self-managed); test_samconfig.py checks the defaults.
    assert params["KafkaAuth"]["Default"] == "tls"


# --- IAM -------------------------------------------------------------------------------------------------


def _statements(tpl: Template) -> list[tuple[str, dict[str, Any]]]:
    """Every inline statement of the template, with where it is."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, fn in tpl.functions().items():
        for policy in fn.properties.get("Policies", []):
            # A conditional policy (!If [condition, policy, AWS::NoValue]) counts with its statements.
            branches = policy["Fn::If"][1:] if isinstance(policy, dict) and "Fn::If" in policy else [policy]
            for branch in branches:
                if isinstance(branch, dict) and "Statement" in branch:
                    out += [(name, s) for s in branch["Statement"]]
    for name, resource in tpl.resources("AWS::IAM::Policy").items():
        out += [(name, s) for s in resource["Properties"]["PolicyDocument"]["Statement"]]
    return out


# Actions AWS grants on "*" only.
STAR_ONLY = {
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
}


def test_no_statement_grants_star_where_a_scope_exists(tpl: Template) -> None:
    for where, statement in _statements(tpl):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "*" in resources:
            assert set(actions) <= STAR_ONLY, f"{where}: {actions} on '*'"


def test_the_api_may_read_the_queue_depths_its_overview_shows(tpl: Template) -> None:
    # GET /api/v1/overview calls GetQueueAttributes on both queues (notify.adapters.sqs.SqsQueueStats).
    policies = tpl.functions()["ApiFunction"].properties["Policies"]
    poller = [p["SQSPollerPolicy"]["QueueName"] for p in policies if isinstance(p, dict) and "SQSPollerPolicy" in p]
    assert poller == [{"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}]  # SAM's poller policy has GetQueueAttributes
    granted = [
        s["Resource"]
        for where, s in _statements(tpl)
        if where == "ApiFunction"
        and "sqs:GetQueueAttributes" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert granted == [{"Fn::GetAtt": ["DelayQueue", "Arn"]}]


def _policy_tables(tpl: Template, function: str) -> dict[str, str]:
    """Table logical id -> the SAM policy template that grants it."""
    out = {}
    for policy in tpl.functions()[function].properties.get("Policies", []):
        for name, args in policy.items() if isinstance(policy, dict) else ():
            if name.startswith("DynamoDB") and isinstance(args, dict):
                out[args["TableName"]["Ref"]] = name
    return out


def test_each_function_may_use_the_tables_it_writes(tpl: Template) -> None:
    assert _policy_tables(tpl, "ApiFunction") == {
        "NotificationsTable": "DynamoDBCrudPolicy",
        "IdempotencyTable": "DynamoDBCrudPolicy",
        "TemplatesTable": "DynamoDBCrudPolicy",
        "CampaignsTable": "DynamoDBCrudPolicy",
        "ApiKeysTable": "DynamoDBReadPolicy",
        "InboxTable": "DynamoDBCrudPolicy",
        "ConnectionsTable": "DynamoDBCrudPolicy",
    }
    worker = _policy_tables(tpl, "WorkerFunction")
    assert worker["NotificationsTable"] == "DynamoDBCrudPolicy" and worker["TemplatesTable"] == "DynamoDBReadPolicy"
    assert worker["InboxTable"] == worker["ConnectionsTable"] == "DynamoDBCrudPolicy"
    # WebSocketFunction records and forgets connections, and reads (recounting, writes) the counts it sends.
    assert _policy_tables(tpl, "WebSocketFunction") == {
        "ConnectionsTable": "DynamoDBCrudPolicy",
        "InboxTable": "DynamoDBCrudPolicy",
    }
    scheduler = _policy_tables(tpl, "SchedulerFunction")
    assert scheduler["CampaignsTable"] == scheduler["NotificationsTable"] == "DynamoDBCrudPolicy"


def test_email_may_only_be_sent_as_the_sender(tpl: Template) -> None:
    ses = [s for where, s in _statements(tpl) if any(str(a).startswith("ses:") for a in s["Action"])]
    assert ses and all(s["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderEmail"}}} for s in ses)


def test_frames_may_be_posted_only_to_this_stacks_websocket_api(tpl: Template) -> None:
    manage = {
        where: statement
        for where, statement in _statements(tpl)
        if any(str(a).startswith("execute-api:") for a in _listed(statement["Action"]))
    }
    assert set(manage) == {"ApiFunction", "WorkerFunction", "WebSocketFunction"}
    for where, statement in manage.items():
        assert statement["Action"] == "execute-api:ManageConnections", where
        resource = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/*"
        assert statement["Resource"] == {"Fn::Sub": resource}, where


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_msk_permissions_exist_only_with_msk(tpl: Template) -> None:
    for name, resource in tpl.resources("AWS::IAM::Policy").items():
        actions = {a for s in resource["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"]}
        if any(a.startswith("kafka") for a in actions):
            # The event source's while MSK is read (DrainTransport kafka too), the producers' while it is written.
            assert resource["Condition"] in ("UseMsk", "ProduceToMsk"), name


# --- samconfig.toml --------------------------------------------------------------------------------------


def test_samconfig_has_an_aws_and_a_localstack_environment() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    for env in ("default", "localstack"):
        assert config[env]["global"]["parameters"]["stack_name"] == "notification-service"
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM" and deploy["resolve_s3"] is True
    assert config["default"]["deploy"]["parameters"]["confirm_changeset"] is True
    overrides = config["localstack"]["deploy"]["parameters"]["parameter_overrides"]
    names = {pair.split("=", 1)[0] for pair in overrides.split()}
    required = {k for k, v in template().parameters.items() if "Default" not in v}
    assert required <= names, f"localstack does not set {required - names}"


def test_the_cfn_loader_reads_every_short_form() -> None:
    text = (
        "A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub ['${a}', {a: !Ref Y}]\n"
        "D: !If [C, 1, !Ref AWS::NoValue]\nE: !Condition C\n"
    )
    assert load_yaml(text) == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Q", "Arn"]},
        "C": {"Fn::Sub": ["${a}", {"a": {"Ref": "Y"}}]},
        "D": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
        "E": {"Condition": "C"},
    }
    assert sorted(references(load_yaml(text))) == ["AWS::NoValue", "Q", "X", "Y"]

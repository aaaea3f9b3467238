"""template.yaml's operations side against the template and the code: alarms, dashboard, log groups, secrets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from notify.adapters.kafka import UNAVAILABLE_METRIC
from notify.models import Channel
from notify.services.delivery import Outcome

from local.cfn import ROOT, Template, references, template

FUNCTIONS = ("ApiFunction", "WorkerFunction", "SchedulerFunction", "FeedbackFunction", "WebSocketFunction")
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}


@pytest.fixture(scope="module")
def tpl() -> Template:
    return template()


def _alarms(tpl: Template) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in tpl.resources("AWS::CloudWatch::Alarm").items()}


def _metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm watches: its single metric, or each MetricStat of its metric math."""
    if "MetricName" in alarm:
        return [{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]


def _powertools(tpl: Template, name: str) -> str:
    return str(tpl.globals_function()["Environment"]["Variables"][name])


# --- alarms ----------------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_alarm_topic_when_it_fires_and_clears(tpl: Template) -> None:
    assert tpl.resources()["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    for name, alarm in _alarms(tpl).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name  # no traffic is no incident
        assert "docs/OPERATIONS.md#" in alarm["AlarmDescription"], name


def test_the_alarm_email_is_optional(tpl: Template) -> None:
    subscription = tpl.resources()["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert tpl.parameters["AlarmEmail"]["Default"] == ""
    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}


def test_every_alarm_watches_a_metric_of_this_stack(tpl: Template) -> None:
    """Each alarm's dimensions name a resource of the template that emits that metric."""
    resources = tpl.resources()
    outcomes = {o.value for o in Outcome}
    channels = {c.value for c in Channel} | {"unknown"}  # `unknown`: a record that was no job
    for name, alarm in _alarms(tpl).items():
        for metric in _metrics(alarm):
            dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            namespace = metric["Namespace"]
            if namespace == "AWS/SQS":
                assert set(dims) == {"QueueName"}, name
                (queue,) = references(dims["QueueName"])
                assert resources[queue]["Type"] == "AWS::SQS::Queue", name
                assert dims["QueueName"] == {"Fn::GetAtt": [queue, "QueueName"]}, name
            elif namespace == "AWS/Lambda":
                assert set(dims) == {"FunctionName"}, name
                assert dims["FunctionName"]["Ref"] in FUNCTIONS, name
                assert metric["MetricName"] in {"Errors", "Throttles", "OffsetLag"}, name
            elif namespace == "AWS/ApiGateway":
                assert dims == {"ApiId": {"Ref": "HttpApi"}}, name
                assert resources["HttpApi"]["Type"] == "AWS::Serverless::HttpApi"
            else:
                # Powertools metrics: the template's namespace and service; the worker's, a real outcome and
                # channel; the producers', the one their publisher writes.
                assert namespace == _powertools(tpl, "POWERTOOLS_METRICS_NAMESPACE"), name
                assert dims["service"] == _powertools(tpl, "POWERTOOLS_SERVICE_NAME"), name
                if metric["MetricName"] == UNAVAILABLE_METRIC:
                    assert set(dims) == {"service"}, name
                    continue
                assert metric["MetricName"] in outcomes, name
                assert dims["channel"] in channels, name


def test_the_alarms_cover_the_signals_an_operator_needs(tpl: Template) -> None:
    watched = {
        (m["Namespace"], m["MetricName"], json.dumps(m["Dimensions"], sort_keys=True))
        for alarm in _alarms(tpl).values()
        for m in _metrics(alarm)
    }

    def has(namespace: str, metric: str, **dims: Any) -> bool:
        wanted = json.dumps([{"Name": k, "Value": v} for k, v in dims.items()], sort_keys=True)
        return (namespace, metric, wanted) in watched

    dlq, delay = ({"Fn::GetAtt": [q, "QueueName"]} for q in ("DeadLetterQueue", "DelayQueue"))
    assert has("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=dlq)
    assert has("AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=delay)
    assert has("AWS/Lambda", "OffsetLag", FunctionName={"Ref": "WorkerFunction"})
    assert has("Notifications", UNAVAILABLE_METRIC, service="notifications")  # Kafka down (the circuit)
    # Transport sqs: the worker falls behind the jobs queue (the Kafka alarms exist with kafka only).
    assert has("AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName={"Fn::GetAtt": ["JobsQueue", "QueueName"]})
    conditions = {name: tpl.resources()[name].get("Condition") for name in _alarms(tpl)}
    # The lag alarms stay while their transport is drained (DrainTransport); the producers' one follows Transport.
    assert {k: v for k, v in conditions.items() if v} == {
        "KafkaOffsetLagAlarm": "ConsumeKafka",
        "KafkaUnavailableAlarm": "UseKafka",
        "JobsQueueAgeAlarm": "ConsumeSqs",
    }
    for function in FUNCTIONS:
        assert has("AWS/Lambda", "Errors", FunctionName={"Ref": function}), function
        assert has("AWS/Lambda", "Throttles", FunctionName={"Ref": function}), function
    assert has("AWS/ApiGateway", "5xx", ApiId={"Ref": "HttpApi"})
    assert set(tpl.functions()) == set(FUNCTIONS), "a new function needs its Errors and Throttles alarms"


def test_the_dlq_alarm_fires_on_the_first_letter(tpl: Template) -> None:
    alarm = tpl.properties("DeadLetterQueueDepthAlarm")
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_tunable_thresholds_are_parameters(tpl: Template) -> None:
    for name, alarm in _alarms(tpl).items():
        threshold = alarm["Threshold"]
        if isinstance(threshold, dict):
            assert threshold["Ref"] in tpl.parameters, name
            assert "Default" in tpl.parameters[threshold["Ref"]], name
    # A delay-queue message waits up to 900 s by design; the age alarm must not fire on a healthy queue.
    assert tpl.parameters["DelayQueueMaxAgeSeconds"]["MinValue"] > 900


# --- dashboard -------------------------------------------------------------------------------------------


TRANSPORTS = ("kafka", "sqs")


def _values(tpl: Template, transport: str) -> dict[str, str]:
    """Every parameter's value (its default, or "" without one) with this Transport."""
    return {**dict.fromkeys(tpl.parameters, ""), **tpl.parameter_defaults(), "Transport": transport}


def _dashboard(tpl: Template, transport: str) -> tuple[str, dict[str, Any]]:
    """The dashboard's body with this Transport: its variables (the transport's alarms and widget) put in, the
    parameters and pseudo parameters resolved, only the resources' ${...} left."""
    pseudo = {name: "x" for name in PSEUDO}
    body = tpl.evaluate(tpl.properties("Dashboard")["DashboardBody"], _values(tpl, transport), pseudo)["Fn::Sub"]
    assert isinstance(body, str), body
    return body, json.loads(re.sub(r"\$\{[^}]+\}", "x", body))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_dashboard_is_valid_json_naming_only_what_exists(tpl: Template, transport: str) -> None:
    body, parsed = _dashboard(tpl, transport)
    assert parsed["widgets"]
    names = set(tpl.resources(parameters=_values(tpl, transport)))  # what this transport creates
    for placeholder in re.findall(r"\$\{([^}]+)\}", body):
        assert placeholder.split(".", 1)[0] in names, placeholder


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_dashboard_shows_every_alarm_and_the_throughput(tpl: Template, transport: str) -> None:
    body, parsed = _dashboard(tpl, transport)
    alarms = tpl.resources("AWS::CloudWatch::Alarm", _values(tpl, transport))
    (alarm_widget,) = [w for w in parsed["widgets"] if w["type"] == "alarm"]
    assert len(alarm_widget["properties"]["alarms"]) == len(alarms)
    assert {f"${{{name}.Arn}}" for name in alarms} <= set(re.findall(r"\$\{[^}]+\.Arn\}", body))
    metrics = {m[1] for w in parsed["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]}
    assert {"JobsAccepted", "sent", "failed", "5xx", "ApproximateAgeOfOldestMessage"} <= metrics
    # How far the worker is behind: Kafka's offset lag, or the jobs queue's oldest message.
    if transport == "kafka":
        assert "OffsetLag" in metrics and "JobsQueue" not in body
    else:
        assert "OffsetLag" not in metrics and "${JobsQueue.QueueName}" in body


def test_the_dashboards_custom_metrics_are_the_ones_the_code_emits() -> None:
    api = (ROOT / "functions/api/api/routes/events.py").read_text()
    worker = (ROOT / "functions/worker/worker/app.py").read_text()
    assert 'name="JobsAccepted"' in api
    assert 'name="EndToEndLatency"' in worker
    assert "single_metric(name=result.outcome.value" in worker  # one metric per outcome, named by its value
    assert 'add_dimension(name="channel"' in worker


# --- log groups ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_its_own_group_with_a_retention(tpl: Template, function: str) -> None:
    props = tpl.functions()[function].properties
    group = props["LoggingConfig"]["LogGroup"]["Ref"]
    resource = tpl.resources()[group]
    assert resource["Type"] == "AWS::Logs::LogGroup"
    assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # The group is named after the stack and the function's role (the function itself is not named: any stack
    # name fits Lambda's 64 characters), without referring to the function (which refers to the group).
    suffix = {"ApiFunction": "api", "WebSocketFunction": "websocket"}.get(function, function.removesuffix("Function"))
    assert resource["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{suffix.lower()}"}
    assert "FunctionName" not in props
    assert function not in set(references(resource)) and "${" + function not in json.dumps(resource)


def test_log_retention_is_a_parameter_cloudwatch_accepts(tpl: Template) -> None:
    retention = tpl.parameters["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]
    assert {1, 7, 30, 365, 3653} <= set(retention["AllowedValues"])


def test_every_log_group_belongs_to_a_function_or_the_http_apis_access_log(tpl: Template) -> None:
    groups = set(tpl.resources("AWS::Logs::LogGroup"))
    used = {tpl.functions()[f].properties["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS}
    access = tpl.properties("HttpApi")["AccessLogSettings"]["DestinationArn"]
    assert access == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    assert groups == used | {"HttpApiAccessLogGroup", "WebSocketAccessLogGroup"}
    for name in groups:
        assert tpl.properties(name)["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    # Signed tokens travel in paths (/u/<token>, /l/<token>): the access log keeps no path or query string.
    log_format = tpl.properties("HttpApi")["AccessLogSettings"]["Format"]
    assert "$context.path" not in log_format and "$context.routeKey" in log_format
    # The WebSocket stage's (opt-in, WebSocketAccessLogs): the user token travels in the handshake's query string.
    condition, settings, off = tpl.properties("WebSocketStage")["AccessLogSettings"]["Fn::If"]
    assert condition == "HasWebSocketAccessLogs" and off == {"Ref": "AWS::NoValue"}
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["WebSocketAccessLogGroup", "Arn"]}
    assert "querystring" not in settings["Format"].lower() and "$context.routeKey" in settings["Format"]


# --- secrets ---------------------------------------------------------------------------------------------


def _ssm_statements(tpl: Template) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, fn in tpl.functions().items():
        for policy in fn.properties.get("Policies", []):
            if isinstance(policy, dict):
                assert not any(k.startswith("SSM") for k in policy), f"{name}: a SAM SSM policy is broader"
                for statement in policy.get("Statement", []):
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    if any(str(a).startswith(("ssm:", "kms:")) for a in actions):
                        out.append((name, statement))
    for name, resource in tpl.resources("AWS::IAM::Policy").items():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(str(a).startswith(("ssm:", "kms:")) for a in actions), name
    return out


SECRETS = {
    # It signs unsubscribe links and derives short links' codes.
    "WorkerFunction": ["AuthApiTokenParameter", "UnsubscribeKeysParameter", "ShortLinkKeysParameter"],
    "ApiFunction": ["UserTokenKeysParameter", "CursorKeysParameter", "UnsubscribeKeysParameter"],
    "WebSocketFunction": ["UserTokenKeysParameter"],  # user tokens are checked at $connect
}


def test_each_function_may_read_only_its_own_secrets_and_nothing_else(tpl: Template) -> None:
    statements = _ssm_statements(tpl)
    read: dict[str, list[str]] = {}
    for function, statement in statements:
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "ssm:GetParameter"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in (r["Fn::Sub"] for r in resources):
            prefix = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${"
            assert resource.startswith(prefix) and resource.endswith("}"), resource
            read.setdefault(function, []).append(resource.removeprefix(prefix).removesuffix("}"))
    assert {f: sorted(p) for f, p in read.items()} == {f: sorted(p) for f, p in SECRETS.items()}
    for parameter in {p for ps in SECRETS.values() for p in ps}:
        # The ARN joins "parameter" and the name, so the name must start with its slash.
        pattern = tpl.parameters[parameter]["AllowedPattern"]
        assert re.fullmatch(pattern, tpl.parameters[parameter]["Default"])
        assert not re.fullmatch(pattern, "notifications/auth-api-token")
        assert not re.fullmatch(pattern, "/notifications/*")


def test_functions_are_given_parameter_names_not_secrets(tpl: Template) -> None:
    env = tpl.functions()["WorkerFunction"].environment
    assert env["AUTH_API_TOKEN_PARAMETER"] == {"Ref": "AuthApiTokenParameter"}
    assert "AUTH_API_TOKEN" not in env
    api = tpl.functions()["ApiFunction"].environment
    assert api["USER_TOKEN_KEYS_PARAMETER"] == {"Ref": "UserTokenKeysParameter"}
    assert api["CURSOR_KEYS_PARAMETER"] == {"Ref": "CursorKeysParameter"}
    assert api["UNSUBSCRIBE_KEYS_PARAMETER"] == {"Ref": "UnsubscribeKeysParameter"}
    for function in tpl.functions().values():
        assert not any(k.endswith(("_KEY", "_KEYS")) or k == "SIGNING_KEY_PARAMETER" for k in function.environment)

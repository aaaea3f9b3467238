"""What AWS receives: assertions on SAM's translation of template.yaml (aws-sam-translator, local/sam.py).

The other contract tests read template.yaml itself; these read the CloudFormation template SAM's transform makes of
it, with parameter values, as CloudFormation then creates it. Each finding of issue 19 that only shows there (CORS
lost in translation, versions not published, triggers, creation order, VPC, Rules, retain policies) has its test.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from local.cfn import ROOT, Template, load_template, references
from local.sam import PSEUDO, Translation, TranslationError, Translations, parameter_values

SUBNETS = "subnet-0aaa1111,subnet-0bbb2222"
GROUPS = "sg-0ccc3333"
VPC_ID = "vpc-0ddd4444"
CLUSTER = "arn:aws:kafka:eu-west-1:123456789012:cluster/notifications/0f1e2d3c-aaaa-bbbb-cccc-111122223333-1"
# Functions in SubnetIds, whose Kafka pollers reach the DLQ through an SQS endpoint this stack creates.
VPC = {"SubnetIds": SUBNETS, "SecurityGroupIds": GROUPS, "VpcId": VPC_ID, "SqsVpcEndpoint": "create"}
MSK = {"KafkaMode": "msk", "MskClusterArn": CLUSTER, "KafkaAuth": "iam", **VPC}
TWO_ORIGINS = "https://app.example.com,https://admin.example.com"
# Transport sqs with no Kafka parameter at all: no brokers (KafkaBootstrapServers has a default, empty, for this).
SQS = {"Transport": "sqs", "KafkaBootstrapServers": ""}
# sqs with a Kafka deployment's parameters left in place (a stack moved from MSK to SQS): all of them ignored.
SQS_WITH_KAFKA_LEFT = {**MSK, "Transport": "sqs", "KafkaAuth": "scram-sha-256"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role(translation: Translation, function: str) -> str:
    """The logical id of ``function``'s execution role."""
    return str(translation.created()[function]["Properties"]["Role"]["Fn::GetAtt"][0])


def _inline_statements(translation: Translation, role: str) -> Iterator[dict[str, Any]]:
    """Every statement of ``role``'s inline policies."""
    for policy in translation.properties(role).get("Policies", []):
        yield from _listed(policy["PolicyDocument"]["Statement"])


def _resources_for(translation: Translation, function: str, action: str) -> list[Any]:
    """The resources of the inline statements of ``function``'s role that name ``action``."""
    resources: list[Any] = []
    for statement in _inline_statements(translation, _role(translation, function)):
        if action in _listed(statement["Action"]):
            resources += _listed(statement["Resource"])
    return resources


# --- CORS ------------------------------------------------------------------------------------------------

# What the API's callers send from a browser: the console and services (X-API-Key), the inbox (Authorization:
# Bearer <user token>), JSON bodies, and the event API's Idempotency-Key.
BROWSER_HEADERS = {"x-api-key", "authorization", "content-type", "idempotency-key"}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@pytest.mark.parametrize(
    ("origins", "expected"),
    [("*", ["*"]), (TWO_ORIGINS, ["https://app.example.com", "https://admin.example.com"])],
    ids=["any-origin", "two-origins"],
)
def test_the_http_api_gets_the_whole_cors_configuration(sam: Translations, origins: str, expected: list[str]) -> None:
    translation = sam.of(overrides={"CorsAllowedOrigins": origins})
    (api,) = translation.created("AWS::ApiGatewayV2::Api").keys() - {"WebSocketApi"}
    raw = translation.template.properties(api)["Body"].get("x-amazon-apigateway-cors")
    # API Gateway imports this object from the OpenAPI body; it ignores (with a warning) anything else.
    assert isinstance(raw, dict) and "allowOrigins" in raw, f"SAM's x-amazon-apigateway-cors is {json.dumps(raw)}"
    cors = translation.evaluate(raw)
    assert cors["allowOrigins"] == expected
    assert METHODS <= {m.upper() for m in cors["allowMethods"]}
    assert BROWSER_HEADERS <= {h.lower() for h in cors["allowHeaders"]}
    assert {h.lower() for h in cors["exposeHeaders"]} >= {"retry-after"}  # the 409/429/503 answers' hint
    assert cors["maxAge"] == 600
    assert cors.get("allowCredentials", False) is False  # credentials with "*" are refused by browsers


def test_the_local_gateway_reads_the_cors_aws_receives(sam: Translations) -> None:
    # local/cfn.py's http_cors() is the local gateway's fallback (no SAM translator); its primary source is the
    # translation itself (local/http_api.py). Either way, the same object, in CorsConfiguration's words.
    translation = sam.of(overrides={"CorsAllowedOrigins": TWO_ORIGINS})
    (api,) = translation.created("AWS::ApiGatewayV2::Api").keys() - {"WebSocketApi"}
    aws = translation.evaluate(translation.template.properties(api)["Body"]["x-amazon-apigateway-cors"])
    local = Template(load_template()).http_cors("ApiFunction", translation.parameters)
    assert isinstance(aws, dict), f"AWS gets {aws} as the CORS object, the local gateway {local}"
    assert {k[0].lower() + k[1:]: v for k, v in local.items()} == aws


# --- versions --------------------------------------------------------------------------------------------

# `sam package` names an artifact after an MD5 of its folder, so new layer content is a new ContentUri.
LAYER_A = "s3://sam-artifacts/CommonLayer/4f1c0bd7e2a9a1f3d5c6b7a8e9f00112"
LAYER_B = "s3://sam-artifacts/CommonLayer/9a8b7c6d5e4f30211f0e0d0c0b0a0908"


def _source(layer: str = LAYER_A) -> dict[str, Any]:
    document = load_template()
    document["Resources"]["CommonLayer"]["Properties"]["ContentUri"] = layer
    return document


def _each_function(document: dict[str, Any], change: Any) -> dict[str, Any]:
    """``document`` with ``change(properties, globals)`` applied to every serverless function."""
    glob = document.get("Globals", {}).get("Function", {})
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            change(resource["Properties"], glob)
    return document


def _timeout(props: dict[str, Any], glob: dict[str, Any]) -> None:
    props["Timeout"] = int(props.get("Timeout", glob.get("Timeout", 3))) - 1


def _memory(props: dict[str, Any], glob: dict[str, Any]) -> None:
    props["MemorySize"] = int(props.get("MemorySize", glob.get("MemorySize", 128))) + 64


def _vpc(props: dict[str, Any], glob: dict[str, Any]) -> None:
    props["VpcConfig"] = {"SubnetIds": ["subnet-0fff9999"], "SecurityGroupIds": ["sg-0eee8888"]}


def _environment(props: dict[str, Any], glob: dict[str, Any]) -> None:
    props.setdefault("Environment", {}).setdefault("Variables", {})["SES_MAX_SEND_RATE"] = "13"


def _logging(props: dict[str, Any], glob: dict[str, Any]) -> None:
    props["LoggingConfig"] = {**props.get("LoggingConfig", {}), "LogFormat": "JSON", "ApplicationLogLevel": "WARN"}


CHANGES = {
    "layer content": lambda: _source(LAYER_B),
    "Timeout": lambda: _each_function(_source(), _timeout),
    "MemorySize": lambda: _each_function(_source(), _memory),
    "VpcConfig": lambda: _each_function(_source(), _vpc),
    "Environment": lambda: _each_function(_source(), _environment),
    "LoggingConfig": lambda: _each_function(_source(), _logging),
}


def _alias_versions(translation: Translation) -> dict[str, str]:
    """Function → the logical id of the AWS::Lambda::Version its alias points at."""
    out = {}
    for alias in translation.created("AWS::Lambda::Alias").values():
        props = alias["Properties"]
        version = props["FunctionVersion"]["Fn::GetAtt"][0]
        assert translation.created()[version]["Type"] == "AWS::Lambda::Version"
        out[props["FunctionName"]["Ref"]] = version
    return out


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_alias_gets_a_new_version_when_only_this_changes(sam: Translations, change: str) -> None:
    before, after = sam.many([(_source(), None), (CHANGES[change](), None)])
    assert not isinstance(before, TranslationError) and not isinstance(after, TranslationError)
    old, new = _alias_versions(before), _alias_versions(after)
    assert old, "no function has an alias"
    same = sorted(f for f in old if new.get(f) == old[f])
    # A version logical id that does not change publishes nothing: $LATEST moves, the alias keeps the old code.
    assert not same, f"only the {change} changed, and the alias of {', '.join(same)} keeps its version"


def test_a_parameter_only_change_publishes_no_version_so_make_deploy_aligns_the_aliases(sam: Translations) -> None:
    """SAM hashes parameter references, not their values (aws/serverless-application-model#3820): a deployment
    that changes values alone publishes nothing and `live` keeps the old configuration. `make deploy` therefore
    runs `python -m ops align-aliases` after `sam deploy` (ops/aliases.py, tests/component/test_align_aliases.py).
    If this fails, SAM publishes such versions itself and that step can go."""
    before, after = sam.many([(_source(), None), (_source(), {"LogLevel": "DEBUG"})])
    assert isinstance(before, Translation) and isinstance(after, Translation)
    assert _alias_versions(before) == _alias_versions(after)


# --- triggers --------------------------------------------------------------------------------------------


def _invoked(translation: Translation) -> dict[str, set[str]]:
    """Each trigger (where it is) → the Lambda resources it names as what it invokes."""
    resources = translation.created()
    lambdas = {k for k, v in resources.items() if v["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::Alias")}
    out: dict[str, set[str]] = {}

    def named(where: str, value: Any) -> None:
        out[where] = {n for n in references(value, subs=True) if n in lambdas}

    for name, resource in resources.items():
        props, kind = resource.get("Properties", {}), resource["Type"]
        if kind == "AWS::ApiGatewayV2::Api" and "Body" in props:
            for path, methods in props["Body"].get("paths", {}).items():
                for method, operation in methods.items():
                    integration = operation.get("x-amazon-apigateway-integration")
                    if integration:
                        named(f"{name} {method.upper()} {path}", integration["uri"])
        elif kind == "AWS::ApiGatewayV2::Integration":
            named(name, props["IntegrationUri"])
        elif kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission"):
            named(name, props["FunctionName"])
        elif kind == "AWS::Events::Rule":
            named(name, [t["Arn"] for t in props["Targets"]])
        elif kind == "AWS::SNS::Subscription" and props.get("Protocol") == "lambda":
            named(name, props["Endpoint"])
    return out


@pytest.mark.parametrize("parameters", [{}, MSK, SQS], ids=["self-managed", "msk", "sqs"])
def test_every_trigger_invokes_an_alias(sam: Translations, parameters: dict[str, str]) -> None:
    translation = sam.of(overrides=parameters)
    resources = translation.created()
    invoked = _invoked(translation)
    functions = set(translation.created("AWS::Lambda::Function"))
    # Every function is invoked by something, and everything that invokes names exactly one alias.
    assert functions == {
        resources[n]["Properties"]["FunctionName"]["Ref"]
        for targets in invoked.values()
        for n in targets
        if resources[n]["Type"] == "AWS::Lambda::Alias"
    } | {n for targets in invoked.values() for n in targets if n in functions}
    not_alias = sorted(f"{where} -> {', '.join(sorted(t))}" for where, t in invoked.items() if t & functions)
    assert not not_alias, f"these invoke $LATEST, not the alias the deployment moves: {not_alias}"
    assert all(len(t) == 1 for t in invoked.values()), invoked
    kinds = {resources[w.split(" ")[0]]["Type"] for w in invoked}
    assert {
        "AWS::ApiGatewayV2::Api",  # the HTTP API's routes
        "AWS::ApiGatewayV2::Integration",  # the WebSocket API's routes
        "AWS::Lambda::EventSourceMapping",  # Kafka and the delay queue
        "AWS::Events::Rule",  # the schedule
        "AWS::SNS::Subscription",  # SES feedback
        "AWS::Lambda::Permission",
    } <= kinds
    kafka = [m for m in translation.created("AWS::Lambda::EventSourceMapping").values() if "Topics" in m["Properties"]]
    assert len(kafka) == (0 if parameters is SQS else 1)  # the mapping of the mode in use (MSK or self-managed)


# --- creation order --------------------------------------------------------------------------------------

# What Lambda checks in the function's execution role when it creates an event source mapping (its docs for
# each source), failing the creation without it.
NETWORK = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DeleteNetworkInterface",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
}
# AWS managed policies SAM attaches by ARN, and what of them matters here.
MANAGED = {
    "AWSLambdaSQSQueueExecutionRole": {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    "AWSLambdaVPCAccessExecutionRole": {
        "ec2:CreateNetworkInterface",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
    },
    # The MSK role's network actions are NETWORK's (below), plus the cluster's.
    "AWSLambdaMSKExecutionRole": {"kafka:DescribeCluster", "kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"}
    | NETWORK,
}


def _checked_at_creation(props: dict[str, Any]) -> set[str]:
    """The actions Lambda checks in the execution role when it creates a mapping with these properties."""
    needed = set()
    if "Topics" in props and "SelfManagedEventSource" not in props:
        needed |= {"kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers"} | NETWORK
    elif "Topics" not in props:
        needed |= {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    if any(c.get("Type") == "VPC_SUBNET" for c in props.get("SourceAccessConfigurations", [])):
        needed |= NETWORK
    if props.get("DestinationConfig", {}).get("OnFailure"):
        needed.add("sqs:SendMessage")
    return needed


def _grants(translation: Translation, role: str) -> dict[str, set[str]]:
    """Resource that grants it (the role or a policy attached to it) → the actions it allows the role."""
    out: dict[str, set[str]] = {}
    for name, resource in translation.created().items():
        props = translation.evaluate(resource.get("Properties", {}))
        if name == role:
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
            arns = [str(arn) for arn in props.get("ManagedPolicyArns", [])]
            actions = {a for policy, granted in MANAGED.items() if any(policy in arn for arn in arns) for a in granted}
        elif resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props.get("Roles", []):
            documents, actions = [props["PolicyDocument"]], set()
        else:
            continue
        for document in documents:
            for statement in _listed(document["Statement"]):
                if statement["Effect"] == "Allow":
                    actions |= set(_listed(statement["Action"]))
        out[name] = actions
    return out


def _depends_on(translation: Translation, name: str) -> set[str]:
    """Every resource CloudFormation creates before ``name``: DependsOn and references, transitively."""
    resources = translation.created()
    seen: set[str] = set()
    todo = [name]
    while todo:
        resource = resources[todo.pop()]
        named = references(resource.get("Properties", {}), subs=True)
        direct = set(_listed(resource.get("DependsOn", []))) | set(named)
        for dependency in direct & resources.keys() - seen:
            seen.add(dependency)
            todo.append(dependency)
    return seen


@pytest.mark.parametrize("parameters", [{}, VPC, MSK, SQS], ids=["self-managed", "self-managed-in-vpc", "msk", "sqs"])
def test_a_mapping_is_created_after_the_permissions_lambda_checks(
    sam: Translations, parameters: dict[str, str]
) -> None:
    translation = sam.of(overrides=parameters)
    resources = translation.created()
    missing = []
    for name, mapping in translation.created("AWS::Lambda::EventSourceMapping").items():
        alias = translation.evaluate(mapping["Properties"]["FunctionName"])["Ref"]
        function = resources[alias]["Properties"]["FunctionName"]["Ref"]
        role = _role(translation, function)
        before = _depends_on(translation, name)
        grants = _grants(translation, role)
        for action in sorted(_checked_at_creation(translation.properties(name))):
            granting = sorted(g for g, actions in grants.items() if any(fnmatch.fnmatch(action, a) for a in actions))
            assert granting, f"{name}: nothing grants {role} {action}"
            if not set(granting) & before:
                missing.append(f"{name} needs {action}, granted by {', '.join(granting)}, which it does not wait for")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("parameters", [{}, VPC, MSK], ids=["no-vpc", "self-managed-in-vpc", "msk"])
def test_a_function_is_created_after_the_permissions_lambda_checks(
    sam: Translations, parameters: dict[str, str]
) -> None:
    # Lambda refuses a function in a VPC whose role cannot manage network interfaces, and one whose dead-letter
    # queue it cannot send to ("The provided execution role does not have permissions to call ...").
    translation = sam.of(overrides=parameters)
    missing = []
    for name in translation.created("AWS::Lambda::Function"):
        props = translation.properties(name)
        needed = set()
        if props.get("VpcConfig"):
            needed |= {"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"}
        if props.get("DeadLetterConfig", {}).get("TargetArn"):
            needed.add("sqs:SendMessage")
        role = translation.template.properties(name)["Role"]["Fn::GetAtt"][0]
        before = _depends_on(translation, name)
        grants = _grants(translation, role)
        for action in sorted(needed):
            granting = {g for g, actions in grants.items() if any(fnmatch.fnmatch(action, a) for a in actions)}
            if not granting & before:
                missing.append(f"{name} needs {action}, granted by {sorted(granting)}, which it does not wait for")
    assert not missing, "\n".join(missing)


def test_the_email_event_destinations_wait_for_the_topic_policy(sam: Translations) -> None:
    translation = sam.of()
    destinations = translation.created("AWS::SES::ConfigurationSetEventDestination")
    (policy,) = translation.created("AWS::SNS::TopicPolicy")
    assert len(destinations) == 2  # tracked mail's and account mail's
    for destination in destinations:  # SES checks it may publish when it creates one
        assert policy in _depends_on(translation, destination), destination


# --- the VPC ---------------------------------------------------------------------------------------------


def _kafka_producers() -> set[str]:
    """Functions whose code builds a Kafka producer (notify.adapters.kafka, or the transport's factory in
    notify.adapters.transport, which builds one with TRANSPORT kafka): the ones that must reach Kafka."""
    document = load_template()
    out = set()
    for name, resource in document["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = ROOT / resource["Properties"]["CodeUri"]
        if any(m in p.read_text() for p in code.rglob("*.py") for m in ("notify.adapters.kafka", "publisher_for")):
            out.add(name)
    return out


@pytest.mark.parametrize(
    "parameters", [{}, VPC, MSK, SQS_WITH_KAFKA_LEFT], ids=["no-vpc", "self-managed-in-vpc", "msk", "sqs-with-subnets"]
)
def test_only_the_functions_that_reach_kafka_run_in_the_vpc(sam: Translations, parameters: dict[str, str]) -> None:
    translation = sam.of(overrides=parameters)
    in_vpc = {
        name for name in translation.created("AWS::Lambda::Function") if translation.properties(name).get("VpcConfig")
    }
    # With sqs nothing reaches Kafka: SubnetIds (left from a Kafka deployment) puts no function in a VPC.
    expected = _kafka_producers() if parameters and parameters is not SQS_WITH_KAFKA_LEFT else set()
    assert expected <= {"ApiFunction", "WorkerFunction", "SchedulerFunction"}
    # A function in a VPC reaches AWS's APIs (SES, SNS, the WebSocket management API, SSM, X-Ray) only through a
    # NAT or endpoints; one that never talks to Kafka has no reason to be there.
    assert sorted(in_vpc) == sorted(expected), f"in the VPC: {sorted(in_vpc)}; reaching Kafka: {sorted(expected)}"
    for name in in_vpc:
        vpc = translation.properties(name)["VpcConfig"]
        assert vpc == {"SubnetIds": SUBNETS.split(","), "SecurityGroupIds": GROUPS.split(",")}, name


# --- Rules -----------------------------------------------------------------------------------------------

REFUSED = {
    "msk-without-a-cluster": {**MSK, "MskClusterArn": ""},
    "msk-without-subnets": {"KafkaMode": "msk", "MskClusterArn": CLUSTER, "KafkaAuth": "iam"},
    "subnets-without-security-groups": {**VPC, "SecurityGroupIds": ""},
    "security-groups-without-subnets": {"SecurityGroupIds": GROUPS},
    "an-empty-subnet": {**VPC, "SubnetIds": "subnet-0aaa1111,"},
    "an-empty-security-group": {**VPC, "SecurityGroupIds": "sg-0ccc3333,"},
    "a-cluster-for-self-managed-kafka": {"MskClusterArn": CLUSTER},
    "iam-auth-without-msk": {"KafkaAuth": "iam"},
    "a-vpc-without-a-way-to-sqs": {**VPC, "SqsVpcEndpoint": ""},
    "msk-without-a-way-to-sqs": {**MSK, "SqsVpcEndpoint": ""},
    "an-sqs-endpoint-without-a-vpc-id": {**VPC, "VpcId": ""},
    "an-sqs-endpoint-without-subnets": {"SqsVpcEndpoint": "create", "VpcId": VPC_ID},
}


def _samconfig_overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    pairs = config[env]["deploy"]["parameters"]["parameter_overrides"].split()
    return {k: v.strip("'\"") for k, v in (p.split("=", 1) for p in pairs)}


ACCEPTED = {
    "self-managed-without-a-vpc": {},
    "self-managed-in-a-vpc": VPC,
    "self-managed-in-a-vpc-that-reaches-sqs": {**VPC, "SqsVpcEndpoint": "existing", "VpcId": ""},
    "msk": MSK,
    "msk-in-a-vpc-that-reaches-sqs": {**MSK, "SqsVpcEndpoint": "existing"},
    "samconfig-localstack": _samconfig_overrides("localstack"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_rules_refuse_an_inconsistent_parameter_set(sam: Translations, case: str) -> None:
    translation = sam.of(overrides=REFUSED[case])
    # CloudFormation checks Rules before it creates or changes anything.
    assert translation.rule_failures(), f"{case}: the Rules accept {json.dumps(REFUSED[case])}"


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_the_rules_accept_a_consistent_parameter_set(sam: Translations, case: str) -> None:
    assert sam.of(overrides=ACCEPTED[case]).rule_failures() == []


# --- Kafka authentication: SASL/SCRAM and mTLS through Secrets Manager -------------------------------------------

KAFKA_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_notify-producer-AbCdEf"
ROOT_CA_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:notify/kafka-root-ca-GhIjKl"
# What a Kafka event source accepts (Lambda's SourceAccessConfiguration): MSK takes SCRAM-SHA-512 and mTLS only.
SECRET_TYPES = {
    "SASL_SCRAM_256_AUTH",
    "SASL_SCRAM_512_AUTH",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
}
MSK_SECRET_TYPES = {"SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"}
_SCRAM256 = {"KafkaAuth": "scram-sha-256", "KafkaSecretArn": KAFKA_SECRET}
_SCRAM512 = {"KafkaAuth": "scram-sha-512", "KafkaSecretArn": KAFKA_SECRET}
_MTLS = {"KafkaAuth": "mtls", "KafkaSecretArn": KAFKA_SECRET}
_ROOT_CA = {"KafkaRootCaSecretArn": ROOT_CA_SECRET}
_MSK_BASE = {k: v for k, v in MSK.items() if k != "KafkaAuth"}
# Each KafkaMode x KafkaAuth (with and without a root CA and a VPC) -> the secrets its event source reads.
KAFKA_AUTH = {
    "self-managed-none": ({"KafkaAuth": "none"}, {}),
    "self-managed-tls": ({"KafkaAuth": "tls"}, {}),
    "self-managed-tls-private-ca": ({"KafkaAuth": "tls", **_ROOT_CA}, {"SERVER_ROOT_CA_CERTIFICATE": ROOT_CA_SECRET}),
    "self-managed-scram-sha-256": (_SCRAM256, {"SASL_SCRAM_256_AUTH": KAFKA_SECRET}),
    "self-managed-scram-sha-512": (_SCRAM512, {"SASL_SCRAM_512_AUTH": KAFKA_SECRET}),
    "self-managed-scram-sha-256-private-ca": (
        {**_SCRAM256, **_ROOT_CA},
        {"SASL_SCRAM_256_AUTH": KAFKA_SECRET, "SERVER_ROOT_CA_CERTIFICATE": ROOT_CA_SECRET},
    ),
    "self-managed-mtls": (_MTLS, {"CLIENT_CERTIFICATE_TLS_AUTH": KAFKA_SECRET}),
    "self-managed-mtls-private-ca-in-vpc": (
        {**_MTLS, **_ROOT_CA, **VPC},
        {"CLIENT_CERTIFICATE_TLS_AUTH": KAFKA_SECRET, "SERVER_ROOT_CA_CERTIFICATE": ROOT_CA_SECRET},
    ),
    "msk-none": ({**_MSK_BASE, "KafkaAuth": "none"}, {}),
    "msk-tls": ({**_MSK_BASE, "KafkaAuth": "tls"}, {}),
    "msk-iam": (MSK, {}),
    "msk-scram-sha-512": ({**_MSK_BASE, **_SCRAM512}, {"SASL_SCRAM_512_AUTH": KAFKA_SECRET}),
    "msk-mtls": ({**_MSK_BASE, **_MTLS}, {"CLIENT_CERTIFICATE_TLS_AUTH": KAFKA_SECRET}),
}
KAFKA_AUTH_REFUSED = {
    "scram-without-a-secret": {"KafkaAuth": "scram-sha-256"},
    "mtls-without-a-secret": {**_MSK_BASE, "KafkaAuth": "mtls"},
    "a-secret-with-tls": {"KafkaAuth": "tls", "KafkaSecretArn": KAFKA_SECRET},
    "a-secret-with-iam": {**MSK, "KafkaSecretArn": KAFKA_SECRET},
    "msk-scram-sha-256": {**_MSK_BASE, **_SCRAM256},
    "a-root-ca-with-msk": {**_MSK_BASE, **_MTLS, **_ROOT_CA},
    "a-root-ca-with-plaintext": {"KafkaAuth": "none", **_ROOT_CA},
}
PRODUCERS = {"ApiFunction", "WorkerFunction", "SchedulerFunction"}


def _kafka_translations(sam: Translations) -> dict[str, Translation]:
    """Every KAFKA_AUTH case, translated in one run of the translator."""
    cases = sorted(KAFKA_AUTH)
    results = sam.many([(None, KAFKA_AUTH[case][0]) for case in cases])
    return {case: result for case, result in zip(cases, results, strict=True) if isinstance(result, Translation)}


def _kafka_mapping(translation: Translation) -> tuple[str, dict[str, Any]]:
    ((name, _),) = (
        (n, m) for n, m in translation.created("AWS::Lambda::EventSourceMapping").items() if "Topics" in m["Properties"]
    )
    return name, translation.properties(name)


def _secret_reads(translation: Translation, role: str) -> tuple[list[Any], list[Any]]:
    """The secrets the role may GetSecretValue, and those whose KMS key it may use through Secrets Manager."""
    reads: list[Any] = []
    decrypts: list[Any] = []
    for statement in _inline_statements(translation, role):
        actions = _listed(statement["Action"])
        if any(str(a).startswith("secretsmanager:") for a in actions):
            assert statement["Effect"] == "Allow" and actions == ["secretsmanager:GetSecretValue"], statement
            reads += _listed(statement["Resource"])
        if "kms:Decrypt" in actions:
            condition = statement["Condition"]["StringEquals"]
            assert condition["kms:ViaService"] == "secretsmanager.eu-west-1.amazonaws.com", statement
            decrypts += _listed(condition["kms:EncryptionContext:SecretARN"])
    return reads, decrypts


@pytest.mark.parametrize("case", sorted(KAFKA_AUTH))
def test_the_kafka_event_source_logs_in_with_the_secrets_of_kafka_auth(sam: Translations, case: str) -> None:
    translation = _kafka_translations(sam)[case]
    assert translation.rule_failures() == [], case
    name, props = _kafka_mapping(translation)
    access = [c for c in props.get("SourceAccessConfigurations", []) if c["Type"] in SECRET_TYPES]
    assert {c["Type"]: c["URI"] for c in access} == KAFKA_AUTH[case][1]
    assert len(access) == len(KAFKA_AUTH[case][1]), access
    if name == "WorkerMskEventSource":
        assert {c["Type"] for c in access} <= MSK_SECRET_TYPES
    elif "VpcId" in KAFKA_AUTH[case][0]:  # the network entries stay beside the secrets
        assert {c["Type"] for c in props["SourceAccessConfigurations"]} >= {"VPC_SUBNET", "VPC_SECURITY_GROUP"}
    # The producers read what the event source reads, from the same parameters.
    env = translation.properties("ApiFunction")["Environment"]["Variables"]
    assert env["KAFKA_AUTH"] == translation.parameters["KafkaAuth"]
    assert env.get("KAFKA_SECRET_ARN", "") == translation.parameters["KafkaSecretArn"]
    assert env.get("KAFKA_ROOT_CA_SECRET_ARN", "") == translation.parameters["KafkaRootCaSecretArn"]


@pytest.mark.parametrize("case", sorted(KAFKA_AUTH))
def test_exactly_the_producers_and_the_pollers_may_read_exactly_the_kafka_secrets(sam: Translations, case: str) -> None:
    translation = _kafka_translations(sam)[case]
    secrets = sorted(KAFKA_AUTH[case][1].values())
    for function in translation.created("AWS::Lambda::Function"):
        role = _role(translation, function)
        reads, decrypts = _secret_reads(translation, role)
        expected = secrets if function in PRODUCERS else []  # the worker's role is its event source's too
        assert sorted(reads) == expected, (case, function)
        assert sorted(decrypts) == expected, (case, function)
    for policy in translation.created("AWS::IAM::Policy").values():  # and nothing else grants a secret
        assert "secretsmanager" not in json.dumps(policy["Properties"]), case


@pytest.mark.parametrize("case", sorted(c for c, (_, secrets) in KAFKA_AUTH.items() if secrets))
def test_the_kafka_event_source_is_created_after_its_role_may_read_the_secrets(sam: Translations, case: str) -> None:
    # Lambda reads the secrets with the function's role when it creates the mapping, and refuses to create it
    # otherwise; a separate AWS::IAM::Policy could only be waited for under the same Condition.
    translation = _kafka_translations(sam)[case]
    resources = translation.created()
    name, props = _kafka_mapping(translation)
    function = resources[props["FunctionName"]["Ref"]]["Properties"]["FunctionName"]["Ref"]
    role = _role(translation, function)
    assert role in _depends_on(translation, name)
    reads, _ = _secret_reads(translation, role)
    assert sorted(reads) == sorted(KAFKA_AUTH[case][1].values())


@pytest.mark.parametrize("case", sorted(KAFKA_AUTH_REFUSED))
def test_the_rules_refuse_kafka_credentials_that_do_not_fit(case: str) -> None:
    tpl = load_template()
    values = {**{k: str(v.get("Default", "")) for k, v in tpl["Parameters"].items()}, **KAFKA_AUTH_REFUSED[case]}
    failures = Template(tpl).rule_failures(values)
    assert failures, f"{case}: the Rules accept {json.dumps(KAFKA_AUTH_REFUSED[case])}"
    assert any(term in f for f in failures for term in ("KafkaSecretArn", "KafkaRootCaSecretArn", "SCRAM-SHA-512"))


# --- what outlives the stack -----------------------------------------------------------------------------

STATEFUL = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup")


def test_every_stateful_resource_is_retained(sam: Translations) -> None:
    translation = sam.of(overrides=VPC)
    loose = sorted(
        f"{name} ({resource.get('DeletionPolicy', 'Delete')}/{resource.get('UpdateReplacePolicy', 'Delete')})"
        for name, resource in translation.created().items()
        if resource["Type"] in STATEFUL
        # RetainExceptOnCreate: a first deployment that rolls back leaves nothing behind to collide with the retry.
        and (
            resource.get("DeletionPolicy") not in ("Retain", "RetainExceptOnCreate")
            or resource.get("UpdateReplacePolicy") != "Retain"
        )
    )
    assert not loose, f"deleted with the stack or on replacement: {loose}"


@pytest.mark.parametrize("enabled", ["false", "true"])
def test_the_websocket_stage_logs_access_only_when_asked(sam: Translations, enabled: str) -> None:
    """Opt-in: API Gateway needs the account's CloudWatch role for WebSocket access logs, which the stack does not
    set (an account-wide setting); the default deployment must not fail for want of it."""
    translation = sam.of(overrides={"WebSocketAccessLogs": enabled})
    created = translation.created()
    settings = translation.evaluate(created["WebSocketStage"]["Properties"]).get("AccessLogSettings")
    if enabled == "false":
        assert settings is None and "WebSocketAccessLogGroup" not in created
        return
    group = created["WebSocketAccessLogGroup"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["WebSocketAccessLogGroup", "Arn"]}
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


# Names CloudFormation passes on, built from the stack name, and the longest each service takes.
NAME_LIMITS = {
    ("AWS::Lambda::Function", "FunctionName"): 64,
    ("AWS::SES::ConfigurationSet", "Name"): 64,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
}
LONGEST_STACK_NAME = "n" * 128  # CloudFormation's own limit


def test_any_stack_name_cloudformation_accepts_makes_valid_names(sam: Translations) -> None:
    translation = sam.of()
    pseudo = {**PSEUDO, "AWS::StackName": LONGEST_STACK_NAME}
    too_long = []
    for name, resource in translation.created().items():
        for (kind, prop), limit in NAME_LIMITS.items():
            if resource["Type"] == kind and prop in resource.get("Properties", {}):
                value = translation.template.evaluate(resource["Properties"][prop], translation.parameters, pseudo)
                assert isinstance(value, str), f"{name}.{prop} does not resolve: {value}"
                if len(value) > limit:
                    too_long.append(f"{name}.{prop} is {len(value)} characters (at most {limit})")
    assert not too_long, f"with a {len(LONGEST_STACK_NAME)}-character stack name: {too_long}"


# --- safe defaults for a real account -----------------------------------------------------------------------


def test_traces_record_no_response_bodies_and_no_exception_text(sam: Translations) -> None:
    translation = sam.of()
    for name in translation.created("AWS::Lambda::Function"):
        env = translation.properties(name)["Environment"]["Variables"]
        # Powertools' Tracer otherwise records every captured return value (user tokens, inbox items, rendered
        # emails with live links) and every exception's text as X-Ray metadata.
        assert env.get("POWERTOOLS_TRACER_CAPTURE_RESPONSE") == "false", name
        assert env.get("POWERTOOLS_TRACER_CAPTURE_ERROR") == "false", name


def test_no_code_turns_trace_capture_back_on() -> None:
    found = []
    for root in (ROOT / "functions", ROOT / "layers" / "common" / "notify"):
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.keyword) and node.arg in ("capture_response", "capture_error"):
                    if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                        found.append(f"{path.relative_to(ROOT)}:{node.value.lineno} {node.arg}")
    assert not found, found


def _parameter(translation: Translation, value: Any) -> Optional[str]:
    """The parameter ``value`` is, if it is one (a Ref), after SAM's translation."""
    return value["Ref"] if isinstance(value, dict) and set(value) == {"Ref"} else None


def test_both_apis_throttle_with_parameters(sam: Translations) -> None:
    translation = sam.of()
    stages = translation.created("AWS::ApiGatewayV2::Stage")
    assert len(stages) == 2  # the HTTP API's ($default, SAM's) and the WebSocket API's
    for name, stage in stages.items():
        settings = stage["Properties"].get("DefaultRouteSettings", {})
        for key in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
            parameter = _parameter(translation, settings.get(key))
            assert parameter, f"{name} has no {key} parameter"
            declared = translation.template.parameters[parameter]
            assert int(declared["Default"]) > 0 and declared.get("Description"), parameter
            assert int(declared.get("MinValue", 0)) >= 1, parameter


def _public(translation: Translation) -> set[str]:
    """Functions API Gateway invokes: anyone on the internet can make them run."""
    resources = translation.created()
    out = set()
    for permission in translation.created("AWS::Lambda::Permission").values():
        props = permission["Properties"]
        if props["Principal"] == "apigateway.amazonaws.com":
            target = props["FunctionName"]["Ref"]
            out.add(resources[target]["Properties"]["FunctionName"]["Ref"] if target in resources else target)
    return out


ACCOUNT_CONCURRENCY = 1000  # Lambda's default per-region quota
UNRESERVED_MINIMUM = 100  # what Lambda keeps unreserved for functions without a reservation


def test_public_functions_have_a_concurrency_bound_that_leaves_the_worker_room(sam: Translations) -> None:
    translation = sam.of()
    public = _public(translation)
    assert public == {"ApiFunction", "WebSocketFunction"}
    reserved = {}
    for name in public:
        value = translation.template.properties(name).get("ReservedConcurrentExecutions")
        assert value is not None, f"{name} has no ReservedConcurrentExecutions"
        reserved[name] = int(translation.evaluate(value))
    assert all(r >= 1 for r in reserved.values())
    # The worker draws on the unreserved pool, which the public functions can no longer empty.
    assert "ReservedConcurrentExecutions" not in translation.template.properties("WorkerFunction")
    assert sum(reserved.values()) <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM - 100
    # 0 takes the bound away (an account whose quota is below the reservations).
    off = sam.of(overrides={p: "0" for p in translation.template.parameters if p.endswith("ReservedConcurrency")})
    for name in public:
        assert "ReservedConcurrentExecutions" not in off.properties(name), name


APPS = ",".join(
    f"arn:aws:sns:eu-west-1:123456789012:app/{app}" for app in ("GCM/notifications-android", "APNS/notifications-ios")
)


def test_push_is_allowed_only_to_the_configured_platform_applications(sam: Translations) -> None:
    configured, none = sam.many([(None, {"PushPlatformApplicationArns": APPS}), (None, None)])
    assert isinstance(configured, Translation) and isinstance(none, Translation)
    assert sorted(_resources_for(configured, "WorkerFunction", "sns:Publish")) == [
        "arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/notifications-ios/*",
        "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/notifications-android/*",
    ]
    assert _resources_for(none, "WorkerFunction", "sns:Publish") == []
    for function in ("ApiFunction", "SchedulerFunction", "FeedbackFunction", "WebSocketFunction"):
        assert _resources_for(configured, function, "sns:Publish") == [], function


def _configuration_set_arn(logical_id: str) -> dict[str, str]:
    """A configuration set's ARN in the translation (pseudo parameters resolved, the set's name still a Ref)."""
    return {"Fn::Sub": "arn:aws:ses:eu-west-1:123456789012:configuration-set/${" + logical_id + "}"}


def test_the_feedback_topic_takes_only_this_stacks_configuration_sets_events(sam: Translations) -> None:
    translation = sam.of()
    (policy,) = translation.created("AWS::SNS::TopicPolicy").values()
    statements = _listed(translation.evaluate(policy["Properties"]["PolicyDocument"])["Statement"])
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert allowed and all(s["Principal"] == {"Service": "ses.amazonaws.com"} for s in allowed)
    sets = translation.created("AWS::SES::ConfigurationSet")
    assert len(sets) == 2  # tracked mail's, and account mail's (no opens, no clicks)
    for statement in allowed:
        equals = statement["Condition"]["StringEquals"]
        assert equals.get("AWS:SourceAccount") == PSEUDO["AWS::AccountId"]
        # Without it, any SES configuration set or identity of the account may publish (fake bounces included).
        sources = sorted(json.dumps(arn) for arn in _listed(equals.get("AWS:SourceArn")))
        assert sources == sorted(json.dumps(_configuration_set_arn(s)) for s in sets), f"SES publishes under {equals}"


# SES's events the feedback function applies to a job, tracking aside (docs/PREFERENCES.md).
FEEDBACK_EVENTS = {"delivery", "bounce", "complaint", "reject", "renderingfailure", "deliverydelay"}


def _published(translation: Translation) -> dict[str, set[str]]:
    """Each configuration set (logical id) and the event types its enabled destinations publish, lower case."""
    out: dict[str, set[str]] = {}
    for name in translation.created("AWS::SES::ConfigurationSetEventDestination"):
        props = translation.properties(name)
        (configuration_set,) = set(references(props["ConfigurationSetName"], subs=True))
        destination = props["EventDestination"]
        if destination.get("Enabled", False):
            out.setdefault(configuration_set, set()).update(t.lower() for t in destination["MatchingEventTypes"])
    return out


def test_account_mail_goes_through_a_configuration_set_that_tracks_no_opens_or_clicks(sam: Translations) -> None:
    # SES wraps every link and adds a pixel to mail sent through a set whose destination takes Open or Click
    # events (or whose engagement metrics are on); a password-reset link would come back in a Click event.
    translation = sam.of()
    env = translation.template.properties("WorkerFunction")["Environment"]["Variables"]
    (tracked,) = set(references(env["SES_CONFIGURATION_SET"], subs=True))
    assert "SES_UNTRACKED_CONFIGURATION_SET" in env, "account mail has no configuration set of its own"
    (untracked,) = set(references(env["SES_UNTRACKED_CONFIGURATION_SET"], subs=True))
    sets = translation.created("AWS::SES::ConfigurationSet")
    assert tracked in sets and untracked in sets and tracked != untracked
    published = _published(translation)
    assert not published.get(untracked, set()) & {"open", "click"}, f"{untracked} publishes {published[untracked]}"
    assert FEEDBACK_EVENTS <= published.get(untracked, set())  # its bounces and complaints still suppress
    assert {"open", "click"} <= published[tracked] and FEEDBACK_EVENTS <= published[tracked]
    vdm = translation.properties(untracked).get("VdmOptions", {}).get("DashboardOptions", {})
    assert vdm.get("EngagementMetrics") == "DISABLED", "the account's engagement metrics would track it anyway"
    resources = _resources_for(translation, "WorkerFunction", "ses:SendEmail")
    for logical_id in (tracked, untracked):  # the worker may send through both
        assert _configuration_set_arn(logical_id) in resources, f"{logical_id} not in {resources}"


# --- the Kafka pollers' way to the DLQ ----------------------------------------------------------------------


def _sqs_endpoints(translation: Translation) -> dict[str, dict[str, Any]]:
    return {
        name: translation.properties(name)
        for name, r in translation.created("AWS::EC2::VPCEndpoint").items()
        if ".sqs" in json.dumps(r["Properties"]["ServiceName"])
    }


@pytest.mark.parametrize("parameters", [VPC, MSK], ids=["self-managed-in-vpc", "msk"])
def test_the_kafka_pollers_reach_the_dlq_through_an_sqs_endpoint(sam: Translations, parameters: dict[str, str]) -> None:
    # Lambda: "You must deploy a VPC endpoint for your on-failure destination service inside your Kafka cluster VPC."
    translation = sam.of(overrides=parameters)
    endpoints = _sqs_endpoints(translation)
    assert len(endpoints) == 1, f"SQS endpoints with {json.dumps(parameters)}: {sorted(endpoints)}"
    (endpoint,) = endpoints.values()
    assert endpoint["ServiceName"] == "com.amazonaws.eu-west-1.sqs"
    assert endpoint["VpcEndpointType"] == "Interface" and endpoint["PrivateDnsEnabled"] is True
    assert endpoint["VpcId"] == VPC_ID
    assert endpoint["SubnetIds"] == SUBNETS.split(",") and endpoint["SecurityGroupIds"] == GROUPS.split(",")
    existing = sam.of(overrides={**parameters, "SqsVpcEndpoint": "existing"})
    assert _sqs_endpoints(existing) == {}
    assert _sqs_endpoints(sam.of()) == {}  # no VPC, no endpoint


# --- secrets: each function reads the parameters it needs, and no other -------------------------------------

ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter"
READS = {
    # Issues and checks user tokens, signs and checks page cursors, reads the tokens of one-click unsubscribe links.
    "ApiFunction": {"UserTokenKeysParameter", "CursorKeysParameter", "UnsubscribeKeysParameter"},
    # Signs the unsubscribe links of the emails it sends, derives short links' codes; calls the Auth service.
    "WorkerFunction": {"UnsubscribeKeysParameter", "ShortLinkKeysParameter", "AuthApiTokenParameter"},
    # Checks the user token of each handshake.
    "WebSocketFunction": {"UserTokenKeysParameter"},
    "SchedulerFunction": set(),
    "FeedbackFunction": set(),
}
ELSEWHERE = {
    "UserTokenKeysParameter": "/acme/notify/user-token-keys",
    "CursorKeysParameter": "/acme/notify/cursor-keys",
    "UnsubscribeKeysParameter": "/acme/notify/unsubscribe-keys",
    "ShortLinkKeysParameter": "/acme/notify/short-link-keys",
}


def _ssm_reads(translation: Translation, function: str) -> list[Any]:
    resources: list[Any] = []
    for statement in _inline_statements(translation, _role(translation, function)):
        actions = _listed(statement["Action"])
        if any(str(a).lower().startswith("ssm:") for a in actions):
            assert statement["Effect"] == "Allow" and actions == ["ssm:GetParameter"], (function, statement)
            resources += _listed(statement["Resource"])
    return resources


@pytest.mark.parametrize("names", ["defaults", "elsewhere"])
def test_each_function_may_read_exactly_the_key_lists_it_uses(sam: Translations, names: str) -> None:
    translation = sam.of(overrides=ELSEWHERE if names == "elsewhere" else None)
    for function, parameters in READS.items():
        expected = sorted(f"{ARN}{translation.parameters[p]}" for p in parameters)
        assert sorted(_ssm_reads(translation, function)) == expected, function
        env = translation.properties(function)["Environment"]["Variables"] if parameters else {}
        for parameter in parameters - {"AuthApiTokenParameter"}:
            variable = re.sub(r"(?<!^)(?=[A-Z])", "_", parameter).upper()  # UserTokenKeysParameter: USER_TOKEN_...
            assert env.get(variable) == translation.parameters[parameter], (function, variable)
    keys = [translation.parameters[p] for p in ELSEWHERE]
    assert len(set(keys)) == len(ELSEWHERE), f"one parameter for two purposes: {keys}"


def test_the_rules_refuse_one_key_list_for_two_purposes(sam: Translations) -> None:
    pairs = [
        ("UserTokenKeysParameter", "UnsubscribeKeysParameter"),
        ("CursorKeysParameter", "UserTokenKeysParameter"),
        *((other, "ShortLinkKeysParameter") for other in ELSEWHERE if other != "ShortLinkKeysParameter"),
    ]
    for a, b in pairs:
        shared = sam.of(overrides={a: "/notifications/signing-key", b: "/notifications/signing-key"})
        assert shared.rule_failures(), f"the Rules accept {a} and {b} naming one parameter"


# --- short links: their table and their base URL -------------------------------------------------------------------

# What each function may do to LinksTable (issue 21, item 1): the API reads a link (GET /l/{code}), makes one (POST
# /api/v1/links) and counts a click on one of its own, one item at a time; the worker stores a render's links in one
# batch of puts. Nothing else touches it, and no one may query, scan or delete it (TTL deletes).
LINKS_TABLE_ACTIONS = {
    "ApiFunction": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"},
    "WorkerFunction": {"dynamodb:BatchWriteItem"},
}


def _actions_on(translation: Translation, function: str, resource: str) -> set[str]:
    """The actions ``function``'s role (its inline policies and any policy attached to it) allows on ``resource``
    (a statement naming it), and any DynamoDB action it allows on every resource."""
    role = _role(translation, function)
    documents = [p["PolicyDocument"] for p in translation.properties(role).get("Policies", [])]
    for policy in translation.created("AWS::IAM::Policy").values():
        props = translation.evaluate(policy["Properties"])
        if {"Ref": role} in props.get("Roles", []):
            documents.append(props["PolicyDocument"])
    actions: set[str] = set()
    for document in documents:
        for statement in _listed(document["Statement"]):
            if statement["Effect"] != "Allow":
                continue
            granted = set(_listed(statement["Action"]))
            resources = _listed(statement.get("Resource", []))
            if resource in set(references(resources, subs=True)):
                actions |= granted
            if any(str(r) in ("*", "arn:aws:dynamodb:*") or str(r).endswith(":table/*") for r in resources):
                actions |= {a for a in granted if a.startswith("dynamodb:")}
    return actions


@pytest.mark.parametrize("parameters", [{}, MSK], ids=["self-managed", "msk"])
def test_each_function_may_do_to_the_links_table_exactly_what_it_needs(
    sam: Translations, parameters: dict[str, str]
) -> None:
    translation = sam.of(overrides=parameters)
    functions = translation.created("AWS::Lambda::Function")
    assert set(LINKS_TABLE_ACTIONS) < set(functions)
    for function in functions:
        granted = _actions_on(translation, function, "LinksTable")
        assert granted == LINKS_TABLE_ACTIONS.get(function, set()), function
    table = translation.created()["LinksTable"]
    assert table["DeletionPolicy"] == "RetainExceptOnCreate" and table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


@pytest.mark.parametrize(
    ("overrides", "worker", "api"),
    [
        ({}, "https://{HttpApi}.execute-api.eu-west-1.amazonaws.com", ""),
        ({"PublicApiUrl": "https://notifications.example.com"}, *["https://notifications.example.com"] * 2),
        (
            {"PublicApiUrl": "https://notifications.example.com", "ShortLinkBaseUrl": "https://sho.rt"},
            *["https://sho.rt"] * 2,
        ),
    ],
    ids=["execute-api", "public-api-url", "short-domain"],
)
def test_short_links_start_with_the_short_domain_else_the_public_api_url(
    sam: Translations, overrides: dict[str, str], worker: str, api: str
) -> None:
    translation = sam.of(overrides=overrides)
    for function, expected in (("WorkerFunction", worker), ("ApiFunction", api)):
        env = translation.properties(function)["Environment"]["Variables"]
        base = env["SHORT_LINK_BASE"]
        text = base["Fn::Sub"].replace("${HttpApi}", "{HttpApi}") if isinstance(base, dict) else base
        assert text == expected, (function, base)
        assert env["LINKS_TABLE"] == {"Ref": "LinksTable"}, function
    # The API answers with the host a request came to (the same execute-api URL): naming its own HttpApi would make
    # the function depend on the API whose routes name the function, a cycle CloudFormation refuses.
    assert "HttpApi" not in set(references(translation.template.properties("ApiFunction"), subs=True))
    worker_env = translation.properties("WorkerFunction")["Environment"]["Variables"]
    assert worker_env["SHORT_LINK_KEYS_PARAMETER"] == translation.parameters["ShortLinkKeysParameter"]
    assert "SHORT_LINK_KEYS_PARAMETER" not in translation.properties("ApiFunction")["Environment"]["Variables"]
    pattern = translation.template.parameters["ShortLinkBaseUrl"]["AllowedPattern"]
    assert re.fullmatch(pattern, "") and re.fullmatch(pattern, "https://sho.rt")
    assert not re.fullmatch(pattern, "http://sho.rt") and not re.fullmatch(pattern, "https://sho.rt/?x=1")


# --- throttles (issue 23): rules in TemplatesTable, the counter on the user's item in NotificationsTable ------------

# What throttling needs of each function's role, beyond what it had: the API puts, lists (one Query of the THROTTLE
# partition) and deletes rules; the worker lists them and counts a send with a conditional UpdateItem.
THROTTLE_ACTIONS = {
    ("ApiFunction", "TemplatesTable"): {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem"},
    ("WorkerFunction", "TemplatesTable"): {"dynamodb:Query"},
    ("WorkerFunction", "NotificationsTable"): {"dynamodb:GetItem", "dynamodb:UpdateItem"},
}


@pytest.mark.parametrize("parameters", [{}, MSK], ids=["self-managed", "msk"])
def test_the_roles_allow_what_throttle_rules_and_counters_need(sam: Translations, parameters: dict[str, str]) -> None:
    translation = sam.of(overrides=parameters)
    for (function, table), needed in THROTTLE_ACTIONS.items():
        missing = needed - _actions_on(translation, function, table)
        assert not missing, f"{function} may not {sorted(missing)} on {table}"


# --- digests (issue 23): buckets in NotificationsTable, swept by the scheduler through the by-user index -------------

# A member's transaction updates the head and the job and puts the member (and a long window's due entry); closing
# updates the head, puts the closed bucket and deletes the due entry; rendering queries the members. The scheduler's
# sweep queries the due entries through the by-user index (it queues their flush tasks on the delay queue, which it
# already did for campaigns when Kafka is down: SQSSendMessagePolicy).
DIGEST_ACTIONS = {
    ("WorkerFunction", "NotificationsTable"): {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    },
    ("WorkerFunction", "TemplatesTable"): {"dynamodb:Query"},
    ("SchedulerFunction", "NotificationsTable"): {"dynamodb:Query"},
}


def _index_actions(translation: Translation, function: str, table: str) -> set[str]:
    """The actions ``function``'s role allows on ``table``'s indexes (a ``…/index/*`` resource naming it)."""
    role = _role(translation, function)
    actions: set[str] = set()
    for policy in translation.properties(role).get("Policies", []):
        for statement in _listed(policy["PolicyDocument"]["Statement"]):
            resources = [r for r in _listed(statement.get("Resource", [])) if "/index/" in json.dumps(r)]
            if statement["Effect"] == "Allow" and table in set(references(resources, subs=True)):
                actions |= set(_listed(statement["Action"]))
    return actions


@pytest.mark.parametrize("parameters", [{}, MSK], ids=["self-managed", "msk"])
def test_the_roles_allow_what_digest_buckets_and_the_sweep_need(sam: Translations, parameters: dict[str, str]) -> None:
    translation = sam.of(overrides=parameters)
    for (function, resource), needed in DIGEST_ACTIONS.items():
        missing = needed - _actions_on(translation, function, resource)
        assert not missing, f"{function} may not {sorted(missing)} on {resource}"
    assert "dynamodb:Query" in _index_actions(translation, "SchedulerFunction", "NotificationsTable")


# --- status webhooks (issue 24): endpoints in TemplatesTable's WEBHOOK partition, attempts in NotificationsTable ----

# The calls the webhook code makes (notify.adapters.dynamodb.webhooks, notify.adapters.sqs), by the function making
# them. The API manages endpoints (PutItem, GetItem, Query, DeleteItem), pages an endpoint's deliveries (a Query) and
# queues a test message. The worker posts: it reads the endpoint, updates its health (failing, disabled), records each
# attempt, re-queues a retry and dead-letters an undeliverable message; it also emits the statuses it records. The
# feedback function emits what SES reports: one Query of the endpoints and the delay queue (SqsDelayQueue's
# SendMessageBatch, which sqs:SendMessage authorizes).
WEBHOOK_CALLS = {
    ("ApiFunction", "TemplatesTable"): {
        "dynamodb:PutItem",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
    },
    ("ApiFunction", "NotificationsTable"): {"dynamodb:Query"},
    ("ApiFunction", "DelayQueue"): {"sqs:SendMessage"},
    ("WorkerFunction", "TemplatesTable"): {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"},
    ("WorkerFunction", "NotificationsTable"): {"dynamodb:PutItem"},
    ("WorkerFunction", "DelayQueue"): {"sqs:SendMessage"},
    ("WorkerFunction", "DeadLetterQueue"): {"sqs:SendMessage"},
    ("FeedbackFunction", "TemplatesTable"): {"dynamodb:Query"},
    ("FeedbackFunction", "DelayQueue"): {"sqs:SendMessage"},
}
DYNAMODB_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
ONLY_WEBHOOKS = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["WEBHOOK"]}}


def _statements_on(translation: Translation, function: str, resource: str) -> list[dict[str, Any]]:
    """The Allow statements of ``function``'s role (inline, or a policy attached to it) that name ``resource``."""
    role = _role(translation, function)
    documents = [p["PolicyDocument"] for p in translation.properties(role).get("Policies", [])]
    for policy in translation.created("AWS::IAM::Policy").values():
        props = translation.evaluate(policy["Properties"])
        if {"Ref": role} in props.get("Roles", []):
            documents.append(props["PolicyDocument"])
    return [
        statement
        for document in documents
        for statement in _listed(document["Statement"])
        if statement["Effect"] == "Allow" and resource in set(references(_listed(statement["Resource"]), subs=True))
    ]


def _allowed(statements: list[dict[str, Any]], action: str) -> bool:
    return any(fnmatch.fnmatch(action, granted) for s in statements for granted in _listed(s["Action"]))


@pytest.mark.parametrize("parameters", [{}, MSK], ids=["self-managed", "msk"])
def test_the_roles_allow_every_call_the_status_webhooks_make(sam: Translations, parameters: dict[str, str]) -> None:
    translation = sam.of(overrides=parameters)
    for (function, resource), calls in WEBHOOK_CALLS.items():
        statements = _statements_on(translation, function, resource)
        missing = sorted(call for call in calls if not _allowed(statements, call))
        assert not missing, f"{function} may not {missing} on {resource}"


def test_the_worker_and_the_feedback_function_reach_no_further_into_templates_than_the_webhook_partition(
    sam: Translations,
) -> None:
    translation = sam.of()
    # The worker reads templates and rules (DynamoDBReadPolicy) and writes only endpoints' health, one UpdateItem each.
    writes = [
        s
        for s in _statements_on(translation, "WorkerFunction", "TemplatesTable")
        if DYNAMODB_WRITES & set(_listed(s["Action"]))
    ]
    assert [(_listed(s["Action"]), s.get("Condition")) for s in writes] == [(["dynamodb:UpdateItem"], ONLY_WEBHOOKS)]
    # The feedback function reads the endpoints, and nothing else of the table.
    reads = _statements_on(translation, "FeedbackFunction", "TemplatesTable")
    assert [(_listed(s["Action"]), s.get("Condition")) for s in reads] == [(["dynamodb:Query"], ONLY_WEBHOOKS)]
    # It sends to the delay queue and to its own DeadLetterQueue (Lambda's failure records), and to no other queue.
    sends = {
        queue
        for queue in translation.created("AWS::SQS::Queue")
        if _allowed(_statements_on(translation, "FeedbackFunction", queue), "sqs:SendMessage")
    }
    assert sends == {"DelayQueue", "DeadLetterQueue"}


# --- the transport (issue 25): Kafka, or an SQS jobs queue -------------------------------------------------------

TRANSPORTS = {
    "self-managed": {},
    "self-managed-in-vpc": VPC,
    "msk": MSK,
    "sqs": SQS,
    "sqs-kafka-left": SQS_WITH_KAFKA_LEFT,
}
JOBS_QUEUE = ("JobsQueue", "WorkerJobsQueueEventSource", "JobsQueueAgeAlarm")
KAFKA_ALARMS = ("KafkaOffsetLagAlarm", "KafkaUnavailableAlarm")
# What each role may do to the jobs queue: the producers send (SendMessageBatch is authorized as sqs:SendMessage),
# the worker consumes it through its event source and sends fan-out pages back.
JOBS_QUEUE_ACTIONS = {
    "ApiFunction": {"sqs:SendMessage"},
    "SchedulerFunction": {"sqs:SendMessage"},
    "WorkerFunction": {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
}


def _transport(sam: Translations, case: str) -> Translation:
    results = sam.many([(None, TRANSPORTS[c]) for c in sorted(TRANSPORTS)])
    translation = dict(zip(sorted(TRANSPORTS), results, strict=True))[case]
    assert isinstance(translation, Translation), translation
    return translation


def _kafka_grants(translation: Translation) -> list[str]:
    """Where a role or policy of the translation grants a Kafka or Secrets Manager action."""
    found = []
    for name, resource in translation.created().items():
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy"):
            text = json.dumps(translation.evaluate(resource.get("Properties", {})))
            found += [f"{name}: {action}" for action in ("kafka", "secretsmanager") if f'"{action}' in text]
    return found


@pytest.mark.parametrize("case", sorted(TRANSPORTS))
def test_the_transport_parameter_chooses_what_is_created(sam: Translations, case: str) -> None:
    translation = _transport(sam, case)
    assert translation.rule_failures() == [], case
    created = translation.created()
    mappings = translation.created("AWS::Lambda::EventSourceMapping")
    kafka = sorted(name for name, m in mappings.items() if "Topics" in m["Properties"])
    sqs = case.startswith("sqs")
    env = {
        name: translation.properties(name)["Environment"]["Variables"]
        for name in translation.created("AWS::Lambda::Function")
    }
    for name, variables in env.items():
        assert variables["TRANSPORT"] == ("sqs" if sqs else "kafka"), name
        assert variables["JOBS_QUEUE_URL"] == ({"Ref": "JobsQueue"} if sqs else ""), name
    if not sqs:  # as before the transport: one Kafka mapping, nothing of the jobs queue
        assert len(kafka) == 1, kafka
        assert not set(JOBS_QUEUE) & set(created) and "JobsQueueUrl" not in _outputs(translation)
        assert set(KAFKA_ALARMS) <= set(created)
        return
    # No cluster, no VPC, no poller: nothing of Kafka is created, and nothing grants a Kafka action or secret.
    assert kafka == [] and set(JOBS_QUEUE) <= set(created)
    assert not any("ProvisionedPollerConfig" in m["Properties"] for m in mappings.values())
    assert not set(KAFKA_ALARMS) & set(created)
    assert not translation.created("AWS::EC2::VPCEndpoint")
    assert not [name for name in env if translation.properties(name).get("VpcConfig")]
    assert _kafka_grants(translation) == []
    assert _outputs(translation)["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}


def _outputs(translation: Translation) -> dict[str, Any]:
    """The outputs CloudFormation reports (their Condition holds)."""
    return {
        k: v
        for k, v in translation.template.outputs.items()
        if "Condition" not in v or translation.template.condition(v["Condition"], translation.parameters)
    }


@pytest.mark.parametrize("concurrency", ["20", "250"])
def test_the_worker_reads_the_jobs_queue_through_its_alias_with_partial_batch_failures(
    sam: Translations, concurrency: str
) -> None:
    translation = sam.of(overrides={**SQS, "JobsQueueMaximumConcurrency": concurrency})
    resources = translation.created()
    jobs = {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    (name,) = [
        n
        for n in translation.created("AWS::Lambda::EventSourceMapping")
        if translation.properties(n).get("EventSourceArn") == jobs
    ]
    props = translation.properties(name)
    alias = resources[props["FunctionName"]["Ref"]]
    assert alias["Type"] == "AWS::Lambda::Alias" and alias["Properties"]["FunctionName"] == {"Ref": "WorkerFunction"}
    assert (props["BatchSize"], props["MaximumBatchingWindowInSeconds"]) == (10, 1)
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(props["ScalingConfig"]["MaximumConcurrency"]) == int(concurrency)
    declared = translation.template.parameters["JobsQueueMaximumConcurrency"]
    assert (declared["MinValue"], declared["MaxValue"]) == (2, 1000)  # Lambda's bounds for an SQS source
    # The queue: five receives, then the DLQ; visibility six times the worker's timeout; encrypted; kept.
    queue = resources["JobsQueue"]
    assert (queue["DeletionPolicy"], queue["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    queue_props = translation.properties("JobsQueue")
    assert queue_props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue_props["VisibilityTimeout"] >= 6 * translation.properties("WorkerFunction")["Timeout"]
    assert queue_props["SqsManagedSseEnabled"] is True
    assert "FifoQueue" not in queue_props


def test_the_jobs_queue_mapping_is_created_after_the_permissions_lambda_checks(sam: Translations) -> None:
    translation = sam.of(overrides=SQS)
    role = _role(translation, "WorkerFunction")
    before = _depends_on(translation, "WorkerJobsQueueEventSource")
    assert role in before
    # In the role's own statements, not only in the managed policy SAM attaches for the delay queue's event.
    consume = JOBS_QUEUE_ACTIONS["WorkerFunction"] - {"sqs:SendMessage"}
    assert consume <= _actions_on(translation, "WorkerFunction", "JobsQueue")


@pytest.mark.parametrize("case", sorted(TRANSPORTS))
def test_each_role_may_do_exactly_its_part_to_the_jobs_queue(sam: Translations, case: str) -> None:
    translation = _transport(sam, case)
    for function in translation.created("AWS::Lambda::Function"):
        granted = {
            action
            for statement in _statements_on(translation, function, "JobsQueue")
            for action in _listed(statement["Action"])
        }
        expected = JOBS_QUEUE_ACTIONS.get(function, set()) if case.startswith("sqs") else set()
        assert granted == expected, (case, function)


def test_with_sqs_no_kafka_parameter_is_needed_and_with_kafka_the_brokers_are() -> None:
    tpl = Template(load_template())
    required = {name for name, p in tpl.parameters.items() if "Default" not in p}
    assert not {name for name in required if "Kafka" in name or name in ("MskClusterArn", "SubnetIds")}, required
    # Only what has no default, and Transport: every Kafka rule holds for kafka only.
    answers = {"Transport": "sqs", "AuthApiUrl": "https://auth.example.com", "SenderEmail": "n@example.com"}
    assert tpl.rule_failures({**tpl.parameter_defaults(), **answers}) == []
    failures = tpl.rule_failures({**tpl.parameter_defaults(), **answers, "Transport": "kafka"})
    assert failures and all("KafkaBootstrapServers" in f for f in failures), failures
    # Every refused Kafka or network set is accepted as it is with sqs: those parameters are read by nothing.
    for case, overrides in {**REFUSED, **KAFKA_AUTH_REFUSED}.items():
        assert tpl.rule_failures(parameter_values(tpl, {**overrides, "Transport": "sqs"})) == [], case


# --- DrainTransport: switching Transport without losing what waits in the old one --------------------------------

# Step 1 of a switch away from Kafka (docs/DEPLOY.md#transport): Transport sqs, the worker still reading the topic.
LEAVING_KAFKA = {"Transport": "sqs", "DrainTransport": "kafka"}
# Step 1 of a switch away from SQS: Transport kafka, the worker still reading the jobs queue.
LEAVING_SQS = {"DrainTransport": "sqs"}
# The Kafka deployments a stack may leave (each as it was before step 1).
KAFKA_LEFT = {
    "self-managed": {},
    "self-managed-in-vpc": VPC,
    "self-managed-scram-private-ca-in-vpc": {**_SCRAM512, **_ROOT_CA, **VPC},
    "msk": MSK,
}
# What step 1 removes when leaving Kafka: only what publishes to it (the producers' MSK grant, their circuit's alarm).
PUBLISHING_TO_KAFKA = {"MskProducerPolicy", "KafkaUnavailableAlarm"}
# The actions a role needs to reach Kafka: the cluster, the pollers' network, the Kafka secrets and their keys.
KAFKA_REACH = ("kafka", "ec2:", "secretsmanager:", "kms:")


def _drains(sam: Translations) -> dict[str, Translation]:
    """Every Kafka deployment before step 1 (``<case>``) and while its topic is drained (``<case>-drained``), and
    Transport kafka draining the jobs queue (``sqs-drained``, ``msk-sqs-drained``), in one run of the translator."""
    requests = {case: values for case, values in KAFKA_LEFT.items()}
    requests |= {f"{case}-drained": {**values, **LEAVING_KAFKA} for case, values in KAFKA_LEFT.items()}
    requests |= {"sqs": SQS, "sqs-drained": LEAVING_SQS, "msk-sqs-drained": {**MSK, **LEAVING_SQS}}
    names = sorted(requests)
    results = sam.many([(None, requests[name]) for name in names])
    out = {name: result for name, result in zip(names, results, strict=True) if isinstance(result, Translation)}
    assert set(out) == set(names), [r for r in results if not isinstance(r, Translation)]
    return out


def _kafka_statements(translation: Translation, function: str) -> list[str]:
    """The statements of ``function``'s role (inline or attached) that allow reaching Kafka, as sorted JSON."""
    role = _role(translation, function)
    documents = [p["PolicyDocument"] for p in translation.properties(role).get("Policies", [])]
    for policy in translation.created("AWS::IAM::Policy").values():
        props = translation.evaluate(policy["Properties"])
        if {"Ref": role} in props.get("Roles", []):
            documents.append(props["PolicyDocument"])
    return sorted(
        json.dumps(statement, sort_keys=True)
        for document in documents
        for statement in _listed(document["Statement"])
        if any(str(action).startswith(KAFKA_REACH) for action in _listed(statement["Action"]))
    )


def _environments(translation: Translation) -> dict[str, dict[str, Any]]:
    return {
        name: translation.properties(name)["Environment"]["Variables"]
        for name in translation.created("AWS::Lambda::Function")
    }


@pytest.mark.parametrize("case", sorted(KAFKA_LEFT))
def test_draining_kafka_keeps_its_event_source_and_all_it_needs_while_everything_publishes_to_sqs(
    sam: Translations, case: str
) -> None:
    translations = _drains(sam)
    before, drained = translations[case], translations[f"{case}-drained"]
    assert drained.rule_failures() == [], case
    # The very mapping of the Kafka deployment: same logical id, same properties, so CloudFormation leaves it be and
    # it goes on from the consumer group's committed offsets.
    assert _kafka_mapping(drained) == _kafka_mapping(before)
    # Everything else of Kafka stays too (MSK's consumer policy, the SQS endpoint, the offset lag alarm), but what
    # publishes to Kafka; and the jobs queue comes, with its event source.
    assert set(before.created()) - set(drained.created()) == PUBLISHING_TO_KAFKA & set(before.created())
    assert set(drained.created()) - set(before.created()) == set(JOBS_QUEUE)
    # The worker's role reaches Kafka as before (the pollers use it) but to write to the topic; the producers' roles
    # no longer reach it at all.
    consuming = [s for s in _kafka_statements(before, "WorkerFunction") if "kafka-cluster:WriteData" not in s]
    assert _kafka_statements(drained, "WorkerFunction") == consuming
    assert _secret_reads(drained, _role(drained, "WorkerFunction")) == _secret_reads(
        before, _role(before, "WorkerFunction")
    )
    for producer in ("ApiFunction", "SchedulerFunction"):
        assert _kafka_statements(drained, producer) == [], producer
    # Every function publishes to the jobs queue, from outside any VPC, and each role does its part to the queue.
    for name, variables in _environments(drained).items():
        assert (variables["TRANSPORT"], variables["JOBS_QUEUE_URL"]) == ("sqs", {"Ref": "JobsQueue"}), name
        assert not drained.properties(name).get("VpcConfig"), name
    for function, actions in JOBS_QUEUE_ACTIONS.items():
        assert _actions_on(drained, function, "JobsQueue") == actions, function
    assert _outputs(drained)["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}


@pytest.mark.parametrize("case", ["sqs-drained", "msk-sqs-drained"])
def test_draining_the_jobs_queue_keeps_its_event_source_and_the_grant_to_consume_while_everything_publishes_to_kafka(
    sam: Translations, case: str
) -> None:
    translations = _drains(sam)
    drained, sqs = translations[case], translations["sqs"]
    kafka = translations["msk" if case.startswith("msk") else "self-managed"]
    assert drained.rule_failures() == [], case
    # Kafka's deployment, whole, and the jobs queue's consumer side: the queue, its mapping as it was, its alarm.
    assert set(drained.created()) - set(kafka.created()) == set(JOBS_QUEUE)
    assert set(kafka.created()) <= set(drained.created())
    mapping = "WorkerJobsQueueEventSource"
    assert drained.properties(mapping) == sqs.properties(mapping)
    assert drained.properties("JobsQueue") == sqs.properties("JobsQueue")
    assert _outputs(drained)["JobsQueueUrl"]["Value"] == {"Ref": "JobsQueue"}
    # The worker may consume it, and nobody may send to it any more.
    consume = JOBS_QUEUE_ACTIONS["WorkerFunction"] - {"sqs:SendMessage"}
    for function in drained.created("AWS::Lambda::Function"):
        expected = consume if function == "WorkerFunction" else set()
        assert _actions_on(drained, function, "JobsQueue") == expected, function
    for name, variables in _environments(drained).items():
        assert (variables["TRANSPORT"], variables["JOBS_QUEUE_URL"]) == ("kafka", ""), name
        assert drained.properties(name).get("VpcConfig") == kafka.properties(name).get("VpcConfig"), name
    # Both event sources wait for what Lambda checks when it creates them.
    assert _role(drained, "WorkerFunction") in _depends_on(drained, mapping)


@pytest.mark.parametrize("transport", ["kafka", "sqs"])
def test_the_rules_refuse_draining_the_transport_in_use(transport: str) -> None:
    tpl = Template(load_template())
    values = parameter_values(tpl, {"Transport": transport, "DrainTransport": transport})
    failures = tpl.rule_failures(values)
    assert failures and all(f.startswith("DrainTransportIsTheOneBeingLeft") for f in failures), failures
    assert tpl.rule_failures({**values, "DrainTransport": "none"}) == []


@pytest.mark.parametrize("case", sorted({**REFUSED, **KAFKA_AUTH_REFUSED, "no-brokers": {}}))
def test_the_rules_ask_a_kafka_drain_for_the_kafka_parameters_kafka_needs(case: str) -> None:
    tpl = Template(load_template())
    overrides = {**REFUSED, **KAFKA_AUTH_REFUSED}.get(case, {"KafkaBootstrapServers": ""})
    # Refused while Kafka is drained (its event source needs them as it did), accepted once it is left for good.
    assert tpl.rule_failures(parameter_values(tpl, {**overrides, **LEAVING_KAFKA})), case
    assert tpl.rule_failures(parameter_values(tpl, {**overrides, "Transport": "sqs"})) == [], case


@pytest.mark.parametrize("case", ["msk-drained", "self-managed-in-vpc-drained", "msk-sqs-drained"])
def test_each_mapping_of_a_drain_is_created_after_the_permissions_lambda_checks(sam: Translations, case: str) -> None:
    translation = _drains(sam)[case]
    resources = translation.created()
    mappings = translation.created("AWS::Lambda::EventSourceMapping")
    assert len([m for m in mappings.values() if "Topics" in m["Properties"]]) == 1  # Kafka's, and the queues'
    missing = []
    for name, mapping in mappings.items():
        function = resources[translation.evaluate(mapping["Properties"]["FunctionName"])["Ref"]]["Properties"]
        role = _role(translation, function["FunctionName"]["Ref"])
        grants, before = _grants(translation, role), _depends_on(translation, name)
        for action in sorted(_checked_at_creation(translation.properties(name))):
            granting = {g for g, actions in grants.items() if any(fnmatch.fnmatch(action, a) for a in actions)}
            if not granting & before:
                missing.append(f"{name} needs {action}, granted by {sorted(granting)}, which it does not wait for")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    ("case", "metric"), [("msk-drained", "OffsetLag"), ("msk-sqs-drained", "ApproximateNumberOfMessagesDelayed")]
)
def test_the_dashboard_shows_the_transport_being_drained_and_every_alarm(
    sam: Translations, case: str, metric: str
) -> None:
    translation = _drains(sam)[case]
    body = translation.properties("Dashboard")["DashboardBody"]
    text = body["Fn::Sub"] if isinstance(body, dict) else body
    assert isinstance(text, str), body
    created = set(translation.created())
    for placeholder in re.findall(r"\$\{([^}]+)\}", text):  # only what this deployment creates
        assert placeholder.split(".", 1)[0] in created, placeholder
    parsed = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))
    (alarms,) = [w["properties"]["alarms"] for w in parsed["widgets"] if w["type"] == "alarm"]
    assert len(alarms) == len(translation.created("AWS::CloudWatch::Alarm"))
    (widget,) = [w for w in parsed["widgets"] if w["properties"].get("title", "").startswith("Draining")]
    assert metric in [m[1] for m in widget["properties"]["metrics"]]
    assert "JobsQueue" in text and "OffsetLag" in text  # the transport in use has its widget as before

"""Create template.yaml's tables, queues and topic in the local peers, and resolve each function's environment."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import boto3

from local.cfn import Template
from local.events import ACCOUNT, REGION


@dataclass(frozen=True)
class Infra:
    """Physical names of the created resources, by logical id."""

    tables: dict[str, str]
    queues: dict[str, str]  # logical id → URL
    queue_arns: dict[str, str]
    parameters: dict[str, str]
    configuration_sets: dict[str, str] = field(default_factory=dict)  # SES configuration sets, by logical id
    # API Gateway APIs served by the local stack (logical id → its local base URL, e.g. http://127.0.0.1:3002) and
    # their stages (logical id → stage name): an execute-api URL of one resolves to the local gateway.
    apis: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)


STATE_FILE = "stack.json"


@dataclass(frozen=True)
class StackState:
    """What a running local stack leaves in its state directory (``stack.json``) for other processes."""

    pid: int
    endpoint: str  # moto server (AWS_ENDPOINT_URL)
    bootstrap: str  # Kafka
    api_url: str
    auth_url: str
    infra: Infra

    @classmethod
    def from_json(cls, text: str) -> StackState:
        data = json.loads(text)
        return cls(**{**data, "infra": Infra(**data["infra"])})


def planned_infra(
    template: Template, prefix: str, parameters: dict[str, str], apis: Optional[Mapping[str, str]] = None
) -> Infra:
    """The :class:`Infra` that :func:`create_resources` would return, computed: nothing is created or called.

    Each table, queue and SES configuration set that these ``parameters`` create (a resource whose Condition is
    false is left out, as CloudFormation leaves it: the jobs queue of Transport sqs, say) is named
    ``<prefix>-<logical id>``; a queue's URL and ARN are SQS's own in the local account and region (moto answers
    with a URL on its own host, which create_resources keeps). ``apis`` maps API Gateway APIs to their base URLs,
    as for create_resources.
    """

    def name(logical_id: str) -> str:
        return f"{prefix}-{logical_id}"

    queues = {logical_id: name(logical_id) for logical_id in template.resources("AWS::SQS::Queue", parameters)}
    return Infra(
        tables={logical_id: name(logical_id) for logical_id in template.resources("AWS::DynamoDB::Table", parameters)},
        queues={logical_id: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{q}" for logical_id, q in queues.items()},
        queue_arns={logical_id: f"arn:aws:sqs:{REGION}:{ACCOUNT}:{q}" for logical_id, q in queues.items()},
        parameters=parameters,
        configuration_sets={
            logical_id: name(logical_id) for logical_id in template.resources("AWS::SES::ConfigurationSet", parameters)
        },
        apis=dict(apis or {}),
        stages={
            logical_id: str(resource["Properties"]["StageName"])
            for logical_id, resource in template.resources("AWS::ApiGatewayV2::Stage").items()
        },
    )


def create_resources(
    template: Template, prefix: str, parameters: dict[str, str], apis: Optional[Mapping[str, str]] = None
) -> Infra:
    """Create every DynamoDB table and SQS queue of the template (idempotently) at boto3's endpoint.

    The names are :func:`planned_infra`'s; ``apis`` maps the template's API Gateway APIs that the local stack
    serves to their local base URLs.
    """
    plan = planned_infra(template, prefix, parameters, apis)
    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    for logical_id, resource in template.resources("AWS::DynamoDB::Table", parameters).items():
        name = plan.tables[logical_id]
        props = resource["Properties"]
        kwargs: dict[str, Any] = {
            "TableName": name,
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        try:
            dynamodb.create_table(**kwargs)
        except dynamodb.exceptions.ResourceInUseException:
            pass
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)

    queues: dict[str, str] = {}
    arns: dict[str, str] = {}
    pending = dict(template.resources("AWS::SQS::Queue", parameters))
    while pending:  # queues named in a RedrivePolicy first
        for logical_id, resource in list(pending.items()):
            props = dict(resource.get("Properties", {}))
            redrive = props.pop("RedrivePolicy", None)
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] if redrive else None
            if target is not None and target not in arns:
                continue
            attributes = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items()}
            if redrive:
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": arns[str(target)], "maxReceiveCount": int(redrive["maxReceiveCount"])}
                )
            name = resolve({"Fn::GetAtt": [logical_id, "QueueName"]}, plan)
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            queues[logical_id] = url
            arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            del pending[logical_id]
    sesv2 = boto3.client("sesv2")
    for name in plan.configuration_sets.values():
        try:
            sesv2.create_configuration_set(ConfigurationSetName=name)
        except sesv2.exceptions.AlreadyExistsException:
            pass
    return replace(plan, queues=queues, queue_arns=arns)


# `https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}<rest>`: an API's own URL (wss:// for WebSocket).
_EXECUTE_API = re.compile(
    r"^(?P<scheme>https|wss)://\$\{(?P<api>[A-Za-z0-9]+)\}\.execute-api\.\$\{AWS::Region\}"
    r"\.\$\{AWS::URLSuffix\}(?P<rest>.*)$"
)
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def _substitute(text: str, infra: Infra) -> str:
    """``Fn::Sub`` of a string: an execute-api URL of an API the local stack serves becomes its local URL."""
    found = _EXECUTE_API.match(text)
    if found and found["api"] in infra.apis:
        base = infra.apis[found["api"]]
        if found["scheme"] == "wss":
            base = "ws" + base.removeprefix("http")
        text = base.rstrip("/") + found["rest"]

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "AWS::URLSuffix":
            return "amazonaws.com"
        if name == "AWS::Partition":
            return "aws"
        if "." in name:
            return resolve({"Fn::GetAtt": name.split(".", 1)}, infra)
        return resolve({"Ref": name}, infra)

    return _PLACEHOLDER.sub(value, text)


def resolve(value: Any, infra: Infra) -> str:
    """A template value the way CloudFormation would resolve it for an environment variable."""
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        if logical_id in infra.queues and attribute in ("Arn", "QueueUrl", "QueueName"):
            url = infra.queues[logical_id]
            return {"Arn": infra.queue_arns[logical_id], "QueueUrl": url, "QueueName": url.rsplit("/", 1)[-1]}[
                attribute
            ]
        if logical_id in infra.tables and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{infra.tables[logical_id]}"
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        return _substitute(value["Fn::Sub"], infra)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        ref = value["Ref"]
        if ref in infra.parameters:
            return infra.parameters[ref]
        if ref in infra.tables:
            return infra.tables[ref]
        if ref in infra.queues:
            return infra.queues[ref]
        if ref in infra.configuration_sets:
            return infra.configuration_sets[ref]
        if ref in infra.stages:
            return infra.stages[ref]
        if ref == "AWS::Region":
            return REGION
        if ref == "AWS::AccountId":
            return ACCOUNT
    raise ValueError(f"the local stack cannot resolve {value!r}")


def queue_url(value: Any, infra: Infra) -> str:
    """The URL of the queue a template value names (its ARN, its URL or a ``Ref``/``Fn::GetAtt`` of it)."""
    resolved = resolve(value, infra)
    for logical_id, arn in infra.queue_arns.items():
        if resolved in (arn, infra.queues[logical_id]):
            return infra.queues[logical_id]
    raise ValueError(f"{value!r} is no queue of the local stack (only SQS on-failure destinations are emulated)")


def own_origins(api_port: int) -> tuple[str, ...]:
    """The origins of the local stack's own pages (the console, the demo inbox): its API's, under either host name."""
    return (f"http://127.0.0.1:{api_port}", f"http://localhost:{api_port}")


def local_environment(origins: Sequence[str] = ()) -> dict[str, dict[str, str]]:
    """What the local stack changes in the template's environment: the dev-only route that hands out user tokens
    without an API key (POST /dev/users/{user_id}/tokens, for the demo inbox page) is on here, and only here, for
    browsers on the stack's own ``origins`` only (pages of any other site get a 403); and status webhooks may go to
    ``http://127.0.0.1`` (the demo receiver), which AWS never allows."""
    loopback = {"WEBHOOK_ALLOW_HTTP_LOOPBACK": "true"}
    return {
        "ApiFunction": {"DEV_USER_TOKENS": "true", "DEV_USER_TOKEN_ORIGINS": ",".join(origins), **loopback},
        "WorkerFunction": loopback,
    }


def function_environments(
    template: Template, infra: Infra, overrides: Optional[Mapping[str, Mapping[str, str]]] = None
) -> dict[str, dict[str, str]]:
    """Each function's environment variables, resolved, with the local stack's ``overrides`` (by default
    ``local_environment()``, which names no origin: the dev token route then answers no browser)."""
    return {
        name: {
            **{
                key: resolve(template.evaluate(value, infra.parameters), infra)  # Fn::If on a Condition, then Refs
                for key, value in function.environment.items()
            },
            **(local_environment() if overrides is None else overrides).get(name, {}),
        }
        for name, function in template.functions().items()
    }


def merged_environment(environments: dict[str, dict[str, str]]) -> dict[str, str]:
    """The union of the functions' environments; they may share a process only if no name differs."""
    merged: dict[str, str] = {}
    for function, env in environments.items():
        for key, value in env.items():
            if key in merged and merged[key] != value:
                raise ValueError(f"{function} sets {key}={value!r}, another function {merged[key]!r}")
            merged[key] = value
    return merged


def create_topic(bootstrap: str, topic: str, partitions: int = 3, options: Optional[Mapping[str, Any]] = None) -> None:
    """Create the Kafka topic if it does not exist (``options``: how to connect to a secured broker)."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap, api_version=(2, 8, 0), request_timeout_ms=10_000, **dict(options or {})
    )
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def verify_sender(address: str) -> None:
    """Verify the SES sender identity (moto refuses mail from unverified senders, like SES's sandbox)."""
    boto3.client("sesv2").create_email_identity(EmailIdentity=address)


def put_secret(name: str, value: str) -> None:
    """Store a SecureString in SSM Parameter Store (what an operator does once for a deployed stack)."""
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

"""Reading template.yaml: a YAML loader for CloudFormation's short-form tags, a view of its resources, and
evaluating its Conditions. The one reader of the template for the local runner, the tests, the tools and the
benchmarks.

Pure Python (PyYAML only). Intrinsic functions load in their long form, as CloudFormation's JSON has them:
``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` ->
``{"Fn::Sub": "s"}``, ``!If [c, a, b]`` -> ``{"Fn::If": [...]}``, ``!Condition C`` -> ``{"Condition": "C"}``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

NO_VALUE = {"Ref": "AWS::NoValue"}
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
# Functions of resources and of the deployment, not of parameters: evaluate() leaves them as they are.
_LEFT_TO_THE_CALLER = ("Fn::GetAtt", "Fn::Sub", "Fn::ImportValue", "Fn::Base64", "Fn::GetAZs", "Fn::Cidr")


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that also understands ``!Ref``, ``!GetAtt``, ``!Sub``, ``!If`` and the other short forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - YAML has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML text."""
    return yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, intrinsic functions in their long form."""
    data = load_yaml(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return data


def references(value: Any, *, subs: bool = False) -> Iterator[str]:
    """Every logical id or parameter that ``value`` names through ``Ref`` or ``Fn::GetAtt`` (nested too), and with
    ``subs`` through the ``${...}`` of an ``Fn::Sub`` (the variable's name before any ``.``) too."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                yield str(target)
            elif key == "Fn::Sub" and subs:
                text = inner if isinstance(inner, str) else inner[0]
                yield from (name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(text))
                if isinstance(inner, list):
                    yield from references(inner[1], subs=True)
            else:
                yield from references(inner, subs=subs)
    elif isinstance(value, list):
        for item in value:
            yield from references(item, subs=subs)


@dataclass(frozen=True)
class Function:
    """An ``AWS::Serverless::Function`` with the Globals merged in (environment, and so on)."""

    logical_id: str
    handler: str
    code_uri: str
    environment: dict[str, Any]
    events: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def timeout(self) -> int:
        """Timeout in seconds, Lambda's default (3) when neither the function nor Globals sets it."""
        return int(self.properties.get("Timeout", 3))

    @property
    def memory_size(self) -> int:
        """MemorySize in MB, Lambda's default (128) when neither the function nor Globals sets it."""
        return int(self.properties.get("MemorySize", 128))

    def events_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: e for name, e in self.events.items() if e.get("Type") == kind}


MSK = "aws:kafka"
SELF_MANAGED_KAFKA = "SelfManagedKafka"


@dataclass(frozen=True)
class KafkaSource:
    """A function's active Kafka event source mapping, as Lambda would run it with given parameters.

    ``event_source`` is the ``eventSource`` of the events it delivers (``aws:kafka`` for Amazon MSK,
    ``SelfManagedKafka`` otherwise). Template values that name resources (``topic``, ``on_failure``) are left
    for the caller to resolve; values that name parameters are resolved.
    """

    logical_id: str
    event_source: str
    event_source_arn: Optional[str]  # MSK's cluster ARN; self-managed Kafka events carry none
    bootstrap_servers: Optional[str]  # the self-managed mapping's endpoints, comma-separated
    topic: Any
    batch_size: int
    consumer_group: str
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # Lambda's defaults: retry until the record expires
    maximum_record_age_seconds: int = -1
    bisect_batch_on_function_error: bool = False
    on_failure: Any = None  # DestinationConfig.OnFailure.Destination (a template value), if any
    pollers: Optional[tuple[int, int]] = None  # ProvisionedPollerConfig (MinimumPollers, MaximumPollers)
    # SourceAccessConfigurations naming secrets (SASL_SCRAM_*_AUTH, CLIENT_CERTIFICATE_TLS_AUTH,
    # SERVER_ROOT_CA_CERTIFICATE): (Type, secret ARN), which the pollers log in and verify the brokers with.
    secrets: tuple[tuple[str, str], ...] = ()

    @property
    def retry_limit(self) -> Optional[int]:
        """Retries after the first invocation; None for never giving up.

        Lambda caps "infinite" (-1) at 10 retries when the mapping has an on-failure destination.
        """
        if self.maximum_retry_attempts >= 0:
            return self.maximum_retry_attempts
        return 10 if self.on_failure is not None else None

    @property
    def record_age_limit(self) -> Optional[int]:
        return self.maximum_record_age_seconds if self.maximum_record_age_seconds >= 0 else None


@dataclass(frozen=True)
class SqsSource:
    """A function's SQS event source mapping: a SAM ``Type: SQS`` event or a plain ``AWS::Lambda::EventSourceMapping``
    whose EventSourceArn is a queue of the template, with its values as Lambda reads them (SAM passes an SQS
    event's properties to the mapping it generates unchanged)."""

    logical_id: str  # the mapping's (SAM names an event's ``<function><event>``)
    queue: str  # the queue's logical id
    batch_size: int = 10  # Lambda's default for SQS
    batching_window_seconds: int = 0  # MaximumBatchingWindowInSeconds
    report_batch_item_failures: bool = False
    maximum_concurrency: Optional[int] = None  # ScalingConfig.MaximumConcurrency; None: no bound of its own


@dataclass(frozen=True)
class Template:
    """The parts of template.yaml that tests and local wiring read."""

    data: dict[str, Any]

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("Parameters", {}))

    @property
    def conditions(self) -> dict[str, Any]:
        return dict(self.data.get("Conditions", {}))

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("Outputs", {}))

    def resources(
        self, kind: Optional[str] = None, parameters: Optional[Mapping[str, str]] = None
    ) -> dict[str, dict[str, Any]]:
        """Resources by logical id, all of them or those of type ``kind``; with ``parameters``, only those
        CloudFormation creates with these values (no Condition, or one that holds)."""
        resources: dict[str, dict[str, Any]] = self.data["Resources"]
        return {
            k: v
            for k, v in resources.items()
            if (kind is None or v["Type"] == kind)
            and (parameters is None or "Condition" not in v or self.condition(v["Condition"], parameters))
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.data["Resources"][logical_id].get("Properties", {}))

    def parameter_defaults(self) -> dict[str, str]:
        return {k: _parameter_string(v["Default"]) for k, v in self.parameters.items() if "Default" in v}

    def globals_function(self) -> dict[str, Any]:
        return dict(self.data.get("Globals", {}).get("Function", {}))

    def functions(self) -> dict[str, Function]:
        """Every serverless function, its environment being Globals' variables updated by its own."""
        glob = self.globals_function()
        glob_env = glob.get("Environment", {}).get("Variables", {})
        out = {}
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            props = {**glob, **resource["Properties"]}
            env = {**glob_env, **resource["Properties"].get("Environment", {}).get("Variables", {})}
            out[logical_id] = Function(
                logical_id, props["Handler"], props["CodeUri"], env, dict(props.get("Events", {})), props
            )
        return out

    def http_routes(self, function: str) -> list[tuple[str, str]]:
        """(method, path) of the function's HttpApi events, e.g. ``("ANY", "/{proxy+}")``."""
        return [
            (str(e["Properties"].get("Method", "ANY")).upper(), str(e["Properties"]["Path"]))
            for e in self.functions()[function].events_of_type("HttpApi").values()
        ]

    def http_cors(self, function: str, parameters: Mapping[str, str]) -> Any:
        """The CORS configuration of the HttpApi the function's HttpApi events belong to, evaluated (or None).

        In ``CorsConfiguration``'s words (``AllowOrigins``, ``MaxAge``...), whether the template sets SAM's
        ``CorsConfiguration`` or the ``x-amazon-apigateway-cors`` object of the API's OpenAPI body, which API
        Gateway imports as it is (camelCase keys).
        """
        apis = {
            str(e["Properties"]["ApiId"]["Ref"])
            for e in self.functions()[function].events_of_type("HttpApi").values()
            if isinstance(e["Properties"].get("ApiId"), dict)
        }
        for api in sorted(apis):
            props = self.properties(api)
            if props.get("CorsConfiguration") is not None:
                return self.evaluate(props["CorsConfiguration"], parameters)
            body = props.get("DefinitionBody")
            if isinstance(body, dict) and isinstance(body.get("x-amazon-apigateway-cors"), dict):
                cors = self.evaluate(body["x-amazon-apigateway-cors"], parameters)
                return {key[0].upper() + key[1:]: value for key, value in cors.items()}
        return None

    def websocket_apis(self) -> dict[str, str]:
        """Each ``AWS::ApiGatewayV2::Api`` of protocol WEBSOCKET, with the name of its stage (logical id → name)."""
        stages = self.resources("AWS::ApiGatewayV2::Stage").values()
        return {
            api: next(str(s["Properties"]["StageName"]) for s in stages if s["Properties"]["ApiId"] == {"Ref": api})
            for api, resource in self.resources("AWS::ApiGatewayV2::Api").items()
            if resource["Properties"].get("ProtocolType") == "WEBSOCKET"
        }

    def websocket_function(self, api: str) -> str:
        """The function the WebSocket API's routes invoke (its integration's URI names it, or its alias)."""
        for resource in self.resources("AWS::ApiGatewayV2::Integration").values():
            props = resource["Properties"]
            if props.get("ApiId") != {"Ref": api}:
                continue
            for target in references(props.get("IntegrationUri")):
                name = target.split(".", 1)[0]
                if name in self.functions():
                    return name
        raise LookupError(f"{api} has no integration with a function of the template")

    def function_refs(self, function: str) -> list[dict[str, str]]:
        """The ``Ref``s that name ``function`` or its alias: ``{"Ref": "F"}``, SAM's ``{"Ref": "F.Alias"}`` and the
        alias SAM generates for ``AutoPublishAlias: live``, ``{"Ref": "FAliaslive"}`` (a published version, which
        SnapStart needs; locally the same handler)."""
        refs = [{"Ref": function}]
        if function not in self.functions():  # SAM's translation: the AWS::Lambda::Alias resources of the function
            return refs + [
                {"Ref": alias}
                for alias, resource in self.resources("AWS::Lambda::Alias").items()
                if resource["Properties"].get("FunctionName") == {"Ref": function}
            ]
        alias = self.functions()[function].properties.get("AutoPublishAlias")
        if isinstance(alias, str):
            generated = f"{function}Alias{''.join(c for c in alias if c.isalnum())}"
            refs += [{"Ref": f"{function}.Alias"}, {"Ref": generated}]
        return refs

    def event_source_mappings(self, function: str) -> dict[str, dict[str, Any]]:
        """The plain ``AWS::Lambda::EventSourceMapping`` resources that invoke ``function`` (or its alias)."""
        refs = self.function_refs(function)
        return {
            k: v
            for k, v in self.resources("AWS::Lambda::EventSourceMapping").items()
            if v["Properties"].get("FunctionName") in refs
        }

    def kafka_batch_size(self, function: str) -> int:
        """BatchSize of the function's Kafka event source (MSK or self-managed; they agree)."""
        sizes = {
            int(m["Properties"].get("BatchSize", 100))
            for m in self.event_source_mappings(function).values()
            if "Topics" in m["Properties"]
        }
        if len(sizes) != 1:
            raise LookupError(f"{function} has no Kafka event source, or its sources disagree: {sizes}")
        return sizes.pop()

    def sqs_event(self, function: str) -> tuple[str, int]:
        """(queue logical id, BatchSize) of the function's SQS event."""
        for event in self.functions()[function].events_of_type("SQS").values():
            queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            return str(queue), int(event["Properties"].get("BatchSize", 10))
        raise LookupError(f"{function} has no SQS event")

    def sqs_sources(self, function: str, parameters: Mapping[str, str]) -> dict[str, SqsSource]:
        """The SQS event source mappings that invoke ``function`` (or its alias) with these parameter values, by
        logical id: its SAM ``Type: SQS`` events and the plain mappings on a queue of the template whose Condition
        holds (Transport sqs's jobs queue). Read from SAM's translation, the same mappings, all of them plain."""
        queues = self.resources("AWS::SQS::Queue")
        found: list[tuple[str, dict[str, Any], Any]] = []
        if function in self.functions():
            for name, event in self.functions()[function].events_of_type("SQS").items():
                props = self.evaluate(event["Properties"], parameters)
                found.append((f"{function}{name}", props, props["Queue"]))
        for logical_id, resource in self.event_source_mappings(function).items():
            if "Condition" in resource and not self.condition(resource["Condition"], parameters):
                continue
            props = self.evaluate(resource["Properties"], parameters)
            found.append((logical_id, props, props.get("EventSourceArn")))
        sources = {}
        for logical_id, props, arn in found:
            target = arn.get("Fn::GetAtt") if isinstance(arn, dict) else None
            if not target or target[0] not in queues or target[1] != "Arn":
                continue  # Kafka, or a queue outside the template
            concurrency = props.get("ScalingConfig", {}).get("MaximumConcurrency")
            sources[logical_id] = SqsSource(
                logical_id=logical_id,
                queue=str(target[0]),
                batch_size=int(props.get("BatchSize", 10)),
                batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                maximum_concurrency=int(concurrency) if concurrency is not None else None,
            )
        return sources

    def schedule(self, function: str) -> str:
        """The schedule expression of the function's Schedule or ScheduleV2 event."""
        for event in self.functions()[function].events.values():
            if event["Type"] == "Schedule":
                return str(event["Properties"]["Schedule"])
            if event["Type"] == "ScheduleV2":
                return str(event["Properties"]["ScheduleExpression"])
        raise LookupError(f"{function} has no schedule")

    # --- evaluating the template with parameter values ------------------------------------------------

    def condition(self, name: str, parameters: Mapping[str, str]) -> bool:
        """Evaluate one of the template's Conditions with these parameter values."""
        return bool(self.evaluate({"Condition": name}, parameters))

    def evaluate(self, node: Any, parameters: Mapping[str, str], pseudo: Optional[Mapping[str, str]] = None) -> Any:
        """``node`` with Conditions, ``Fn::If`` and the functions over parameters evaluated.

        ``Ref``s to parameters become their values; ``Ref``s to resources, ``Fn::GetAtt`` and ``Fn::Sub`` stay as
        they are (the caller knows the physical resources); a property that resolves to ``AWS::NoValue`` is
        dropped. With ``pseudo`` (``{"AWS::Region": ..., "AWS::StackName": ...}``), pseudo parameters are
        resolved too, and so is an ``Fn::Sub`` whose variables are all parameters or pseudo parameters.
        """
        if isinstance(node, list):
            return [v for v in (self.evaluate(item, parameters, pseudo) for item in node) if v != NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            evaluated = {k: self.evaluate(v, parameters, pseudo) for k, v in node.items()}
            return {k: v for k, v in evaluated.items() if v != NO_VALUE}
        ((fn, arg),) = node.items()
        if fn == "Condition":
            return bool(self.evaluate(self.conditions[arg], parameters, pseudo))
        if fn == "Ref":
            if arg in self.parameters:
                if arg not in parameters:
                    raise ValueError(f"no value for the parameter {arg}")
                return _parameter_value(parameters[arg], self.parameters[arg])
            if pseudo is not None and arg in pseudo:
                return pseudo[arg]
            return node  # AWS::NoValue, a pseudo parameter or a resource
        if fn == "Fn::Sub" and pseudo is not None:
            return self._substitute(arg, parameters, pseudo)
        if fn in _LEFT_TO_THE_CALLER:
            return node
        if fn == "Fn::If":
            name, if_true, if_false = arg
            return self.evaluate(if_true if self.condition(name, parameters) else if_false, parameters, pseudo)
        args = self.evaluate(arg, parameters, pseudo)
        if fn == "Fn::Equals":
            return _comparable(args[0]) == _comparable(args[1])
        if fn == "Fn::Not":
            return not args[0]
        if fn == "Fn::And":
            return all(args)
        if fn == "Fn::Or":
            return any(args)
        if fn == "Fn::Join":
            return str(args[0]).join(str(a) for a in args[1])
        if fn == "Fn::Split":
            return str(args[1]).split(str(args[0]))
        if fn == "Fn::Select":
            return args[1][int(args[0])]
        # The functions of Rules' assertions.
        if fn == "Fn::Contains":
            return _comparable(args[1]) in [_comparable(v) for v in args[0]]
        if fn == "Fn::EachMemberEquals":
            return all(_comparable(v) == _comparable(args[1]) for v in args[0])
        if fn == "Fn::EachMemberIn":
            return all(_comparable(v) in [_comparable(w) for w in args[1]] for v in args[0])
        raise ValueError(f"cannot evaluate {fn} here")

    def _substitute(self, arg: Any, parameters: Mapping[str, str], pseudo: Mapping[str, str]) -> Any:
        """An ``Fn::Sub``'s string; while a variable names a resource, an ``Fn::Sub`` of what is left to resolve."""
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values: dict[str, Any] = {k: self.evaluate(v, parameters, pseudo) for k, v in variables.items()}
        for name in self.parameters:
            values.setdefault(name, self.evaluate({"Ref": name}, parameters, pseudo))
        known = {
            k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
            for k, v in {**pseudo, **values}.items()
            if isinstance(v, str | int | float | list)
        }
        # A variable that is itself an Fn::Sub of resources only (a fragment chosen by an Fn::If, say): its text
        # goes in as it is, and its ${Resource} placeholders become the outer Fn::Sub's, which resolves them alike.
        for k, v in values.items():
            if k in variables and isinstance(v, dict) and set(v) == {"Fn::Sub"} and isinstance(v["Fn::Sub"], str):
                known[k] = v["Fn::Sub"]
        text = _SUB_VARIABLE.sub(lambda m: known.get(m.group(1), m.group(0)), text)
        if not _SUB_VARIABLE.search(text):
            return text
        unresolved = {k: v for k, v in values.items() if k in variables and k not in known}
        return {"Fn::Sub": [text, unresolved] if unresolved else text}

    def rule_failures(self, parameters: Mapping[str, str]) -> list[str]:
        """The ``AssertDescription`` of every assertion of the template's ``Rules`` that refuses these values.

        CloudFormation checks Rules before it creates or changes anything; a refused set of parameter values
        fails the whole change set with these messages.
        """
        failures = []
        for name, rule in self.data.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"], parameters):
                continue
            for assertion in rule["Assertions"]:
                if not self.evaluate(assertion["Assert"], parameters):
                    failures.append(f"{name}: {assertion.get('AssertDescription', '')}")
        return failures

    def kafka_source(self, function: str, parameters: Mapping[str, str]) -> KafkaSource:
        """The function's Kafka event source mapping whose Condition holds (MSK or self-managed)."""
        for logical_id, resource in self.event_source_mappings(function).items():
            if "Topics" not in resource["Properties"]:
                continue
            if "Condition" in resource and not self.condition(resource["Condition"], parameters):
                continue
            props = self.evaluate(resource["Properties"], parameters)
            if "SelfManagedEventSource" in props:
                event_source, arn = SELF_MANAGED_KAFKA, None
                endpoints = props["SelfManagedEventSource"]["Endpoints"]["KafkaBootstrapServers"]
                bootstrap: Optional[str] = ",".join(endpoints)
                config = props.get("SelfManagedKafkaEventSourceConfig", {})
            else:
                event_source, arn, bootstrap = MSK, str(props["EventSourceArn"]), None
                config = props.get("AmazonManagedKafkaEventSourceConfig", {})
            pollers = props.get("ProvisionedPollerConfig")
            (topic,) = props["Topics"]
            return KafkaSource(
                logical_id=logical_id,
                event_source=event_source,
                event_source_arn=arn,
                bootstrap_servers=bootstrap,
                topic=topic,
                batch_size=int(props.get("BatchSize", 100)),
                consumer_group=str(config.get("ConsumerGroupId") or logical_id),  # AWS: the mapping's UUID
                starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                maximum_record_age_seconds=int(props.get("MaximumRecordAgeInSeconds", -1)),
                bisect_batch_on_function_error=bool(props.get("BisectBatchOnFunctionError", False)),
                on_failure=props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"),
                pollers=(
                    (int(pollers.get("MinimumPollers", 1)), int(pollers.get("MaximumPollers", 200)))
                    if pollers
                    else None
                ),
                secrets=tuple(
                    (str(c["Type"]), str(c["URI"]))
                    for c in props.get("SourceAccessConfigurations", [])
                    if not str(c["Type"]).startswith("VPC_")
                ),
            )
        raise LookupError(f"{function} has no active Kafka event source mapping")


def _parameter_string(value: Any) -> str:
    """A parameter default as CloudFormation passes it: a string (lists comma-joined)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _parameter_value(value: str, declaration: Mapping[str, Any]) -> Any:
    """A parameter's value as ``Ref`` yields it: a list for list types, a string otherwise."""
    kind = str(declaration.get("Type", "String"))
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        return value.split(",")
    return value


def _comparable(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


@cache
def _cached(path: Path, mtime_ns: int) -> dict[str, Any]:
    return load_template(path)


def template(path: Path = TEMPLATE) -> Template:
    """template.yaml, parsed once per version of the file (a fresh copy each call)."""
    return Template(copy.deepcopy(_cached(path, path.stat().st_mtime_ns)))

"""Reading template.yaml: a YAML loader for CloudFormation's short-form tags, and its resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain data, intrinsic functions as ``{"Ref": …}`` / ``{"Fn::…": …}``."""
    with path.open() as fh:
        data = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    assert isinstance(data, dict)
    return data


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    code_uri: str
    environment: dict[str, Any]
    events: dict[str, Any] = field(default_factory=dict)
    timeout: int = 3  # Lambda's defaults
    memory_size: int = 128


@dataclass(frozen=True)
class KafkaSource:
    """A Kafka event source mapping (MSK or self-managed) of a function."""

    logical_id: str
    topic: Any  # a template value: resolve it
    batch_size: int
    consumer_group: str


@dataclass(frozen=True)
class Template:
    """The parts of template.yaml the local stack wires."""

    data: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.data["Resources"].items() if v["Type"] == kind}

    def parameter_defaults(self) -> dict[str, str]:
        return {k: str(v["Default"]) for k, v in self.data.get("Parameters", {}).items() if "Default" in v}

    def functions(self) -> dict[str, Function]:
        globals_fn = self.data.get("Globals", {}).get("Function", {})
        globals_env = globals_fn.get("Environment", {}).get("Variables", {})
        out = {}
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            props = {**globals_fn, **resource["Properties"]}
            env = {**globals_env, **resource["Properties"].get("Environment", {}).get("Variables", {})}
            out[logical_id] = Function(
                logical_id,
                props["Handler"],
                props["CodeUri"],
                env,
                props.get("Events", {}),
                int(props.get("Timeout", 3)),
                int(props.get("MemorySize", 128)),
            )
        return out

    def condition(self, name: str, parameters: dict[str, str]) -> bool:
        """Evaluate one of the template's Conditions with these parameter values."""
        return bool(self._evaluate({"Condition": name}, parameters))

    def _evaluate(self, node: Any, parameters: dict[str, str]) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            return node
        ((fn, arg),) = node.items()
        if fn == "Condition":
            return self._evaluate(self.data["Conditions"][arg], parameters)
        if fn == "Ref":
            if arg not in parameters:
                raise ValueError(f"the local stack has no value for the parameter {arg}")
            return parameters[arg]
        args = [self._evaluate(a, parameters) for a in arg] if isinstance(arg, list) else arg
        if fn == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if fn == "Fn::Not":
            return not args[0]
        if fn == "Fn::And":
            return all(args)
        if fn == "Fn::Or":
            return any(args)
        if fn == "Fn::Join":
            items = args[1] if isinstance(args[1], list) else str(args[1]).split(",")
            return str(args[0]).join(map(str, items))
        raise ValueError(f"the local stack cannot evaluate {fn}")

    def kafka_source(self, function: str, parameters: dict[str, str]) -> KafkaSource:
        """The function's Kafka event source mapping whose Condition holds (MSK or self-managed)."""
        for logical_id, resource in self.resources("AWS::Lambda::EventSourceMapping").items():
            props = resource["Properties"]
            if props.get("FunctionName") != {"Ref": function} or "Topics" not in props:
                continue
            if "Condition" in resource and not self.condition(resource["Condition"], parameters):
                continue
            config = props.get("AmazonManagedKafkaEventSourceConfig") or props.get(
                "SelfManagedKafkaEventSourceConfig", {}
            )
            group = config.get("ConsumerGroupId") or logical_id  # AWS defaults the group to the mapping's UUID
            (topic,) = props["Topics"]
            return KafkaSource(logical_id, topic, int(props.get("BatchSize", 100)), str(group))
        raise LookupError(f"{function} has no active Kafka event source mapping")

    def kafka_batch_size(self, function: str) -> int:
        """BatchSize of the function's Kafka event source mappings (the same in both; the contract test checks)."""
        sizes = {
            int(r["Properties"].get("BatchSize", 100))
            for r in self.resources("AWS::Lambda::EventSourceMapping").values()
            if r["Properties"].get("FunctionName") == {"Ref": function} and "Topics" in r["Properties"]
        }
        if len(sizes) != 1:
            raise LookupError(f"{function} has Kafka event source mappings with batch sizes {sorted(sizes)}")
        return sizes.pop()

    def sqs_event(self, function: str) -> tuple[str, int]:
        """(queue logical id, BatchSize) of the function's SQS event."""
        for event in self.functions()[function].events.values():
            if event["Type"] == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                return queue, int(event["Properties"].get("BatchSize", 10))
        raise LookupError(f"{function} has no SQS event")

    def schedule(self, function: str) -> str:
        for event in self.functions()[function].events.values():
            if event["Type"] in ("Schedule", "ScheduleV2"):
                key = "Schedule" if event["Type"] == "Schedule" else "ScheduleExpression"
                return str(event["Properties"][key])
        raise LookupError(f"{function} has no schedule")


def template() -> Template:
    return Template(load_template())

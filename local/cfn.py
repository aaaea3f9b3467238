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
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
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


@dataclass(frozen=True)
class Template:
    """The parts of template.yaml the local stack wires."""

    data: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.data["Resources"].items() if v["Type"] == kind}

    def parameter_defaults(self) -> dict[str, str]:
        return {k: str(v["Default"]) for k, v in self.data.get("Parameters", {}).items() if "Default" in v}

    def functions(self) -> dict[str, Function]:
        globals_env = self.data.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        out = {}
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
            out[logical_id] = Function(logical_id, props["Handler"], props["CodeUri"], env, props.get("Events", {}))
        return out

    def kafka_batch_size(self, function: str) -> int:
        """BatchSize of the function's Kafka event source mapping (MSK or self-managed)."""
        for resource in self.resources("AWS::Lambda::EventSourceMapping").values():
            props = resource["Properties"]
            if props.get("FunctionName") == {"Ref": function} and "Topics" in props:
                return int(props.get("BatchSize", 100))
        raise LookupError(f"{function} has no Kafka event source mapping")

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

"""Reading template.yaml: a YAML loader for CloudFormation's short-form tags, and a view of its resources.

Pure Python (PyYAML only). Intrinsic functions load in their long form, as CloudFormation's JSON has them:
``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``, ``!Sub s`` ->
``{"Fn::Sub": "s"}``, ``!If [c, a, b]`` -> ``{"Fn::If": [...]}``, ``!Condition C`` -> ``{"Condition": "C"}``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that also understands ``!Ref``, ``!GetAtt``, ``!Sub``, ``!If`` and the other short forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if suffix in ("Ref", "Condition"):
        name = suffix
    else:
        name = f"Fn::{suffix}"
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


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter that ``value`` names through ``Ref`` or ``Fn::GetAtt`` (nested too)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0]
                yield str(target)
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


@dataclass(frozen=True)
class Function:
    """An ``AWS::Serverless::Function`` with the Globals merged in (environment, and so on)."""

    logical_id: str
    handler: str
    code_uri: str
    environment: dict[str, Any]
    events: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)

    def events_of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: e for name, e in self.events.items() if e.get("Type") == kind}


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

    def resources(self, kind: Optional[str] = None) -> dict[str, dict[str, Any]]:
        """Resources by logical id, all of them or those of type ``kind``."""
        resources: dict[str, dict[str, Any]] = self.data["Resources"]
        return {k: v for k, v in resources.items() if kind is None or v["Type"] == kind}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.data["Resources"][logical_id].get("Properties", {}))

    def parameter_defaults(self) -> dict[str, str]:
        return {k: str(v["Default"]) for k, v in self.parameters.items() if "Default" in v}

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

    def event_source_mappings(self, function: str) -> dict[str, dict[str, Any]]:
        """The plain ``AWS::Lambda::EventSourceMapping`` resources that invoke ``function``."""
        return {
            k: v
            for k, v in self.resources("AWS::Lambda::EventSourceMapping").items()
            if v["Properties"].get("FunctionName") == {"Ref": function}
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

    def schedule(self, function: str) -> str:
        """The schedule expression of the function's Schedule or ScheduleV2 event."""
        for event in self.functions()[function].events.values():
            if event["Type"] == "Schedule":
                return str(event["Properties"]["Schedule"])
            if event["Type"] == "ScheduleV2":
                return str(event["Properties"]["ScheduleExpression"])
        raise LookupError(f"{function} has no schedule")


@cache
def _cached(path: Path, mtime_ns: int) -> dict[str, Any]:
    return load_template(path)


def template(path: Path = TEMPLATE) -> Template:
    """template.yaml, parsed once per version of the file (a fresh copy each call)."""
    return Template(copy.deepcopy(_cached(path, path.stat().st_mtime_ns)))

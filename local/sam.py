"""SAM's translation of template.yaml: the CloudFormation template AWS receives, made offline.

``translate()`` hands the template (or a variant of it) and parameter values to SAM's own translator, the
``samtranslator`` package of the SAM CLI's virtualenv (``make sam-venv``), in a subprocess: the translator pins a
pydantic older than the one the common layer pins, so it cannot be imported here. AWS's hosted transform runs the
same library with the stack's parameter values, so the result is what CloudFormation then creates, apart from
the code locations, which are stand-ins for what ``sam package`` uploads (``local/sam_translate.py``).

Each result is a ``Translation``: the CloudFormation template and the parameter values, whose ``evaluate()`` and
``created()`` resolve what SAM leaves for CloudFormation (Conditions, ``Fn::If``, parameters, ``Fn::Sub``), and whose
``rule_failures()`` says what the template's Rules would refuse.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from local.cfn import ROOT, Template, load_template

SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
RUNNER = ROOT / "local" / "sam_translate.py"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
# The deployment's pseudo parameters. SAM's translator is given the region, partition and account (what the SAM
# CLI's own validation gives it); the rest resolve only when a test evaluates the result.
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "notification-service",
}
TRANSLATOR_PSEUDO = ("AWS::Region", "AWS::AccountId", "AWS::Partition")
# The parameter values of a deployment to self-managed Kafka over TLS with no VPC, on top of the defaults: the
# parameters without a default, and what a consistent set needs (the Rules refuse KafkaAuth iam without MSK).
DEPLOYMENT = {
    "MskClusterArn": "",
    "KafkaAuth": "tls",
    "KafkaBootstrapServers": "broker-1.example.com:9093,broker-2.example.com:9093",
    "AuthApiUrl": "https://auth.example.com",
    "SenderEmail": "notifications@example.com",
}


class TranslationError(Exception):
    """SAM refused the template (its message), or the translator could not run."""


def parameter_values(template: Template, overrides: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """Every parameter's value as CloudFormation would pass it: defaults, then ``DEPLOYMENT``, then ``overrides``."""
    values = {**template.parameter_defaults(), **DEPLOYMENT, **(overrides or {})}
    return {k: v for k, v in values.items() if k in template.parameters}


@dataclass(frozen=True)
class Translation:
    """SAM's CloudFormation template for one set of parameter values, read as CloudFormation would create it."""

    template: Template
    parameters: dict[str, str]

    def evaluate(self, node: Any) -> Any:
        """``node`` with Conditions, parameters, pseudo parameters and the ``Fn::Sub``s over them resolved."""
        return self.template.evaluate(node, self.parameters, PSEUDO)

    def created(self, kind: Optional[str] = None) -> dict[str, dict[str, Any]]:
        """The resources (of type ``kind``) whose Condition holds: what CloudFormation creates."""
        return {
            k: v
            for k, v in self.template.resources(kind).items()
            if "Condition" not in v or self.template.condition(v["Condition"], self.parameters)
        }

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties, evaluated."""
        return dict(self.evaluate(self.template.properties(logical_id)))

    def rule_failures(self) -> list[str]:
        """What the template's Rules say against these parameter values (nothing: CloudFormation goes on)."""
        return self.template.rule_failures(self.parameters)


Request = tuple[Optional[Mapping[str, Any]], Optional[Mapping[str, str]]]


def translate_all(requests: Sequence[Request]) -> list[Translation | TranslationError]:
    """Translate each (SAM template or None for template.yaml, parameter overrides) in one run of the translator.

    Returns a ``Translation`` for each request SAM accepts, and a ``TranslationError`` (not raised) for each it
    refuses.
    """
    if not SAM_PYTHON.exists():
        raise TranslationError(f"SAM's translator is missing: {SAM_PYTHON.relative_to(ROOT)} (run `make sam-venv`)")
    payload, values = [], []
    for document, overrides in requests:
        source = Template(copy.deepcopy(dict(document)) if document is not None else load_template())
        values.append(parameter_values(source, overrides))
        pseudo = {k: PSEUDO[k] for k in TRANSLATOR_PSEUDO}
        payload.append({"template": source.data, "parameters": {**values[-1], **pseudo}})
    out = subprocess.run(
        [str(SAM_PYTHON), str(RUNNER)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "PYTHONPATH": ""},
    )
    if out.returncode != 0:
        raise TranslationError(out.stderr[-3000:])
    return [
        Translation(Template(r["template"]), v) if "template" in r else TranslationError(r["error"])
        for r, v in zip(json.loads(out.stdout), values, strict=True)
    ]


def translate(
    document: Optional[Mapping[str, Any]] = None, overrides: Optional[Mapping[str, str]] = None
) -> Translation:
    """SAM's translation of ``document`` (template.yaml when None) with these parameter overrides."""
    (result,) = translate_all([(document, overrides)])
    if isinstance(result, TranslationError):
        raise result
    return result


class Translations:
    """SAM's translations of template.yaml or of variants of it, each made once (the contract tier's cache).

    ``many()`` translates what it has not seen yet in one run of the translator (a run costs about a second).
    """

    def __init__(self) -> None:
        self._seen: dict[str, Translation | TranslationError] = {}

    @staticmethod
    def _key(request: Request) -> str:
        document, overrides = request
        return json.dumps([document, dict(overrides or {})], sort_keys=True)

    def many(self, requests: Sequence[Request]) -> list[Translation | TranslationError]:
        """Each request's translation (or SAM's refusal), in order."""
        missing = list({self._key(r): r for r in requests if self._key(r) not in self._seen}.values())
        for request, result in zip(missing, translate_all(missing) if missing else [], strict=True):
            self._seen[self._key(request)] = result
        return [self._seen[self._key(r)] for r in requests]

    def of(
        self, document: Optional[Mapping[str, Any]] = None, overrides: Optional[Mapping[str, str]] = None
    ) -> Translation:
        """One translation; SAM's refusal is raised."""
        (result,) = self.many([(document, overrides)])
        if isinstance(result, TranslationError):
            raise result
        return result

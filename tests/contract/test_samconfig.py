"""What a deployer starts from passes the template's Rules: `sam deploy --guided` with the defaults, and every set
of parameter values samconfig.toml holds, the examples in its comments among them.

CloudFormation checks Rules before it creates anything, so a refused example or default fails the deployer's very
first `sam deploy`. The values are taken exactly as given (the template's defaults beneath them, nothing else).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest

from local.cfn import ROOT, template
from local.sam import Translations

SAMCONFIG = ROOT / "samconfig.toml"
# A parameter_overrides line, live or commented out as an example.
OVERRIDES = re.compile(r'^[ \t]*(#[ \t]*)?parameter_overrides[ \t]*=[ \t]*"(?P<value>[^"]*)"[ \t]*$', re.MULTILINE)
# What `sam deploy --guided` cannot leave at a default: the parameters without one, answered as a deployer would.
GUIDED_ANSWERS = {
    "AuthApiUrl": "https://auth.example.com",
    "SenderEmail": "notifications@example.com",
}
# And what the transport needs beyond them: the brokers for Kafka (the default, self-managed), nothing for SQS; and
# the brokers again while the worker drains Kafka in the first step of a switch to SQS (docs/DEPLOY.md#transport).
TRANSPORT_ANSWERS = {
    "kafka": {"KafkaBootstrapServers": "broker-1.example.com:9093"},
    "sqs": {"Transport": "sqs"},
    "sqs-draining-kafka": {
        "Transport": "sqs",
        "DrainTransport": "kafka",
        "KafkaBootstrapServers": "broker-1.example.com:9093",
    },
    "kafka-draining-sqs": {"DrainTransport": "sqs", "KafkaBootstrapServers": "broker-1.example.com:9093"},
}


def samconfig_examples() -> dict[str, dict[str, str]]:
    """Each parameter_overrides of samconfig.toml, by its line: {parameter: value}."""
    text = SAMCONFIG.read_text()
    examples = {}
    for match in OVERRIDES.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        pairs = (pair.split("=", 1) for pair in shlex.split(match["value"]))
        examples[f"samconfig.toml:{line}"] = {name: value for name, value in pairs}
    return examples


def value_problems(parameters: dict[str, dict[str, Any]], values: dict[str, str]) -> list[str]:
    """What CloudFormation refuses in these values before the Rules: AllowedValues, AllowedPattern (on each item of
    a CommaDelimitedList), and a Number's MinValue and MaxValue."""
    problems = []
    for name, value in values.items():
        declaration = parameters[name]
        kind = declaration.get("Type", "String")
        items = value.split(",") if kind == "CommaDelimitedList" else [value]
        allowed = declaration.get("AllowedValues")
        if allowed is not None and value not in [str(v) for v in allowed]:
            problems.append(f"{name}={value!r} is not one of {allowed}")
        pattern = declaration.get("AllowedPattern")
        for item in items if pattern else []:
            if not re.fullmatch(pattern, item):
                problems.append(f"{name}={item!r} does not match {pattern}")
        if kind == "Number":
            low, high = declaration.get("MinValue"), declaration.get("MaxValue")
            if (low is not None and float(value) < low) or (high is not None and float(value) > high):
                problems.append(f"{name}={value} is outside [{low}, {high}]")
    return problems


EXAMPLES = samconfig_examples()


def test_samconfig_holds_the_examples() -> None:
    # The localstack environment, the MSK example, the self-managed examples and a switch's first steps.
    assert len(EXAMPLES) >= 4, sorted(EXAMPLES)
    assert {example.get("DrainTransport") for example in EXAMPLES.values()} >= {"kafka", "sqs"}


@pytest.mark.parametrize("where", sorted(EXAMPLES))
def test_each_samconfig_example_passes_the_rules(where: str) -> None:
    tpl = template()
    example = EXAMPLES[where]
    unknown = set(example) - set(tpl.parameters)
    assert not unknown, f"{where} sets parameters the template does not have: {sorted(unknown)}"
    missing = {name for name, p in tpl.parameters.items() if "Default" not in p} - set(example)
    assert not missing, f"{where} leaves parameters without a default unset: {sorted(missing)}"
    assert value_problems(tpl.parameters, example) == [], where
    assert tpl.rule_failures({**tpl.parameter_defaults(), **example}) == [], where


@pytest.mark.parametrize("transport", sorted(TRANSPORT_ANSWERS))
def test_a_guided_deploy_with_the_defaults_passes_the_rules(transport: str) -> None:
    tpl = template()
    assert set(GUIDED_ANSWERS) == {name for name, p in tpl.parameters.items() if "Default" not in p}
    values = {**tpl.parameter_defaults(), **GUIDED_ANSWERS, **TRANSPORT_ANSWERS[transport]}
    assert value_problems(tpl.parameters, values) == []
    assert tpl.rule_failures(values) == []
    # Kafka's brokers have no default that could work: the Rules ask for them before anything is created, whether
    # the functions publish to Kafka or its event source drains it.
    if "KafkaBootstrapServers" in TRANSPORT_ANSWERS[transport]:
        assert tpl.rule_failures({**values, "KafkaBootstrapServers": ""})


def test_sam_hands_cloudformation_the_rules_checked_here(sam: Translations) -> None:
    assert sam.of().template.data["Rules"] == template().data["Rules"]

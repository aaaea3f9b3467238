"""Move each function's alias to a version of its current configuration, where a deployment left it behind.

SAM names a function version after a hash of the template, in which a parameter is a reference (``!Ref LogLevel``),
not its value. A deployment that changes parameter values alone (``LogLevel=DEBUG``, new brokers, new subnets)
updates ``$LATEST`` and publishes no version, so the alias ``live``, which every trigger invokes, keeps running the
old configuration (aws/serverless-application-model#3820). SAM offers no fix inside the template:
``AutoPublishCodeSha256`` replaces the whole hash, so a code change with the same value would publish nothing, and
``sam deploy`` passes the previous value of any parameter it is not given.

So ``make deploy`` runs ``sam deploy``, then this: for each alias of the stack, compare the configuration of the
version it points at with ``$LATEST``; where they differ, publish ``$LATEST`` (guarded by its code hash and revision,
so a concurrent change is not published by mistake), wait for the version to be active (SnapStart's snapshot), and
point the alias at it. The worker goes first, so that a new job schema is read before it is produced.
CloudFormation does not know these versions; its next deployment that publishes a version moves the alias again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

# boto3's CloudFormation and Lambda clients (the project installs no type stubs for those two services).
CloudFormationClient = Any
LambdaClient = Any

# What a version freezes of a function, as GetFunctionConfiguration returns it. Everything else (the description,
# RevisionId, LastModified, the version number itself, State) says nothing about what runs.
FROZEN = (
    "CodeSha256",
    "Handler",
    "Runtime",
    "Role",
    "Timeout",
    "MemorySize",
    "Environment",
    "Layers",
    "VpcConfig",
    "LoggingConfig",
    "TracingConfig",
    "Architectures",
    "EphemeralStorage",
    "SnapStart",
    "DeadLetterConfig",
    "FileSystemConfigs",
    "RuntimeVersionConfig",
)
# The worker first (it must read a new job schema before the API and the scheduler produce it), then the rest.
FIRST = ("WorkerFunction",)


def frozen(configuration: dict[str, Any]) -> dict[str, Any]:
    """The part of a function configuration a published version keeps, normalised for comparison."""
    out: dict[str, Any] = {}
    for key in FROZEN:
        value = configuration.get(key)
        if key == "Layers":
            value = [layer["Arn"] for layer in value or []]
        elif key == "VpcConfig":
            value = {k: sorted(value.get(k) or []) for k in ("SubnetIds", "SecurityGroupIds")} if value else {}
            value = value if any(value.values()) else {}
        elif key == "SnapStart":
            value = (value or {}).get("ApplyOn", "None")
        elif key == "RuntimeVersionConfig":
            value = (value or {}).get("RuntimeVersionArn")
        if value not in (None, {}, []):
            out[key] = value
    return out


def differences(latest: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The names of what ``$LATEST`` has and the alias's version has not, in ``FROZEN``'s order."""
    new, old = frozen(latest), frozen(current)
    return [key for key in FROZEN if new.get(key) != old.get(key)]


@dataclass(frozen=True)
class Alias:
    """One alias of the stack: the template's logical id of its function, the function's name, the alias."""

    logical_id: str
    function: str
    name: str


def stack_aliases(cloudformation: CloudFormationClient, stack: str) -> list[Alias]:
    """The stack's Lambda aliases, the worker's first."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    return aliases_of(summary for page in pages for summary in page["StackResourceSummaries"])


def aliases_of(summaries: Iterable[dict[str, Any]]) -> list[Alias]:
    """The aliases among ListStackResources' summaries, the worker's first. SAM names an alias
    ``<function logical id>Alias<name>``; its physical id is its ARN, ``arn:…:function:<function>:<name>``."""
    aliases = []
    for resource in summaries:
        if resource["ResourceType"] == "AWS::Lambda::Alias" and resource.get("PhysicalResourceId"):
            function, name = resource["PhysicalResourceId"].split(":")[-2:]
            logical = resource["LogicalResourceId"]
            aliases.append(Alias(logical.rsplit("Alias", 1)[0], function, name))
    return ordered(aliases)


def ordered(aliases: Iterable[Alias]) -> list[Alias]:
    """``aliases`` with ``FIRST``'s functions first, the others in their given order."""
    items = list(aliases)
    return [a for a in items if a.logical_id in FIRST] + [a for a in items if a.logical_id not in FIRST]


@dataclass(frozen=True)
class Outcome:
    alias: Alias
    changed: list[str]  # what differed (empty: the alias was current)
    version: str  # the version the alias points at afterwards (or would, with apply=False: the one it has)


def align(client: LambdaClient, aliases: Iterable[Alias], apply: bool = True) -> Iterator[Outcome]:
    """Check (and with ``apply``, fix) each alias in turn; one outcome per alias."""
    for alias in aliases:
        latest = client.get_function_configuration(FunctionName=alias.function)
        current = client.get_function_configuration(FunctionName=alias.function, Qualifier=alias.name)
        changed = differences(dict(latest), dict(current))
        version = str(current["Version"])
        if changed and apply:
            # AWS always returns RevisionId; moto (the local peer) does not.
            revision = {"RevisionId": latest["RevisionId"]} if latest.get("RevisionId") else {}
            published = client.publish_version(
                FunctionName=alias.function,
                CodeSha256=latest["CodeSha256"],
                **revision,
                Description=f"{alias.name}: configuration without a template change ({', '.join(changed)})",
            )
            version = str(published["Version"])
            client.get_waiter("published_version_active").wait(FunctionName=alias.function, Qualifier=version)
            client.update_alias(FunctionName=alias.function, Name=alias.name, FunctionVersion=version)
        yield Outcome(alias, changed, version)


def report(outcomes: Iterable[Outcome], apply: bool, out: TextIO) -> int:
    """One line per alias; the number of aliases that lagged."""
    lagging = 0
    for o in outcomes:
        name = f"{o.alias.logical_id} ({o.alias.function}:{o.alias.name})"
        if not o.changed:
            print(f"current  {name} → version {o.version}", file=out)
            continue
        lagging += 1
        verb = "moved   " if apply else "LAGGING "
        print(f"{verb} {name} → version {o.version}: {', '.join(o.changed)} differed from $LATEST", file=out)
    return lagging

"""The field's static analysis on what AWS receives: cfn-lint with the serverless rules, and checkov.

Both tools read template.yaml (each understands SAM) and SAM's translation of it (local/sam.py) for the deployments
of ``DEPLOYMENTS`` (self-managed Kafka without and with a VPC, MSK in a VPC with the SQS endpoint, self-managed Kafka
in a VPC with SASL/SCRAM and a private CA from Secrets Manager, Transport sqs, and each direction of a switch's
first step, DrainTransport), so a finding that shows only once SAM has expanded the template (roles, aliases,
versions, permissions, the HTTP API's stage) is seen too.
The tools come from their own virtualenv (``make scan-venv``): checkov pins many packages that the others need at
other versions.

Every finding is fixed in template.yaml or listed, with its reason, in ``static_analysis_skips.yaml``; a listed skip
that matches no finding fails as well, so the file says only what is still true. A canary, template.yaml with its
tracing, retention and encryption removed, must draw findings from cfn-lint's serverless rules and from checkov:
were a tool to load no rules, or read no file, the suite would not pass on silence.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.cfn import ROOT, TEMPLATE, load_template
from local.sam import Translation, Translations

SCAN_BIN = ROOT / ".venv-scan" / "bin"
SKIPS_FILE = Path(__file__).with_name("static_analysis_skips.yaml")
SUBNETS = "subnet-0aaa1111,subnet-0bbb2222"
VPC = {"SubnetIds": SUBNETS, "SecurityGroupIds": "sg-0ccc3333", "SqsVpcEndpoint": "create", "VpcId": "vpc-0ddd4444"}
CLUSTER = "arn:aws:kafka:eu-west-1:123456789012:cluster/notifications/0f1e2d3c-aaaa-bbbb-cccc-111122223333-1"
SECRETS = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:notifications/"
# The deployments whose translations are checked, on top of local.sam's DEPLOYMENT (self-managed Kafka over TLS).
DEPLOYMENTS: dict[str, dict[str, str]] = {
    "self-managed": {},
    "self-managed-in-a-vpc": VPC,
    "msk-in-a-vpc": {"KafkaMode": "msk", "MskClusterArn": CLUSTER, "KafkaAuth": "iam", **VPC},
    # SASL/SCRAM with a private CA: the event source's secrets and the roles' reads of them.
    "self-managed-scram-in-a-vpc": {
        "KafkaAuth": "scram-sha-512",
        "KafkaSecretArn": f"{SECRETS}kafka-client-AbCdEf",
        "KafkaRootCaSecretArn": f"{SECRETS}kafka-root-ca-GhIjKl",
        **VPC,
    },
    # Transport sqs (issue 25): the jobs queue and its event source, nothing of Kafka.
    "sqs": {"Transport": "sqs", "KafkaBootstrapServers": ""},
    # The first step of a switch (docs/DEPLOY.md#transport): everything publishes to the new transport while the
    # worker drains the old, MSK in a VPC with its consumer policy, pollers' network and SQS endpoint; or the jobs
    # queue with its event source, beside Kafka.
    "sqs-draining-msk-in-a-vpc": {
        "Transport": "sqs",
        "DrainTransport": "kafka",
        "KafkaMode": "msk",
        "MskClusterArn": CLUSTER,
        "KafkaAuth": "iam",
        **VPC,
    },
    "kafka-draining-sqs": {"DrainTransport": "sqs"},
}
TOOLS = ("cfn-lint", "checkov")


@dataclass(frozen=True)
class Finding:
    """One finding of a tool: its rule, the resource (logical id, or the section) and the file it was found in."""

    tool: str
    rule: str
    resource: str
    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.tool} {self.rule} {self.resource} in {self.file}: {self.message}"


@dataclass(frozen=True)
class Skip:
    """A rule the suite accepts on these resources ("*": on any), and why."""

    tool: str
    rule: str
    resources: tuple[str, ...]
    reason: str

    def covers(self, finding: Finding) -> bool:
        return (
            finding.tool == self.tool
            and finding.rule == self.rule
            and ("*" in self.resources or finding.resource in self.resources)
        )


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    """The skip file: ``{tool: {rule: {resources: [...], reason: ...}}}``."""
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(TOOLS)
    assert not unknown, f"{path.name}: unknown tools {sorted(unknown)} (known: {', '.join(TOOLS)})"
    return [
        Skip(tool, str(rule), tuple(entry.get("resources") or ()), str(entry.get("reason") or "").strip())
        for tool, rules in data.items()
        for rule, entry in (rules or {}).items()
    ]


def _scan_tool(name: str) -> str:
    path = SCAN_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is missing at {path.relative_to(ROOT)}: run `make scan-venv` (make test does)")
    return str(path)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH is the project's (the Makefile exports it): the tools run on their own virtualenv only. The folder
    # is not the repository's, so no .cfnlintrc or .checkov.yaml there could skip anything outside the skip file.
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": "", "AWS_DEFAULT_REGION": "eu-west-1", "BC_SKIP_MAPPING": "TRUE"},
    )


def deployed(translation: Translation) -> dict[str, Any]:
    """The translation with the deployment's values as its parameters' defaults, which checkov resolves Refs and
    Conditions with. A default that says the same stays as written (a Number stays a number), and a parameter
    without one gets none for an empty value (MskClusterArn for self-managed Kafka), as in template.yaml."""
    document = json.loads(json.dumps(translation.template.data))
    for name, declaration in document.get("Parameters", {}).items():
        value = translation.parameters.get(name)
        if value is None or ("Default" not in declaration and value == ""):
            continue
        default = declaration.get("Default")
        if default is None or (",".join(map(str, default)) if isinstance(default, list) else str(default)) != value:
            declaration["Default"] = value
    return document


def canary() -> dict[str, Any]:
    """template.yaml without tracing, log retention, point-in-time recovery and queue encryption."""
    document = load_template()
    del document["Globals"]["Function"]["Tracing"]
    for resource in document["Resources"].values():
        props = resource.get("Properties", {})
        props.pop("RetentionInDays", None)
        props.pop("PointInTimeRecoverySpecification", None)
        props.pop("SqsManagedSseEnabled", None)
    return document


def cfn_lint(files: Mapping[str, Path], cwd: Path) -> list[Finding]:
    """cfn-lint with cfn-lint-serverless's rules appended, informational findings included, in one run."""
    by_path = {str(path): name for name, path in files.items()}
    result = _run(
        [
            _scan_tool("cfn-lint"),
            "--format",
            "json",
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--include-checks",
            "I",
            "--",
            *by_path,
        ],
        cwd,
    )
    # Exit status: 0 nothing, else a bit mask of the levels found (2 error, 4 warning, 8 informational); 1 failure.
    assert result.returncode != 1 and result.stdout.strip().startswith("["), result.stderr[-3000:] or result.stdout
    findings = []
    for match in json.loads(result.stdout):
        path = match["Location"]["Path"] or []
        resource = str(path[1]) if len(path) > 1 and path[0] == "Resources" else str(path[0] if path else "")
        findings.append(
            Finding("cfn-lint", match["Rule"]["Id"], resource, by_path[match["Filename"]], match["Message"])
        )
    return findings


def checkov(files: Mapping[str, Path], cwd: Path) -> list[Finding]:
    """checkov's CloudFormation checks (they read SAM's resources too), in one run, asking nothing of the network."""
    by_path = {str(path): name for name, path in files.items()}
    args = [_scan_tool("checkov"), "--framework", "cloudformation", "--output", "json", "--compact", "--quiet"]
    args += ["--skip-download"]
    for path in by_path:
        args += ["--file", path]
    result = _run(args, cwd)
    assert result.returncode in (0, 1), result.stderr[-3000:] or result.stdout[-3000:]
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    findings = []
    for report in reports if isinstance(reports, list) else [reports]:
        for check in report.get("results", {}).get("failed_checks", []):
            resource = str(check["resource"]).split(".", 1)[-1]
            file = by_path.get(check["file_abs_path"], check["file_path"])
            findings.append(Finding("checkov", check["check_id"], resource, file, check["check_name"]))
    return findings


@dataclass(frozen=True)
class Scan:
    findings: list[Finding]
    files: dict[str, Path]

    def of(self, tool: str, *, canary: bool = False) -> list[Finding]:
        return [f for f in self.findings if f.tool == tool and (f.file == "canary") == canary]


@pytest.fixture(scope="module")
def scan(sam: Translations, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    folder = tmp_path_factory.mktemp("static-analysis")
    files = {"template.yaml": TEMPLATE}
    translations = sam.many([(None, overrides) for overrides in DEPLOYMENTS.values()])
    for name, translation in zip(DEPLOYMENTS, translations, strict=True):
        assert isinstance(translation, Translation), f"{name}: SAM refused the template: {translation}"
        files[f"translation:{name}"] = folder / f"translation-{name}.json"
        files[f"translation:{name}"].write_text(json.dumps(deployed(translation), indent=1))
    files["canary"] = folder / "canary.yaml"
    files["canary"].write_text(yaml.safe_dump(canary(), sort_keys=False))
    return Scan(cfn_lint(files, folder) + checkov(files, folder), files)


def _unlisted(findings: list[Finding], skips: list[Skip]) -> Iterator[Finding]:
    return (f for f in findings if not any(s.covers(f) for s in skips))


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tool", TOOLS)
def test_every_finding_is_fixed_or_listed_with_its_reason(scan: Scan, tool: str) -> None:
    unlisted = sorted(set(map(str, _unlisted(scan.of(tool), load_skips()))))
    assert not unlisted, (
        f"{tool} finds what {SKIPS_FILE.name} does not list: fix template.yaml, or list the rule and the resource "
        "with the reason it does not apply:\n" + "\n".join(unlisted)
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("tool", TOOLS)
def test_every_listed_skip_still_matches_a_finding(scan: Scan, tool: str) -> None:
    findings = scan.of(tool)
    for skip in (s for s in load_skips() if s.tool == tool):
        matched = {f.resource for f in findings if skip.covers(f)}
        assert matched, f"{tool} {skip.rule}: listed in {SKIPS_FILE.name}, but nothing draws it any more"
        if "*" not in skip.resources:
            stale = set(skip.resources) - matched
            assert not stale, f"{tool} {skip.rule}: {sorted(stale)} no longer draw it; take them off the list"


def test_every_skip_says_why() -> None:
    for skip in load_skips():
        assert skip.resources, f"{skip.tool} {skip.rule}: name the resources it covers (or '*')"
        assert len(skip.reason) >= 40, f"{skip.tool} {skip.rule}: the reason is missing or too short"


@pytest.mark.timeout(900)
def test_the_tools_find_what_the_canary_lacks(scan: Scan) -> None:
    # Tracing, log retention, point-in-time recovery and queue encryption removed: findings the skip file does not
    # cover, from the serverless rules (WS...) and from checkov, so neither passes for want of rules or input.
    lint = {f.rule for f in _unlisted(scan.of("cfn-lint", canary=True), load_skips())}
    assert any(rule.startswith("WS") for rule in lint), f"cfn-lint's serverless rules found nothing: {sorted(lint)}"
    found = {f.rule for f in _unlisted(scan.of("checkov", canary=True), load_skips())}
    assert found, "checkov found nothing in the canary"


def test_no_skip_hides_in_the_template() -> None:
    # cfn-lint reads Metadata.cfn-lint, checkov Metadata.checkov (template or resource): skips belong in the file.
    document = load_template()
    places = {"template": document.get("Metadata") or {}}
    places.update({k: v.get("Metadata") or {} for k, v in document["Resources"].items()})
    hidden = sorted(name for name, metadata in places.items() if {"cfn-lint", "checkov"} & set(metadata))
    assert not hidden, f"skips in template.yaml's Metadata ({hidden}) belong in {SKIPS_FILE.name}"

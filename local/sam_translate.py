"""Run SAM's own translator (aws-sam-translator, the library the SAM CLI and AWS's hosted transform use) offline.

Not imported by the local stack or the tests: ``local.sam`` runs this file with the SAM CLI's interpreter
(``.venv-sam/bin/python``), because the translator pins a pydantic older than the one the functions' layer pins,
so the two cannot share one virtualenv. Standard library and ``samtranslator`` only.

stdin: a JSON list of ``{"template": <SAM template, long-form intrinsics>, "parameters": {name: value}}``.
stdout: a JSON list of ``{"template": <CloudFormation template>}`` or ``{"error": "<SAM's message>"}``, in order.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# The managed policies SAM's Policies may name, as the translator would load them from IAM (the real loader calls
# IAM's ListPolicies; the template names none, so an empty map would do, but a named one stays resolvable).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/service-role/{name}"
    for name in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSXrayWriteOnlyAccess")
}


class StandInPolicyLoader:
    """The ``ManagedPolicyLoader`` interface with a fixed map: nothing is asked of IAM."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def stand_in_code_locations(document: dict[str, Any]) -> None:
    """Local code paths become S3 locations, as ``sam package`` leaves them (an S3 URI given is kept).

    ``sam package`` names the object after an MD5 of the folder's contents, so a different key stands for
    different code; here the key is the local path, and a test that changes code changes the URI itself.
    """
    for logical_id, resource in document.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[key] = f"s3://sam-artifacts/{logical_id}/{value.strip('/')}"


def translate(document: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The CloudFormation template SAM makes of ``document`` with these parameter values."""
    from samtranslator.translator.transform import transform

    stand_in_code_locations(document)
    return transform(document, dict(parameters), StandInPolicyLoader())  # type: ignore[arg-type]


def main() -> None:
    from samtranslator.model.exceptions import InvalidDocumentException

    results: list[dict[str, Any]] = []
    for request in json.load(sys.stdin):
        try:
            results.append({"template": translate(request["template"], request.get("parameters", {}))})
        except InvalidDocumentException as e:
            results.append({"error": " ".join([str(e), *(str(cause) for cause in e.causes)])})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()

"""The HTTP API as AWS receives it: the routes and CORS of SAM's translation of template.yaml, for the local gateway.

API Gateway creates the HTTP API from the OpenAPI body SAM's transform writes (``AWS::ApiGatewayV2::Api``'s
``Body``): SAM adds a path per HttpApi event and keeps (or builds, from ``CorsConfiguration``) the
``x-amazon-apigateway-cors`` object, whose intrinsic functions CloudFormation then evaluates with the stack's
parameters. The local gateway reads the same body, translated with the local stack's parameter values, so what it
routes and which origins it allows are what AWS would get, not the local reading of the template.

A translation runs SAM's translator in the SAM CLI's virtualenv (``local/sam.py``, about a second or two); it is
kept in the stack's state directory under a hash of the template, the translator's runner and the parameter values,
so ``make local`` translates again only when one of them changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from local.cfn import TEMPLATE, Template
from local.sam import RUNNER, SAM_PYTHON, Translation, translate

log = logging.getLogger("local.http_api")

ANY_METHOD = "x-amazon-apigateway-any-method"
CACHE_PREFIX = "sam-translation-"


@dataclass(frozen=True)
class HttpApi:
    """What the local gateway needs of one HTTP API: the function's routes and the CORS configuration.

    ``cors`` is in ``CorsConfiguration``'s words (``AllowOrigins``, ``MaxAge``...), evaluated (SAM's ``true`` for
    the template's fallback reading), or None without one: what ``gateway.Cors.from_template`` reads.
    """

    routes: list[tuple[str, str]]
    cors: Any


def translation(parameters: Mapping[str, str], cache_dir: Path) -> Translation:
    """SAM's translation of template.yaml with these parameter values, from the cache when it holds it."""
    digest = hashlib.sha256()
    for part in (TEMPLATE.read_bytes(), RUNNER.read_bytes(), json.dumps(dict(parameters), sort_keys=True).encode()):
        digest.update(hashlib.sha256(part).digest())
    cached = cache_dir / f"{CACHE_PREFIX}{digest.hexdigest()[:24]}.json"
    if cached.exists():
        data = json.loads(cached.read_text())
        return Translation(Template(data["template"]), dict(data["parameters"]))
    result = translate(overrides=parameters)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for old in cache_dir.glob(f"{CACHE_PREFIX}*.json"):  # one translation kept: the newest
        old.unlink(missing_ok=True)
    cached.write_text(json.dumps({"template": result.template.data, "parameters": result.parameters}))
    return result


def _invokes(integration: Any, function: str) -> bool:
    """Whether an OpenAPI integration's URI names ``function`` or one of its aliases (``ApiFunctionAliaslive``)."""
    text = json.dumps(integration.get("uri") if isinstance(integration, dict) else None)
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(function)}(Alias[A-Za-z0-9]+)?(?![A-Za-z0-9])", text) is not None


def from_translation(result: Translation, function: str) -> HttpApi:
    """The routes (``("ANY", "/{proxy+}")``...) that invoke ``function``, and their API's CORS configuration."""
    for resource in result.created("AWS::ApiGatewayV2::Api").values():
        props = resource.get("Properties", {})
        body = props.get("Body")
        if not isinstance(body, dict):
            continue
        routes = [
            ("ANY" if method == ANY_METHOD else method.upper(), path)
            for path, operations in (body.get("paths") or {}).items()
            for method, operation in operations.items()
            if isinstance(operation, dict) and _invokes(operation.get("x-amazon-apigateway-integration"), function)
        ]
        if not routes:
            continue
        cors: Optional[dict[str, Any]] = None
        if isinstance(body.get("x-amazon-apigateway-cors"), dict):
            imported = result.evaluate(body["x-amazon-apigateway-cors"])  # camelCase, as API Gateway imports it
            cors = {key[0].upper() + key[1:]: value for key, value in imported.items()}
        elif isinstance(props.get("CorsConfiguration"), dict):
            cors = dict(result.evaluate(props["CorsConfiguration"]))
        return HttpApi(routes, cors)
    raise LookupError(f"SAM's translation has no HTTP API whose routes invoke {function}")


def http_api(template: Template, function: str, parameters: Mapping[str, str], cache_dir: Path) -> HttpApi:
    """The function's HTTP API as SAM translates it; without the SAM CLI's virtualenv, as template.yaml reads.

    The fallback warns: it is the local reading of the template, which AWS never sees (``make sam-venv``).
    """
    if not SAM_PYTHON.exists():
        log.warning(
            "SAM's translator is missing (%s; run `make sam-venv`): the local gateway reads its routes and CORS "
            "from template.yaml instead of SAM's translation",
            SAM_PYTHON,
        )
        return HttpApi(template.http_routes(function), template.http_cors(function, parameters))
    return from_translation(translation(parameters, cache_dir), function)

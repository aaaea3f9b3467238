"""The local gateway's routes and CORS are read from SAM's translation (local/http_api.py), as API Gateway gets them."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.cfn import template
from local.http_api import CACHE_PREFIX, from_translation, translation
from local.infra import local_environment
from local.sam import Translations, parameter_values
from local.stack import Config, LocalStack

TWO_ORIGINS = "https://app.example.com,https://admin.example.com"


def test_the_local_gateway_serves_the_translated_routes_and_cors(sam: Translations) -> None:
    served = from_translation(sam.of(overrides={"CorsAllowedOrigins": TWO_ORIGINS}), "ApiFunction")
    assert sorted(served.routes) == [("ANY", "/"), ("ANY", "/{proxy+}")]
    assert served.cors["AllowOrigins"] == TWO_ORIGINS.split(",")
    assert {"x-api-key", "authorization", "content-type", "idempotency-key"} <= set(served.cors["AllowHeaders"])
    assert served.cors["MaxAge"] == 600


def test_a_translation_is_kept_until_a_parameter_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = parameter_values(template(), {"CorsAllowedOrigins": TWO_ORIGINS})
    first = translation(values, tmp_path)
    (kept,) = tmp_path.glob(f"{CACHE_PREFIX}*.json")
    with monkeypatch.context() as patched:
        patched.setattr("local.http_api.translate", lambda **_: pytest.fail("translated again"))
        again = translation(values, tmp_path)  # from the file
    assert again.template.data == first.template.data
    assert list(tmp_path.glob(f"{CACHE_PREFIX}*.json")) == [kept]
    translation({**values, "CorsAllowedOrigins": "*"}, tmp_path)
    (replaced,) = tmp_path.glob(f"{CACHE_PREFIX}*.json")  # one kept: the newest
    assert replaced != kept


def test_the_local_stack_answers_cors_for_its_own_pages_unless_overridden(sam: Translations) -> None:
    # The console and the demo inbox are served by the API's own origin, under either name of the host; a page of
    # any other site a developer visits while `make local` runs gets no CORS answer.
    stack = LocalStack(Config(api_port=3123))
    served = from_translation(sam.of(overrides=stack.parameters()), "ApiFunction")
    assert served.cors["AllowOrigins"] == ["http://127.0.0.1:3123", "http://localhost:3123"]
    assert local_environment(stack.own_origins)["ApiFunction"]["DEV_USER_TOKEN_ORIGINS"] == ",".join(
        served.cors["AllowOrigins"]
    )
    overridden = LocalStack(Config(api_port=3123, parameter_overrides={"CorsAllowedOrigins": TWO_ORIGINS}))
    assert overridden.parameters()["CorsAllowedOrigins"] == TWO_ORIGINS

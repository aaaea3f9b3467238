from __future__ import annotations

import json

from tools.openapi import SPEC_PATH, current_spec


def test_committed_spec_is_current() -> None:
    assert SPEC_PATH.read_text() == current_spec(), "docs/openapi.json is stale: run `make openapi`"


def test_spec_documents_every_public_route() -> None:
    paths = json.loads(current_spec())["paths"]
    for path in (
        "/api/v1/events",
        "/api/v1/events:batch",
        "/api/v1/notifications/{job_id}",
        "/api/v1/templates",
        "/api/v1/users/{user_id}/notifications",
        "/api/v1/dlq",
        "/api/v1/dlq/redrive",
        "/api/v1/users/{user_id}/tokens",
        "/api/v1/users/{user_id}/inbox",
        "/api/v1/inbox",
        "/api/v1/inbox/counts",
        "/api/v1/inbox/{item_id}/read",
        "/api/v1/inbox/read-all",
        "/api/v1/templates:preview",
        "/api/v1/campaigns:schedule",
        "/api/v1/overview",
        "/api/v1/notifications/{job_id}/rendered",
        "/api/v1/notifications/{job_id}/members",
        "/api/v1/event-types",
        "/api/v1/links",
        "/api/v1/links/{code}",
        "/l/{code}",
        "/admin/",
        "/admin/{asset}",
    ):
        assert path in paths


def test_every_operation_documents_its_success_schema_and_errors_in_one_shape() -> None:
    spec = json.loads(current_spec())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            responses = operation["responses"]
            redirect = path.startswith("/l/")  # a short link answers 302
            (success,) = [code for code in responses if code.startswith("2") or redirect and code == "302"]
            pages = {success, "404"} if path.startswith("/u/") else set()  # one-click unsubscribe: for people
            if path.startswith("/l/"):  # a short link: a redirect without a body, else a page for people
                assert not responses[success].get("content") and "Location" in responses[success]["headers"], label
                assert {"Referrer-Policy", "Cache-Control"} <= set(responses[success]["headers"]), label
                pages = {"404", "503"}
            for code in pages:
                assert list(responses[code]["content"]) == ["text/html"], label
            pages |= {success} if path.startswith("/l/") else set()
            if path.startswith("/admin/"):  # the console's files: a page, its scripts, styles, icon; 304 when fresh
                assert set(responses[success]["content"]) == {
                    "text/html",
                    "text/css",
                    "text/javascript",
                    "image/svg+xml",
                }
                assert list(responses["404"]["content"]) == ["text/html"] and responses["304"]["content"] == {}
                pages = {success, "304", "404"}
            if success != "204" and success not in pages:
                assert "$ref" in responses[success]["content"]["application/json"]["schema"], label
            errors = [code for code in responses if not code.startswith("2")]
            assert {"400", "413", "415", "422", "500"} <= set(errors), label
            for code in set(errors) - pages:
                assert responses[code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
            public = operation.get("security") == []
            public_paths = (
                "/health",
                "/u/{token}",
                "/l/{code}",
                "/dev/users/{user_id}/tokens",
                "/admin/",
                "/admin/{asset}",
            )
            assert public == (path in public_paths), label
            bearer = operation.get("security") == [{"bearerAuth": []}]
            assert bearer == path.startswith("/api/v1/inbox"), label
            if bearer:  # a user token: refused (401, with its challenge) or a store down, never a scope
                assert {"401", "503"} <= set(errors) and "WWW-Authenticate" in responses["401"]["headers"], label
            else:
                assert public or {"401", "403", "503"} <= set(errors), label


def test_the_inbox_is_behind_a_bearer_scheme_and_the_rest_behind_the_api_key() -> None:
    spec = json.loads(current_spec())
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert spec["security"] == [{"ApiKey": []}]


def test_path_parameters_keep_their_constraints_in_the_document() -> None:
    # Percent-decoding the parameter (api.params) must not cost the document its pattern or length.
    (segment_id,) = json.loads(current_spec())["paths"]["/api/v1/segments/{segment_id}"]["get"]["parameters"]
    assert segment_id["schema"]["pattern"] == "^[A-Za-z0-9_.:-]+$" and segment_id["schema"]["maxLength"] == 128

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
    ):
        assert path in paths

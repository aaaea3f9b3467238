"""Write the API's OpenAPI document to docs/openapi.json (``make openapi``); the tests fail when it is stale."""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def current_spec() -> str:
    """The spec the API serves at /openapi.json, formatted for the repository."""
    from api.app import openapi_document

    return json.dumps(openapi_document(), indent=2) + "\n"


if __name__ == "__main__":
    SPEC_PATH.write_text(current_spec())
    print(f"wrote {SPEC_PATH.relative_to(Path.cwd())}", file=sys.stderr)

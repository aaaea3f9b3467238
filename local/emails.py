"""``make emails``: the emails the local stack sent, from moto's store."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from typing import Any


def sent_emails(endpoint: str) -> list[dict[str, Any]]:
    """The messages in moto's SES store, oldest first."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as resp:
        data = json.load(resp)
    messages = data.get("ses", {}).get("Message", [])
    if isinstance(messages, dict):
        messages = list(messages.values())
    return list(messages)


def main() -> int:
    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"
    try:
        emails = sent_emails(endpoint)
    except OSError as exc:
        print(f"cannot reach moto at {endpoint}: {exc} (is `make local` running?)", file=sys.stderr)
        return 1
    for email in emails:
        print(json.dumps(email, indent=2, default=str))
    print(f"{len(emails)} emails", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

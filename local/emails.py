"""``make emails``: the emails the local stack sent, read from moto's store (``/moto-api/data.json``)."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import urllib.request
from typing import Any


def sent_emails(endpoint: str) -> list[dict[str, Any]]:
    """The messages in moto's SES store (SES v1 and v2 share it), oldest first.

    Each is ``{id, source, destinations: {ToAddresses, CcAddresses, BccAddresses}, subject, body}``;
    ``body`` is the HTML part when there is one, else the text part.
    """
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as resp:
        data = json.load(resp)
    messages = data.get("ses", {}).get("Message", [])
    if isinstance(messages, dict):
        messages = list(messages.values())
    return list(messages)


def _text(body: str) -> str:
    """A readable rendering of an HTML body: tags dropped, links kept."""
    if "<" not in body:
        return body.strip()
    body = re.sub(r'<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 <\1>", body, flags=re.S | re.I)
    body = re.sub(r"<(br|/p|/div|/h\d|/li|/tr)\b[^>]*>", "\n", body, flags=re.I)
    body = re.sub(r"<[^>]+>", "", body)
    lines = (line.strip() for line in html.unescape(body).splitlines())
    return "\n".join(line for line in lines if line)


def format_email(email: dict[str, Any]) -> str:
    to = ", ".join(
        address for key in ("ToAddresses", "CcAddresses") for address in email.get("destinations", {}).get(key, [])
    )
    body = "\n".join(f"    {line}" for line in _text(str(email.get("body", ""))).splitlines())
    return f"From:    {email.get('source')}\nTo:      {to}\nSubject: {email.get('subject')}\n{body}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make emails", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print moto's records as JSON")
    parser.add_argument("--to", help="only emails to this address")
    parser.add_argument("--last", type=int, default=0, help="only the last N emails")
    args = parser.parse_args(argv)
    endpoint = f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"
    try:
        emails = sent_emails(endpoint)
    except OSError as exc:
        print(f"cannot reach moto at {endpoint}: {exc} (is `make local` running?)", file=sys.stderr)
        return 1
    if args.to:
        emails = [e for e in emails if args.to in e.get("destinations", {}).get("ToAddresses", [])]
    if args.last:
        emails = emails[-args.last :]
    for email in emails:
        print(json.dumps(email, indent=2) if args.json else format_email(email))
    print(f"{len(emails)} email(s) in {endpoint}/moto-api/data.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

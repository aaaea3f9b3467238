"""``make emails``: the emails the local stack sent, read from moto's SES store (``GET /_local/ses/emails``).

moto server serves that route here (``local/moto_server.py``): it reads moto's SES backend alone, indexed by
recipient, so a read costs the same whatever else the session stored; ``/moto-api/data.json`` dumps every backend.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from typing import Any, Optional

EMAILS_PATH = "/_local/ses/emails"


def _read(endpoint: str, to: Optional[str], contains: Optional[str], last: int) -> dict[str, Any]:
    query = urllib.parse.urlencode({k: v for k, v in (("to", to), ("contains", contains), ("last", last)) if v})
    # The answer holds only the mail asked for; the ceiling is for a server starved of CPU, not a size.
    with urllib.request.urlopen(f"{endpoint}{EMAILS_PATH}?{query}", timeout=60) as resp:
        return dict(json.load(resp))


def sent_emails(
    endpoint: str, to: Optional[str] = None, contains: Optional[str] = None, last: int = 0
) -> list[dict[str, Any]]:
    """The messages in moto's SES store (SES v1 and v2 share it), oldest first: all of them, or those to one
    address (To, Cc or Bcc), holding ``contains`` in their subject or body, the ``last`` N.

    Each is ``{id, source, destinations: {ToAddresses, CcAddresses, BccAddresses}, subject, body}``;
    ``body`` is the HTML part when there is one, else the text part.
    """
    return list(_read(endpoint, to, contains, last)["emails"])


def sent_count(endpoint: str) -> int:
    """How many messages moto's SES store holds."""
    return int(_read(endpoint, None, None, 1)["sent"])


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
        emails = sent_emails(endpoint, to=args.to, last=args.last)
    except OSError as exc:
        print(f"cannot reach moto at {endpoint}: {exc} (is `make local` running?)", file=sys.stderr)
        return 1
    for email in emails:
        print(json.dumps(email, indent=2) if args.json else format_email(email))
    print(f"{len(emails)} email(s) from {endpoint}{EMAILS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

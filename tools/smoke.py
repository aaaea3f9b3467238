"""``make smoke URL=… KEY=… EMAIL=…``: a deployed stack checked end to end over HTTPS, one step at a time.

Each step prints PASS or FAIL with what it saw; the run exits 1 when any step fails (or is skipped because a step
it needs failed), 0 when all pass, 2 on bad arguments. The steps:

1. ``health``: ``GET /health`` answers 200 ``{"status": "ok"}``.
2. ``openapi``: ``GET /openapi.json`` is an OpenAPI 3 document with ``POST /api/v1/events``.
3. ``event``: a ``user_registered`` email to EMAIL, as an inline recipient (``recipients.users``: delivered with that
   profile, no Auth lookup) with the user id ``--user-id`` (default ``smoke-<random>``). A stack deployed before
   inline recipients (issue 21) refuses them (422 on ``recipients.users``); with ``--user-id`` the event then goes
   to that user at the address its Auth service holds, and the step says so.
4. ``delivery``: the job reaches SENT or later (DELIVERED, BOUNCED, COMPLAINED), polled up to ``--timeout``.
5. ``user token``: ``POST /api/v1/users/{id}/tokens`` with the key (scope ``users:token``) answers 201 and a token.
6. ``inbox``: ``GET /api/v1/inbox`` with ``Authorization: Bearer <token>`` answers the user's page and counts.
7. ``console``: ``/admin/`` and every asset its page loads answer 200 with a Content-Security-Policy.
8. ``cors``: a browser's preflight from ``--origin`` for ``POST /api/v1/events`` with ``X-API-Key`` and
   ``Content-Type`` is allowed (the origin, POST and both headers). A stack whose ``CorsAllowedOrigins`` lists
   origins needs one of them here.

The key (``--key``, or ``SMOKE_KEY`` as ``make smoke`` passes it) needs ``events:write``, ``notifications:read`` and
``users:token`` (or ``admin``). http:// is accepted only for a stack on this machine (``make local``).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO
from urllib.parse import urljoin, urlsplit

import httpx

# What the job may end as once the email provider took it: SES's feedback moves a SENT email on.
REACHED = ("SENT", "DELIVERED", "BOUNCED", "COMPLAINED")
FINAL_FAILURES = ("FAILED", "EXPIRED", "SKIPPED")
# The headers a browser page sends the API with: the preflight asks for these.
PREFLIGHT_HEADERS = ("x-api-key", "content-type")
_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)=["']([^"'#]+)["']""", re.IGNORECASE)
_IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+\.js)["']""")


class StepFailed(Exception):
    """A step saw something other than what it checks for; the message says what."""


@dataclass
class Step:
    name: str
    passed: bool
    saw: str
    seconds: float


@dataclass
class Smoke:
    """The steps against one stack, sharing what earlier ones made (the job, the token)."""

    client: httpx.Client
    key: str
    email: str
    origin: str
    user_id: Optional[str]
    timeout: float
    out: TextIO = sys.stdout
    steps: list[Step] = field(default_factory=list)
    job_id: Optional[str] = None
    token: Optional[str] = None
    recipient: Optional[str] = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> bool:
        """Every step in order, printing each; True when all passed."""
        self.step("health", self.health)
        self.step("openapi", self.openapi)
        self.step("event", self.event)
        self.step("delivery", self.delivery, needs=self.job_id, needed="the event")
        self.step("user token", self.user_token, needs=self.recipient, needed="the event's user id")
        self.step("inbox", self.inbox, needs=self.token, needed="a user token")
        self.step("console", self.console)
        self.step("cors", self.cors)
        failed = [s.name for s in self.steps if not s.passed]
        summary = f"{len(self.steps) - len(failed)} of {len(self.steps)} steps passed"
        print(f"smoke: {summary}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=self.out, flush=True)
        return not failed

    def step(self, name: str, check: Callable[[], str], needs: Any = True, needed: str = "") -> None:
        began = self.clock()
        if needs is None:
            passed, saw = False, f"skipped: needs {needed}, which failed"
        else:
            try:
                passed, saw = True, check()
            except StepFailed as e:
                passed, saw = False, str(e)
            except httpx.HTTPError as e:
                passed, saw = False, f"{type(e).__name__}: {e}"
        seconds = self.clock() - began
        self.steps.append(Step(name, passed, saw, seconds))
        print(f"{'PASS' if passed else 'FAIL'} {name:<10} {saw} ({seconds:.1f} s)", file=self.out, flush=True)

    # --- the steps ----------------------------------------------------------------------------------------

    def health(self) -> str:
        resp = self.client.get("/health")
        body = _json(resp)
        if resp.status_code != 200 or body != {"status": "ok"}:
            raise StepFailed(f"GET /health -> {_seen(resp)}")
        return 'GET /health -> 200 {"status": "ok"}'

    def openapi(self) -> str:
        resp = self.client.get("/openapi.json")
        doc = _json(resp)
        if resp.status_code != 200 or not isinstance(doc, dict):
            raise StepFailed(f"GET /openapi.json -> {_seen(resp)}")
        version, paths = str(doc.get("openapi", "")), doc.get("paths") or {}
        if not version.startswith("3.") or "post" not in (paths.get("/api/v1/events") or {}):
            raise StepFailed(f"GET /openapi.json -> openapi {version!r}, no POST /api/v1/events among {len(paths)}")
        return f"GET /openapi.json -> OpenAPI {version}, {len(paths)} paths, POST /api/v1/events among them"

    def event(self) -> str:
        user = self.user_id or f"smoke-{uuid.uuid4().hex[:12]}"
        self.recipient = user  # the token step asks for this user's token whatever the event's answer
        marker = uuid.uuid4().hex
        body: dict[str, Any] = {
            "event_type": "user_registered",  # account mail: no preference or quiet hours hold it back
            "payload": {"confirmation_url": f"https://example.com/smoke/{marker}", "first_name": "Smoke"},
            "recipients": {"users": [{"user_id": user, "email": self.email}]},
            "channels": ["email"],
        }
        resp = self._post_event(body, marker)
        how = f"to {self.email} as inline recipient {user}"
        if resp.status_code == 422 and _refuses_inline_recipients(resp) and self.user_id is not None:
            body["recipients"] = {"user_ids": [user]}
            resp = self._post_event(body, marker)
            how = f"to user {user} at the address its Auth service holds (this API refused recipients.users)"
        job_ids = (_json(resp) or {}).get("job_ids") if resp.status_code == 202 else None
        if not isinstance(job_ids, list) or len(job_ids) != 1:
            refused = _refuses_inline_recipients(resp)
            hint = " (no inline recipients here: give --user-id, USER_ID= with make)" if refused else ""
            raise StepFailed(f"POST /api/v1/events -> {_seen(resp)}{hint}")
        self.job_id = str(job_ids[0])
        return f"POST /api/v1/events -> 202, job {self.job_id}, {how}"

    def delivery(self) -> str:
        deadline, pause, seen = self.clock() + self.timeout, 0.5, "nothing yet"
        while True:
            resp = self.client.get(f"/api/v1/notifications/{self.job_id}", headers=self._key())
            body = _json(resp) or {}
            status = body.get("status") if resp.status_code == 200 else None
            seen = f"status {status}" if status else _seen(resp)
            if status in REACHED:
                return f"GET /api/v1/notifications/{self.job_id} -> {status}"
            if status in FINAL_FAILURES:
                last = (body.get("history") or [{}])[-1]
                raise StepFailed(f"job {self.job_id} ended {status}: {last.get('reason') or last}")
            if resp.status_code not in (200, 404) or self.clock() > deadline:  # 404: not recorded yet
                raise StepFailed(f"job {self.job_id} not SENT within {self.timeout:.0f} s; last seen: {seen}")
            self.sleep(pause)
            pause = min(pause * 2, 5.0)

    def user_token(self) -> str:
        path = f"/api/v1/users/{self.recipient}/tokens"
        resp = self.client.post(path, json={"ttl_seconds": 300}, headers=self._key())
        body = _json(resp) or {}
        if resp.status_code != 201 or not body.get("token"):
            raise StepFailed(f"POST {path} -> {_seen(resp)}")
        self.token = str(body["token"])
        return f"POST {path} -> 201, a token until {body.get('expires_at')}"

    def inbox(self) -> str:
        resp = self.client.get("/api/v1/inbox", params={"limit": 5}, headers={"authorization": f"Bearer {self.token}"})
        body = _json(resp) or {}
        if resp.status_code != 200 or "items" not in body or "counts" not in body:
            raise StepFailed(f"GET /api/v1/inbox (Bearer) -> {_seen(resp)}")
        return f"GET /api/v1/inbox (Bearer) -> 200, {len(body['items'])} items, counts {body['counts']}"

    def console(self) -> str:
        page = self.client.get("/admin/")
        policy = page.headers.get("content-security-policy")
        if page.status_code != 200 or "text/html" not in page.headers.get("content-type", "") or not policy:
            raise StepFailed(f"GET /admin/ -> {_seen(page)}, CSP {policy!r}")
        # The page's own assets, then the modules its scripts import, each once.
        pending = [urljoin("/admin/", a) for a in _ASSET.findall(page.text) if _relative(a)]
        if not pending:
            raise StepFailed("GET /admin/ -> 200, but the page loads no assets")
        fetched: list[str] = []
        while pending:
            path = urlsplit(pending.pop(0)).path
            if path in fetched:
                continue
            resp = self.client.get(path)
            if resp.status_code != 200 or not resp.headers.get("content-security-policy"):
                raise StepFailed(f"GET {path} -> {_seen(resp)}, CSP {resp.headers.get('content-security-policy')!r}")
            fetched.append(path)
            if path.endswith(".js"):
                pending += [urljoin(path, m) for m in _IMPORT.findall(resp.text) if _relative(m)]
        names = ", ".join(p.removeprefix("/admin/") for p in fetched)
        return f"GET /admin/ and its {len(fetched)} assets ({names}) -> 200, each with CSP {policy!r}"

    def cors(self) -> str:
        resp = self.client.options(
            "/api/v1/events",
            headers={
                "origin": self.origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "X-API-Key,Content-Type",
            },
        )
        allow_origin = resp.headers.get("access-control-allow-origin")
        allow_headers = _listed(resp.headers.get("access-control-allow-headers", ""))
        allow_methods = _listed(resp.headers.get("access-control-allow-methods", ""))
        missing = [h for h in PREFLIGHT_HEADERS if h not in allow_headers and "*" not in allow_headers]
        saw = (
            f"OPTIONS /api/v1/events from {self.origin} -> {resp.status_code}, allow-origin {allow_origin!r}, "
            f"allow-methods {','.join(allow_methods) or None!r}, allow-headers {','.join(allow_headers) or None!r}"
        )
        if (
            not 200 <= resp.status_code < 300
            or allow_origin not in (self.origin, "*")
            or missing
            or ("post" not in allow_methods and "*" not in allow_methods)
        ):
            raise StepFailed(saw + (f"; missing {', '.join(missing)}" if missing else ""))
        return saw

    # --- helpers ------------------------------------------------------------------------------------------

    def _key(self) -> dict[str, str]:
        return {"x-api-key": self.key}

    def _post_event(self, body: dict[str, Any], marker: str) -> httpx.Response:
        # Idempotency-Key: a retried smoke request never sends a second email.
        return self.client.post("/api/v1/events", json=body, headers={**self._key(), "idempotency-key": marker})


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _seen(resp: httpx.Response) -> str:
    text = resp.text.strip().replace("\n", " ")
    return f"{resp.status_code} {text[:300]}{'…' if len(text) > 300 else ''}"


def _listed(header: str) -> list[str]:
    return [h.strip().lower() for h in header.split(",") if h.strip()]


def _refuses_inline_recipients(resp: httpx.Response) -> bool:
    """A 422 naming ``recipients.users``: an API from before inline recipients (an unknown field there)."""
    if resp.status_code != 422:
        return False
    fields = ((_json(resp) or {}).get("error") or {}).get("fields") or []
    return any(str(f.get("loc", "")).startswith("recipients.users") for f in fields if isinstance(f, dict))


def _relative(reference: str) -> bool:
    """A reference to the same site (``app.js``, ``./ui.js``), not to another (``https://…``, ``//cdn…``)."""
    return not urlsplit(reference).scheme and not reference.startswith("//")


def _local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make smoke", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the stack's ApiUrl output (https://…)")
    parser.add_argument(
        "--key",
        default=os.environ.get("SMOKE_KEY"),
        help="an API key with events:write, notifications:read and users:token (default: $SMOKE_KEY)",
    )
    parser.add_argument("--email", required=True, help="the address the smoke event is emailed to")
    parser.add_argument("--origin", default="https://example.com", help="the Origin of the CORS preflight")
    parser.add_argument("--user-id", help="the recipient's user id (default: smoke-<random>)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds the job may take to be SENT")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("give the API key: --key or SMOKE_KEY")
    url = str(args.url).rstrip("/")
    if urlsplit(url).scheme != "https" and not (urlsplit(url).scheme == "http" and _local(url)):
        parser.error(f"--url must be https:// (http:// only for a stack on this machine): {url}")
    print(f"smoke: {url}", flush=True)
    with httpx.Client(base_url=url, timeout=httpx.Timeout(30.0, connect=10.0)) as client:
        smoke = Smoke(client, args.key, args.email, args.origin, args.user_id, args.timeout)
        return 0 if smoke.run() else 1


if __name__ == "__main__":
    raise SystemExit(main())

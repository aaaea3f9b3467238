"""The local stack's demo receiver of status webhooks (issue 24, item 6), on 127.0.0.1:3003 (``WEBHOOK_RECEIVER_PORT``).

- ``POST`` to any path but ``/_secrets`` is a webhook: its Standard Webhooks signature is verified with the
  ``standardwebhooks`` library against every secret the receiver knows (a rotation's two included). Valid: 204;
  invalid or no secret known yet: 400. Each ``webhook-id`` is counted once, a valid message that repeats an id is
  counted as a repeat (at-least-once delivery retries with the same id).
- ``POST /_secrets`` with ``{"secret": "whsec_…"}`` teaches it a secret (204; 400 if it is not one; only from a
  loopback address). In process, ``WebhookReceiver(secrets=…)`` or :meth:`WebhookReceiver.add_secret` do the same.
  The local stack's receiver also has a ``secret_source``: when no secret it knows verifies a message, it asks the
  source for the secrets of the endpoints registered for its URL (read from the stack's moto), so an endpoint
  registered through the API or the console is verified without anyone pasting its secret.
- ``GET /`` lists the last 200 messages on a small page (no external assets); ``GET /messages.json`` gives them and
  the counts as JSON.
- Faults, for the chaos tests: :meth:`WebhookReceiver.fail_next` answers the next ``n`` webhooks with a status,
  :meth:`WebhookReceiver.fail_rate` a share of them drawn from a seeded RNG. A failed answer is counted as an
  injected failure, not as a message received: the sender is to retry it.

Run alone with ``python -m local.webhook_receiver``.
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from local.quiet_http import QuietHandler

log = logging.getLogger(__name__)

DEFAULT_PORT = 3003
MAX_MESSAGES = 200
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Received:
    """One webhook as received: its id, type and timestamp, whether its signature held (and why not), its data."""

    id: str
    type: Optional[str]
    timestamp: Optional[str]
    valid: bool
    data: Any
    received_at: float
    repeat: bool = False
    error: Optional[str] = None


@dataclass
class Counts:
    """Requests answered, by what they were: valid (unique ids and repeats among them), invalid, failed on purpose."""

    valid: int = 0
    unique: int = 0
    repeats: int = 0
    invalid: int = 0
    injected_failures: int = 0


@dataclass
class _Faults:
    pending: deque[int] = field(default_factory=deque)
    rate: float = 0.0
    status: int = 500
    rng: random.Random = field(default_factory=random.Random)


class WebhookReceiver:
    """The demo receiver; ``port`` None reads ``WEBHOOK_RECEIVER_PORT`` (default 3003), 0 picks a free one."""

    def __init__(
        self,
        port: Optional[int] = None,
        secrets: Iterable[str] = (),
        host: str = "127.0.0.1",
        max_messages: int = MAX_MESSAGES,
        secret_source: Optional[Callable[[], Iterable[str]]] = None,
    ) -> None:
        self._host = host
        self._secret_source = secret_source
        self._port = int(os.environ.get("WEBHOOK_RECEIVER_PORT", DEFAULT_PORT)) if port is None else port
        self._secrets: list[Webhook] = []
        self._known: set[str] = set()  # the secrets behind _secrets
        self._messages: deque[Received] = deque(maxlen=max_messages)
        self._ids: set[str] = set()
        self._counts = Counts()
        self._faults = _Faults()
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        for secret in secrets:
            self.add_secret(secret)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def start(self) -> WebhookReceiver:
        """Serve in a daemon thread (on a free port if it was 0)."""
        with self._lock:
            if self._server is None:
                self._server = ThreadingHTTPServer((self._host, self._port), self._handler())
                self._server.daemon_threads = True
                self._port = int(self._server.server_address[1])
                threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def add_secret(self, secret: str) -> None:
        """Verify messages with ``secret`` too (``whsec_`` and base64); ValueError if it is not one."""
        if not secret.startswith("whsec_"):
            raise ValueError("a secret is whsec_ and base64")
        try:
            verifier = Webhook(secret)
        except Exception as exc:  # binascii.Error, or an empty secret
            raise ValueError(f"not a webhook secret: {exc}") from None
        with self._lock:
            self._secrets.append(verifier)
            self._known.add(secret)

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` webhooks ``status`` without looking at them."""
        with self._lock:
            self._faults.pending.extend([status] * n)

    def fail_rate(self, rate: float, seed: Optional[int] = None, status: int = 500) -> None:
        """Answer a share ``rate`` of the webhooks ``status``, drawn from an RNG seeded with ``seed``."""
        with self._lock:
            self._faults.rate, self._faults.status, self._faults.rng = rate, status, random.Random(seed)

    def messages(self) -> list[Received]:
        """The last messages received (valid or not), oldest first."""
        with self._lock:
            return list(self._messages)

    def counts(self) -> Counts:
        with self._lock:
            return Counts(**asdict(self._counts))

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        """One webhook: the status to answer (an injected fault, 204 valid, 400 invalid), the message recorded."""
        with self._lock:
            fault = self._fault()
            if fault is not None:
                self._counts.injected_failures += 1
                return fault
            verifiers = list(self._secrets)
        error = _verify(verifiers, headers, body)
        if error is not None and self._secret_source is not None:
            # Learn what the source has that this receiver does not, then verify with every secret known now:
            # another thread may have learnt this message's secret meanwhile (the first messages of a new endpoint
            # arrive together), and what it learnt verifies this one too.
            self._learn()
            with self._lock:
                known = [v for v in self._secrets if v not in verifiers]
            if known:
                error = _verify(known, headers, body)
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        document = document if isinstance(document, dict) else {}
        message_id = headers.get("webhook-id", "")
        with self._lock:
            valid = error is None
            repeat = valid and message_id in self._ids
            if valid:
                self._counts.valid += 1
                self._counts.repeats += repeat
                self._counts.unique += not repeat
                self._ids.add(message_id)
            else:
                self._counts.invalid += 1
            self._messages.append(
                Received(
                    id=message_id,
                    type=_text(document.get("type")),
                    timestamp=_text(document.get("timestamp")),
                    valid=valid,
                    data=document.get("data"),
                    received_at=time.time(),
                    repeat=repeat,
                    error=error,
                )
            )
        return 204 if valid else 400

    def _learn(self) -> None:
        """Add the verifiers of the source's secrets this receiver did not know yet."""
        assert self._secret_source is not None
        try:
            offered = list(self._secret_source())
        except Exception as exc:  # noqa: BLE001 - the demo's source is moto: unreachable means nothing learnt
            log.warning("the webhook receiver could not read the endpoints' secrets: %s", exc)
            return
        with self._lock:
            known = self._known
            fresh = [secret for secret in offered if secret not in known and secret.startswith("whsec_")]
            verifiers = []
            for secret in fresh:
                try:
                    verifiers.append(Webhook(secret))
                except Exception:  # noqa: BLE001,S112 - not a secret the library reads: nothing to verify with
                    continue
                known.add(secret)
            self._secrets.extend(verifiers)

    def _fault(self) -> Optional[int]:
        if self._faults.pending:
            return self._faults.pending.popleft()
        if self._faults.rate and self._faults.rng.random() < self._faults.rate:
            return self._faults.status
        return None

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /messages.json`` answers: the counts and the messages, newest first."""
        return {"counts": asdict(self.counts()), "messages": [asdict(m) for m in reversed(self.messages())]}

    def page(self) -> str:
        """``GET /``: the messages, newest first, everything escaped."""
        counts = self.counts()
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    time.strftime("%H:%M:%S", time.localtime(m.received_at)),
                    m.id,
                    m.type or "",
                    m.timestamp or "",
                    ("valid" + (" (repeat)" if m.repeat else "")) if m.valid else f"invalid: {m.error}",
                )
            )
            + f"<td><code>{html.escape(json.dumps(m.data, ensure_ascii=False))}</code></td></tr>"
            for m in reversed(self.messages())
        )
        summary = ", ".join(f"{html.escape(k.replace('_', ' '))}: {v}" for k, v in asdict(counts).items())
        return (
            '<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
            "<title>Webhook receiver</title><style>body{font-family:sans-serif}td,th{padding:2px 8px;"
            "text-align:left;vertical-align:top}code{white-space:pre-wrap}</style></head><body>"
            f"<h1>Webhooks received</h1><p>{summary}</p><table><tr><th>received</th><th>webhook-id</th>"
            f"<th>type</th><th>timestamp</th><th>signature</th><th>data</th></tr>{rows}</table></body></html>"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?")[0]
                if path == "/":
                    self._answer(200, receiver.page().encode(), "text/html; charset=utf-8")
                elif path == "/messages.json":
                    self._answer(200, json.dumps(receiver.snapshot()).encode(), "application/json")
                else:
                    self._answer(404, b'{"error": "not found"}', "application/json")

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    self._answer(413, b'{"error": "at most 1 MiB"}', "application/json")
                    return
                body = self.rfile.read(length)
                if self.path.split("?")[0] == "/_secrets":
                    self._secret(body)
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._answer(receiver.receive(headers, body), b"", "")

            def _secret(self, body: bytes) -> None:
                if not ipaddress.ip_address(self.client_address[0]).is_loopback:
                    self._answer(403, b'{"error": "from localhost only"}', "application/json")
                    return
                try:
                    secret = json.loads(body)["secret"]
                    if not isinstance(secret, str):
                        raise ValueError("not a string")
                    receiver.add_secret(secret)
                except (ValueError, KeyError, TypeError) as exc:
                    error = json.dumps({"error": f"expected {{'secret': 'whsec_…'}}: {exc}"}).encode()
                    self._answer(400, error, "application/json")
                    return
                self._answer(204, b"", "")

            def _answer(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("content-type", content_type)
                if status != 204:
                    self.send_header("content-length", str(len(data)))
                self.end_headers()
                if status != 204:
                    self.wfile.write(data)

        return Handler


def _verify(verifiers: list[Webhook], headers: dict[str, str], body: bytes) -> Optional[str]:
    """None if one of ``verifiers`` verifies the message, else why not."""
    error = "no secret known: POST /_secrets first"
    for verifier in verifiers:
        try:
            verifier.verify(body, headers, json_parse=False)
            return None
        except WebhookVerificationError as exc:
            error = str(exc)
    return error


def _text(value: Any) -> Optional[str]:
    return value[:200] if isinstance(value, str) else None


def main() -> None:  # pragma: no cover - a manual run
    receiver = WebhookReceiver().start()
    print(f"webhook receiver on {receiver.url} (POST /_secrets {{'secret': 'whsec_…'}} to verify)", flush=True)
    threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()

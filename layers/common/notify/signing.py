"""Tamper-evident tokens: a JSON payload, base64url-encoded, and a truncated HMAC-SHA256 of it.

Each kind of token has its own key list, in its own SSM SecureString (read through
``notify.adapters.secrets.SsmSecret``, passed in as a callable so a rotated value is picked up): user tokens
(``notify.usertokens``), page cursors (``adapters.dynamodb.cursors``) and one-click unsubscribe links
(``notify.unsubscribe``). So the old key an operator keeps for months so that links in sent emails still
unsubscribe never verifies a user token, and each list rotates on its own schedule (docs/OPERATIONS.md). Each
token is also signed under its purpose, so even one key given to two purposes would not make a token of one kind
pass as the other.

A value may hold several keys separated by commas: the first signs, and a token made under any of them verifies
(store ``old,new`` until every container has read it, then ``new,old``, then drop ``old``). Every key must be at
least :data:`MIN_KEY_BYTES` bytes: a value with a shorter one, or with none, is refused each time it is loaded, with
an error that names the parameter and never a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from notify.errors import TransientError

SIGNATURE_BYTES = 16
MAX_TOKEN_CHARS = 2048
# HMAC-SHA256's own output size: a shorter key is guessable sooner than the signature is forgeable.
MIN_KEY_BYTES = 32


class BadToken(ValueError):
    """The token was not made here with this key and purpose, or was altered."""


class KeysUnusable(TransientError):
    """A key list cannot be used (no key, or one shorter than ``MIN_KEY_BYTES``): nothing is signed or verified
    with it. Transient, so the API answers 503 and the worker retries, until an operator stores a good value."""


def parse_keys(value: str, source: str) -> tuple[bytes, ...]:
    """The keys of a comma-separated value, newest first; KeysUnusable, naming ``source``, if one is too short."""
    keys = tuple(k.strip().encode() for k in value.split(",") if k.strip())
    if not keys:
        raise KeysUnusable(f"{source} holds no key (docs/OPERATIONS.md, before the first deployment)")
    for position, key in enumerate(keys, start=1):
        if len(key) < MIN_KEY_BYTES:
            raise KeysUnusable(
                f"{source}: key {position} of {len(keys)} is {len(key)} bytes; each key must be at least "
                f"{MIN_KEY_BYTES} random bytes, e.g. `openssl rand -base64 48` (docs/OPERATIONS.md)"
            )
    return keys


class Signer:
    """Signs and verifies payloads for one ``purpose`` under the keys ``key()`` returns.

    ``key`` is the purpose's own key list, comma-separated, newest first; an error names it by its ``name``
    attribute when it has one (``SsmSecret``'s is the parameter's name).
    """

    def __init__(self, key: Callable[[], str], purpose: str) -> None:
        self._key = key
        self._purpose = purpose
        self._source = str(getattr(key, "name", f"the {purpose} key list"))
        self._loaded: tuple[str, tuple[bytes, ...]] | None = None

    def sign(self, payload: dict[str, Any]) -> str:
        """``<base64url JSON>.<signature>``: opaque to its holder, and any change to it is detected."""
        keys = self._keys()
        body = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        text = body.decode().rstrip("=")
        return f"{text}.{self._signature(text, keys[0])}"

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a token this signer made; BadToken otherwise (KeysUnusable if the keys are)."""
        keys = self._keys()
        body, _, signature = token.partition(".")
        # compare_digest takes str only when it is ASCII (a TypeError otherwise): compare the UTF-8 bytes.
        given = signature.encode("utf-8", "surrogatepass")
        if len(token) > MAX_TOKEN_CHARS or not any(
            hmac.compare_digest(given, self._signature(body, key).encode()) for key in keys
        ):
            raise BadToken("not a token this service made, or it was altered")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            raise BadToken("not a token this service made") from None
        if not isinstance(payload, dict):
            raise BadToken("not a token this service made")
        return payload

    def _keys(self) -> tuple[bytes, ...]:
        """The keys now: checked each time the value changes (a rotation), reused while it does not."""
        value = self._key()
        if self._loaded is None or self._loaded[0] != value:
            self._loaded = (value, parse_keys(value, self._source))
        return self._loaded[1]

    def _signature(self, body: str, key: bytes) -> str:
        message = f"{self._purpose}\n{body}".encode()
        digest = hmac.new(key, message, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

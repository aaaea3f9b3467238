"""Tamper-evident tokens: a JSON payload, base64url-encoded, and a truncated HMAC-SHA256 of it.

The key is the service's signing key (an SSM SecureString read through ``notify.adapters.secrets.SsmSecret``,
passed in as a callable so a rotated key is picked up). The value may hold several keys separated by commas: the
first signs, and a token made under any of them verifies, so a key can be rotated without breaking the links in
emails already sent (store ``old,new`` until every container has read it, then ``new,old``, and drop ``old``
once those links may lapse: docs/OPERATIONS.md). Page cursors
(``adapters.dynamodb.cursors``) and one-click unsubscribe links (``notify.unsubscribe``) are both made here, each
under its own purpose, so a token of one kind is never accepted as the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

SIGNATURE_BYTES = 16
MAX_TOKEN_CHARS = 2048


class BadToken(ValueError):
    """The token was not made here with this key and purpose, or was altered."""


class Signer:
    """Signs and verifies payloads for one ``purpose`` under the key ``key()`` returns."""

    def __init__(self, key: Callable[[], str], purpose: str) -> None:
        self._key = key
        self._purpose = purpose

    def sign(self, payload: dict[str, Any]) -> str:
        """``<base64url JSON>.<signature>``: opaque to its holder, and any change to it is detected."""
        body = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        text = body.decode().rstrip("=")
        return f"{text}.{self._signature(text, self._keys()[0])}"

    def verify(self, token: str) -> dict[str, Any]:
        """The payload of a token this signer made; BadToken otherwise."""
        body, _, signature = token.partition(".")
        # compare_digest takes str only when it is ASCII (a TypeError otherwise): compare the UTF-8 bytes.
        given = signature.encode("utf-8", "surrogatepass")
        if len(token) > MAX_TOKEN_CHARS or not any(
            hmac.compare_digest(given, self._signature(body, key).encode()) for key in self._keys()
        ):
            raise BadToken("not a token this service made, or it was altered")
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            raise BadToken("not a token this service made") from None
        if not isinstance(payload, dict):
            raise BadToken("not a token this service made")
        return payload

    def _keys(self) -> list[str]:
        keys = [k.strip() for k in self._key().split(",") if k.strip()]
        if not keys:
            raise BadToken("no signing key is configured")
        return keys

    def _signature(self, body: str, key: str) -> str:
        message = f"{self._purpose}\n{body}".encode()
        digest = hmac.new(key.encode(), message, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

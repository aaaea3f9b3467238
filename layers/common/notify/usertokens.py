"""User tokens: short-lived signed tokens a browser or app holds to open its WebSocket and read its own inbox.

A service caller with the ``users:token`` scope asks ``POST /api/v1/users/{user_id}/tokens`` for one and hands it
to the user's front end. The token names the user and when it expires; it is signed with the service's signing
key for its own purpose (``notify.signing``), so it is neither a cursor nor an unsubscribe link, and a key rotated
as ``old,new`` then ``new,old`` (docs/OPERATIONS.md) keeps the tokens already handed out working until they expire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from notify.signing import BadToken, Signer

VERSION = 1
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(hours=24)


class UserTokens:
    """Issues and verifies user tokens under the key ``key()`` returns."""

    def __init__(self, key: Callable[[], str], ttl: timedelta = DEFAULT_TTL) -> None:
        self._signer = Signer(key, "user")
        self._ttl = ttl

    def issue(self, user_id: str, now: datetime, ttl: timedelta | None = None) -> tuple[str, datetime]:
        """A token for ``user_id`` and when it expires (``ttl`` or the default, at most a day, whole seconds)."""
        lifetime = min(ttl or self._ttl, MAX_TTL)
        expires = (now + lifetime).replace(microsecond=0)
        return self._signer.sign({"v": VERSION, "u": user_id, "exp": int(expires.timestamp())}), expires

    def verify(self, token: str, now: datetime) -> str:
        """The user a valid token names; BadToken if it is forged, altered, expired or names nobody."""
        payload = self._signer.verify(token)
        user, expires = payload.get("u"), payload.get("exp")
        if payload.get("v") != VERSION or not isinstance(user, str) or not user or not isinstance(expires, int):
            raise BadToken("the token names no user")
        if now.timestamp() >= expires:
            raise BadToken("the token has expired")
        return user

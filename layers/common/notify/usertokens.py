"""User tokens: short-lived signed tokens a browser or app holds to open its WebSocket and read its own inbox.

A service caller with the ``users:token`` scope asks ``POST /api/v1/users/{user_id}/tokens`` for one and hands it
to the user's front end. The token names the user and when it expires; it is signed under the user tokens' own
key list (``notify.signing``), which no other kind of token shares, so the old keys kept for unsubscribe links
never make one. A key rotated as ``old,new`` then ``new,old`` (docs/OPERATIONS.md) keeps the tokens already handed
out working until they expire.

A token that expires more than ``MAX_TTL`` from now is refused, whoever signed it: the API never issues one, so
it could only come from a stolen key, and no token, however made, is good for more than a day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from notify.signing import BadToken, Signer

VERSION = 1
DEFAULT_TTL = timedelta(hours=1)
MAX_TTL = timedelta(hours=24)
# How far the verifier's clock may run behind the issuer's (both Lambda's, NTP-synchronised) for a MAX_TTL token.
CLOCK_LEEWAY = timedelta(minutes=1)


class UserTokens:
    """Issues and verifies user tokens under the key list ``key()`` returns (the user tokens' own)."""

    def __init__(self, key: Callable[[], str], ttl: timedelta = DEFAULT_TTL) -> None:
        self._signer = Signer(key, "user")
        self._ttl = ttl

    def issue(self, user_id: str, now: datetime, ttl: timedelta | None = None) -> tuple[str, datetime]:
        """A token for ``user_id`` and when it expires (``ttl`` or the default, at most a day, whole seconds)."""
        lifetime = min(ttl or self._ttl, MAX_TTL)
        expires = (now + lifetime).replace(microsecond=0)
        return self._signer.sign({"v": VERSION, "u": user_id, "exp": int(expires.timestamp())}), expires

    def verify(self, token: str, now: datetime) -> str:
        """The user a valid token names; BadToken if it is forged, altered, expired, names nobody, or expires
        further from ``now`` than any token the API issues."""
        payload = self._signer.verify(token)
        user, expires = payload.get("u"), payload.get("exp")
        if payload.get("v") != VERSION or not isinstance(user, str) or not user or not isinstance(expires, int):
            raise BadToken("the token names no user")
        if now.timestamp() >= expires:
            raise BadToken("the token has expired")
        if expires - now.timestamp() > (MAX_TTL + CLOCK_LEEWAY).total_seconds():
            raise BadToken("the token lives longer than any token this service issues")
        return user

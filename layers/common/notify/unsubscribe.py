"""One-click unsubscribe links (RFC 8058): a signed token naming the user, the category and the channel.

Every email that is not an account notification carries ``List-Unsubscribe: <{base}/u/{token}>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. A ``POST`` of that form body to the link opts the user out of
that category on that channel, without an API key; a ``GET`` shows a page with a button and changes nothing (mail
scanners follow links). The token is signed under the unsubscribe links' own key list, so a forged or altered one
is refused. That list keeps an old key as long as the links in sent emails must work (months), which is why no
other kind of token is signed or verified with it (``notify.signing``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from notify.models import Category, Channel
from notify.signing import BadToken, Signer

VERSION = 1


@dataclass(frozen=True)
class Unsubscribe:
    """What a link opts out of."""

    user_id: str
    category: Category
    channel: Channel


class UnsubscribeLinks:
    """Makes links under ``base_url`` (the API's public URL) and reads their tokens back, under the key list
    ``key()`` returns (the unsubscribe links' own)."""

    def __init__(self, key: Callable[[], str], base_url: str) -> None:
        self._signer = Signer(key, "unsubscribe")
        self._base = base_url.rstrip("/")

    def link(self, user_id: str, category: Category, channel: Channel) -> str:
        """The https link an email carries for this user, category and channel."""
        token = self._signer.sign({"v": VERSION, "u": user_id, "c": category.value, "ch": channel.value})
        return f"{self._base}/u/{token}"

    def read(self, token: str) -> Unsubscribe:
        """What a token opts out of; BadToken if it was not made here, was altered, or names nothing known."""
        payload = self._signer.verify(token)
        try:
            found = Unsubscribe(str(payload["u"]), Category(payload["c"]), Channel(payload["ch"]))
        except (KeyError, ValueError):
            raise BadToken("the token names no user, category and channel") from None
        if payload.get("v") != VERSION or found.category is Category.ACCOUNT or not found.user_id:
            raise BadToken("the token names no user, category and channel")
        return found

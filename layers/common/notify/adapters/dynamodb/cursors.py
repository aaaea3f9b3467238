"""Page cursors: opaque, and signed, so a cursor the API did not issue is refused before DynamoDB sees it.

A cursor is a DynamoDB ``LastEvaluatedKey`` signed by :class:`notify.signing.Signer` under the cursors' own key
list (purpose ``cursor``). A client cannot read a meaningful key from it, nor edit one (to start inside another
user's partition, say): any change fails the signature and is a 422 on the ``cursor`` field. Dropping a key
invalidates the cursors issued under it (a client starts its listing again); see OPERATIONS.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Optional

from notify.adapters.dynamodb.items import from_item, to_item
from notify.errors import FieldError, ValidationFailed
from notify.signing import BadToken, Signer


class CursorCodec:
    """Encodes ``LastEvaluatedKey`` maps as signed cursors and decodes them back, checking the signature.

    ``key`` returns the cursors' key list (an SSM SecureString through ``notify.adapters.secrets.SsmSecret``,
    read once per cache period), so a rotated key is used without a redeploy.
    """

    def __init__(self, key: Callable[[], str]) -> None:
        self._signer = Signer(key, "cursor")

    def encode(self, last_key: Optional[Mapping[str, Any]]) -> Optional[str]:
        """The cursor for a page that ended at ``last_key`` (None: there is no next page)."""
        return self._signer.sign(from_item(last_key)) if last_key else None

    def decode(self, cursor: Optional[str]) -> Optional[dict[str, Any]]:
        """The ``ExclusiveStartKey`` a cursor stands for (None for no cursor); ValidationFailed if not ours."""
        if not cursor:
            return None
        try:
            data = self._signer.verify(cursor)
        except BadToken:
            raise _refused() from None
        if not all(isinstance(v, (str, int)) for v in data.values()):
            raise _refused()
        return to_item(data)


class _NoPaging(CursorCodec):
    """The codec of a store that never pages (the worker's, the scheduler's): it has no key to sign with."""

    def __init__(self) -> None:
        super().__init__(self._no_key)

    @staticmethod
    def _no_key() -> str:
        raise RuntimeError("this store was built without a cursor codec, so it cannot page")


NO_PAGING: CursorCodec = _NoPaging()


def _refused() -> ValidationFailed:
    return ValidationFailed([FieldError("cursor", "not a cursor this API returned, or it was altered")])

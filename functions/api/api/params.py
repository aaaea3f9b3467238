"""Path parameters as the caller meant them.

API Gateway hands the path over as sent, percent-encoded, and the Event Handler matches parameters
in it without decoding: ``/users/a%20b/notifications`` would name the user ``a%20b``. ``PathId``
decodes the segment first (``%2F`` included, so an id may hold a slash), then validates it.

``PathUserId`` is the ``{user_id}`` of every ``/api/v1/users/{user_id}/…`` route: decoded, then checked as every
user id is (:data:`notify.models.UserId`: ``%2E%2E`` is ``..``, refused with a 422 like ``..`` itself).
"""
# No `from __future__ import annotations`: the Event Handler reads these annotations at runtime.

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path
from notify.models import MAX_ID_BYTES, UserId
from pydantic import BeforeValidator


def _percent_decoded(value: Any) -> Any:
    # errors="strict": escapes that are not UTF-8 are a 422 for the parameter, not a guess.
    return unquote(value, errors="strict") if isinstance(value, str) else value


PercentDecoded = BeforeValidator(_percent_decoded)
PathUserId = Annotated[UserId, Path(max_length=MAX_ID_BYTES), PercentDecoded]

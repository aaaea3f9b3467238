"""Frames to WebSocket connections, and closing them, through API Gateway's management API (``PostToConnection``,
``DeleteConnection``)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from notify.adapters.aws import error_code, is_transient
from notify.errors import ConnectionGone, PermanentError, TransientError
from notify.limits import MESSAGE_BYTES

PERMANENT_CODES = frozenset({"PayloadTooLargeException", "ForbiddenException", "BadRequestException"})


class ApiGatewayConnectionPoster:
    """The ConnectionPoster port over an ``apigatewaymanagementapi`` client.

    The client is built once per container with the WebSocket API's stage URL as its endpoint and
    :data:`notify.adapters.aws.SEND_CONFIG` (one attempt, short timeouts). It is typed ``Any``: the boto3 stubs
    this project installs do not cover that service.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, data: bytes) -> None:
        """``PostToConnection`` of one message (refused before the call if over 128 KiB).

        410 Gone is ConnectionGone; throttling, 5xx and a call that got no answer are TransientError; a payload too
        large, a forbidden call or any other 4xx is PermanentError. A lost answer is not OutcomeUnknown here: the
        item is in the inbox already and a frame is best effort, so the caller only records the failure.
        """
        if len(data) > MESSAGE_BYTES:
            raise PermanentError(f"a WebSocket message carries at most {MESSAGE_BYTES} bytes, not {len(data)}")
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except (ClientError, BotoCoreError) as exc:
            raise _translated(exc, connection_id, "refused the frame") from exc

    def close(self, connection_id: str) -> None:
        """``DeleteConnection``: API Gateway closes the socket (close code 1000) and invokes ``$disconnect``.

        Errors are translated as for :meth:`post`: 410 Gone (closed already, or its handshake not complete) is
        ConnectionGone.
        """
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except (ClientError, BotoCoreError) as exc:
            raise _translated(exc, connection_id, "refused to close the connection") from exc


def _translated(exc: ClientError | BotoCoreError, connection_id: str, refused: str) -> Exception:
    """The domain error for a failed management API call."""
    if isinstance(exc, BotoCoreError):
        return TransientError(f"API Gateway's management API did not answer: {exc}")
    code = error_code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code == "GoneException" or status == 410:
        return ConnectionGone(f"connection {connection_id} is gone")
    if code not in PERMANENT_CODES and is_transient(exc):
        return TransientError(f"API Gateway: {code}: {exc}")
    return PermanentError(f"API Gateway {refused}: {code}: {exc}")

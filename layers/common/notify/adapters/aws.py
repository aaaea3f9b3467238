"""Shared helpers for boto3 adapters: error classification, and the client settings of provider sends."""

from __future__ import annotations

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError

from notify.errors import DeliveryError, OutcomeUnknown, TransientError

# Provider sends (SES SendEmail, SNS Publish) are made once per attempt, by the worker only: botocore must not
# re-send a request whose answer was lost, or the worker's own retry would make it a third. The timeouts bound
# one call (connect + read, about 12 s) well inside the worker's 60 s claim lease, so a send never outlives it.
SEND_CONNECT_TIMEOUT = 2
SEND_READ_TIMEOUT = 10
SEND_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=SEND_CONNECT_TIMEOUT,
    read_timeout=SEND_READ_TIMEOUT,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "Throttled",  # SNS's ThrottledException (HTTP 429)
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "SlowDown",
        "TransactionConflictException",
    }
)


def error_code(exc: ClientError) -> str:
    """The ``Error.Code`` of a botocore ClientError, or "" when the answer carries none."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: Exception) -> bool:
    """Throttling (by its code, or HTTP 429), 5xx and connection problems are worth retrying; the rest is not."""
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in TRANSIENT_CODES or status == 429 or status >= 500
    return isinstance(exc, BotoCoreError)


def send_failure(provider: str, exc: BotoCoreError) -> DeliveryError:
    """The domain error for a send that got no answer.

    No connection (a connect timeout, an unreachable endpoint), missing credentials, a bad parameter: nothing
    reached the provider, so it is :class:`TransientError`. A read timeout, a connection dropped after the request
    went out): the provider may have taken it, so :class:`OutcomeUnknown`.
    """
    if isinstance(exc, HTTPClientError):
        return OutcomeUnknown(f"{provider}: no answer after the request was sent, it may have been delivered: {exc}")
    return TransientError(f"{provider} unreachable: {exc}")

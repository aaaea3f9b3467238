"""Domain errors. Adapters translate client errors into these; handlers map them to HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


class NotifyError(Exception):
    """Base class of every error the domain raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request, addressed by a dotted path.

    ``line`` is the 1-based line of the field's text the problem is on, for text with lines (a template part).
    """

    loc: str
    msg: str
    type: str = "value_error"
    line: Optional[int] = None


class ValidationFailed(NotifyError):
    """The input breaks a rule; carries field-level errors for a 422."""

    def __init__(self, errors: list[FieldError], message: str = "The request is not valid") -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors


class NotFound(NotifyError):
    """The addressed resource does not exist."""


class Conflict(NotifyError):
    """The request conflicts with the current state (idempotency key reuse, versions)."""


class Unauthorized(NotifyError):
    """No valid credentials."""


class Forbidden(NotifyError):
    """Valid credentials without the needed scope."""


class DeliveryError(NotifyError):
    """A channel, the user directory or a store failed for one job."""

    transient: bool = False


class TransientError(DeliveryError):
    """Worth retrying later: throttling, timeouts, 5xx, a dependency down."""

    transient = True


class PermanentError(DeliveryError):
    """Retrying cannot help: rejected address, missing template, unknown user."""


class OutcomeUnknown(DeliveryError):
    """The request may have reached the provider but its answer was lost (a read timeout, a dropped connection).

    Neither transient nor permanent: sending again could deliver twice, so the worker never retries it. The job
    ends ``FAILED`` with reason ``outcome_unknown`` and a dead letter, for an operator to check and redrive.
    """


class ConnectionGone(PermanentError):
    """A WebSocket connection is closed (API Gateway answers 410 Gone): forget it; it is not an error."""


class TemplateFailed(PermanentError):
    """A template could not be rendered: a syntax error, an exception it raised, or a broken render budget.

    The worker fails the job permanently with reason ``template_error``; a preview answers 422.
    """


class FeedbackEarly(NotifyError):
    """An SES event about a send its job has not recorded yet (still ``SENDING``): apply it on a later try.

    SES can publish an event (a simulator bounce, a fast delivery) before the worker has written ``SENT`` with the
    message id; the feedback function raises so that Lambda's retries of the SNS invocation bring it back.
    """


class IngestUnavailable(NotifyError):
    """Neither Kafka nor the fallback queue took every job of the event.

    Some jobs may still have reached Kafka (a timed-out write can land), so the 503 names the event id: a
    retry under it makes the same job ids, and the worker's claim drops any copy already delivered.
    """

    def __init__(self, message: str, retry_after_seconds: int = 5) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


@dataclass
class StoreUnavailable(NotifyError):
    """The status store cannot be written; a batch must be retried whole."""

    reason: str = ""
    causes: list[str] = field(default_factory=list)


class KeyReused(Exception):
    """An idempotency key came back with a body other than the one first accepted under it."""

"""Email through Amazon SES v2."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from notify.adapters.aws import error_code, is_transient, send_failure
from notify.errors import PermanentError, TransientError
from notify.headers import header_value, is_field_name
from notify.records import RenderedMessage

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

PERMANENT_CODES = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException"})


class SesEmailSender:
    """Email through SES v2 ``SendEmail`` (simple content, UTF-8) from one address, in a configuration set if given.

    ``configuration_set`` is the one tracked mail goes through (its event destination takes Open and Click, so
    SES adds a pixel and wraps every link); ``untracked_configuration_set`` the one for untracked mail, whose
    destination publishes no Open or Click and whose engagement metrics are off, so SES changes nothing in the
    message. Untracked mail never goes through the tracked set: without an untracked set, it goes through none.
    """

    def __init__(
        self,
        client: SESV2Client,
        from_address: str,
        configuration_set: Optional[str] = None,
        untracked_configuration_set: Optional[str] = None,
    ) -> None:
        self._client = client
        self._from = from_address
        self._configuration_set = configuration_set
        self._untracked_configuration_set = untracked_configuration_set

    def send_email(
        self,
        to: str,
        message: RenderedMessage,
        headers: Optional[dict[str, str]] = None,
        tags: Optional[dict[str, str]] = None,
        *,
        tracked: bool = True,
    ) -> str:
        """``SendEmail`` with the text and/or HTML body, ``headers`` as message headers and ``tags`` as ``EmailTags``,
        through the tracked or the untracked configuration set.

        This is where the email's headers are built, so it is where they are made safe: in the From address, the
        subject and every header value, each run of control characters (CR, LF...) becomes one space; a header
        name that is not one (RFC 5322) is PermanentError, before anything is sent.

        Throttling, 5xx and the other transient codes are TransientError; any other ClientError, and always
        MessageRejected, an unverified MAIL FROM domain or a suspended account, is PermanentError. A call that got
        no answer is mapped by :func:`~notify.adapters.aws.send_failure`.
        """
        body: dict[str, Any] = {}
        if message.text is not None:
            body["Text"] = {"Data": message.text, "Charset": "UTF-8"}
        if message.html is not None:
            body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
        subject = header_value(message.subject or "")
        simple: dict[str, Any] = {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": body}
        if headers:
            bad = [name for name in headers if not is_field_name(name)]
            if bad:
                raise PermanentError(f"not a header name: {', '.join(map(repr, bad))}")
            simple["Headers"] = [{"Name": k, "Value": header_value(v)} for k, v in headers.items()]
        kwargs: dict[str, Any] = {
            "FromEmailAddress": header_value(self._from),
            "Destination": {"ToAddresses": [to]},
            "Content": {"Simple": simple},
        }
        if tags:
            kwargs["EmailTags"] = [{"Name": k, "Value": v} for k, v in tags.items()]
        configuration_set = self._configuration_set if tracked else self._untracked_configuration_set
        if configuration_set:
            kwargs["ConfigurationSetName"] = configuration_set
        try:
            return str(self._client.send_email(**kwargs)["MessageId"])
        except ClientError as exc:
            if is_transient(exc) and error_code(exc) not in PERMANENT_CODES:
                raise TransientError(f"SES: {error_code(exc)}: {exc}") from exc
            raise PermanentError(f"SES rejected the email: {error_code(exc)}: {exc}") from exc
        except BotoCoreError as exc:
            raise send_failure("SES", exc) from exc

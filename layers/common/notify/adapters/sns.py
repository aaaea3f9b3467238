"""Push through Amazon SNS mobile platform endpoints (APNs, FCM)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from notify.adapters.aws import error_code, is_transient, send_failure
from notify.errors import PermanentError, TransientError
from notify.records import RenderedMessage

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

PERMANENT_CODES = frozenset({"EndpointDisabled", "InvalidParameter", "NotFound", "PlatformApplicationDisabled"})


class SnsPushSender:
    """Push through SNS ``Publish`` to a mobile platform endpoint's ARN, one message shaped for APNs and FCM."""

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def send_push(self, endpoint: str, message: RenderedMessage, data: dict[str, Any]) -> str:
        """``Publish`` with ``MessageStructure=json``: an APNs alert (sandbox included) with ``data`` beside it, an FCM
        notification with ``data`` as strings, and the body as the default.

        A disabled or unknown endpoint, an invalid parameter or a disabled platform application is PermanentError;
        throttling and 5xx otherwise are TransientError, anything else PermanentError. A call that got no answer is
        mapped by :func:`~notify.adapters.aws.send_failure`.
        """
        alert = {"title": message.title or "", "body": message.body or ""}
        payload = {
            "default": message.body or "",
            "APNS": json.dumps({"aps": {"alert": alert, "sound": "default"}, **data}),
            "APNS_SANDBOX": json.dumps({"aps": {"alert": alert, "sound": "default"}, **data}),
            "GCM": json.dumps({"notification": alert, "data": {k: str(v) for k, v in data.items()}}),
        }
        try:
            resp = self._client.publish(TargetArn=endpoint, Message=json.dumps(payload), MessageStructure="json")
            return str(resp["MessageId"])
        except ClientError as exc:
            if error_code(exc) not in PERMANENT_CODES and is_transient(exc):
                raise TransientError(f"SNS: {error_code(exc)}: {exc}") from exc
            raise PermanentError(f"SNS rejected the push: {error_code(exc)}: {exc}") from exc
        except BotoCoreError as exc:
            raise send_failure("SNS", exc) from exc

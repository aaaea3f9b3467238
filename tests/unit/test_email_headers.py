"""Email headers are safe by construction (issue 20, item 5): whatever a payload, a template or the configuration
holds, no CR, LF or other control character reaches a header value SES is given."""

from __future__ import annotations

from typing import Any

import pytest
from notify.adapters.ses import SesEmailSender
from notify.errors import PermanentError
from notify.records import RenderedMessage

INJECTION = "Eve\r\nBcc: victim@example.com"


class _Recorder:
    """An SES v2 client that keeps the arguments of each SendEmail."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return {"MessageId": "m-1"}


def _values(call: dict[str, Any]) -> list[str]:
    simple = call["Content"]["Simple"]
    return [call["FromEmailAddress"], simple["Subject"]["Data"], *(h["Value"] for h in simple.get("Headers", []))]


def test_the_ses_adapter_puts_no_control_character_in_any_header() -> None:
    client = _Recorder()
    sender = SesEmailSender(client, f"Notify {INJECTION} <noreply@example.com>")  # type: ignore[arg-type]
    message = RenderedMessage("review_liked.email.en", 1, "en", subject=f"{INJECTION} liked", text="a\r\nb")
    link = f"<https://x.example/u/t>{INJECTION}"
    sender.send_email("to@example.com", message, {"List-Unsubscribe": link})
    (call,) = client.calls
    values = _values(call)
    assert not [v for v in values if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in v)], values
    assert call["Content"]["Simple"]["Subject"]["Data"] == "Eve Bcc: victim@example.com liked"
    assert call["Content"]["Simple"]["Body"]["Text"]["Data"] == "a\r\nb"  # the body keeps its lines
    assert call["Destination"] == {"ToAddresses": ["to@example.com"]}


def test_a_header_name_that_is_not_one_is_refused_before_sending() -> None:
    client = _Recorder()
    message = RenderedMessage("review_liked.email.en", 1, "en", subject="s", text="t")
    for name in ("X-Tag\r\nBcc", "X Tag", "X:Tag", ""):
        with pytest.raises(PermanentError, match="header name"):
            SesEmailSender(client, "noreply@example.com").send_email(  # type: ignore[arg-type]
                "to@example.com", message, {name: "v"}
            )
    assert client.calls == []

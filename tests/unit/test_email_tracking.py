"""Account mail (password resets, confirmations) is never open- or click-tracked: the worker sends it untracked,
and the SES adapter sends an untracked email through the configuration set that publishes no Open or Click."""

from __future__ import annotations

from typing import Any

from notify.adapters.ses import SesEmailSender
from notify.records import RenderedMessage

from .test_delivery import World

MESSAGE = RenderedMessage("new_film.email.en", 1, "en", subject="s", text="t", html="<p>t</p>")


class _Client:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return {"MessageId": f"m-{len(self.calls)}"}


def test_account_mail_is_sent_untracked_and_every_other_email_tracked() -> None:
    world = World()
    for event_type in ("password_reset", "user_registered", "new_film"):
        world.service.handle(world.job(event_type))
    assert world.email.tracked == [False, False, True]


def test_the_ses_adapter_sends_untracked_mail_through_the_set_without_open_or_click_events() -> None:
    client = _Client()
    sender = SesEmailSender(client, "from@example.com", "tracked-set", untracked_configuration_set="quiet-set")  # type: ignore[arg-type]
    sender.send_email("a@example.com", MESSAGE)
    sender.send_email("a@example.com", MESSAGE, tracked=False)
    assert [c.get("ConfigurationSetName") for c in client.calls] == ["tracked-set", "quiet-set"]


def test_without_an_untracked_set_untracked_mail_goes_through_no_set_rather_than_the_tracked_one() -> None:
    client = _Client()
    SesEmailSender(client, "from@example.com", "tracked-set").send_email("a@example.com", MESSAGE, tracked=False)  # type: ignore[arg-type]
    assert "ConfigurationSetName" not in client.calls[0]

"""Account mail (password resets, confirmations) is never open- or click-tracked: the worker sends it untracked,
and the SES adapter sends an untracked email through the configuration set that publishes no Open or Click."""

from __future__ import annotations

from typing import Any

import pytest
from notify.adapters.ses import SesEmailSender
from notify.records import RenderedMessage
from notify.services.feedback import link_without_secrets

from .fakes import World

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


@pytest.mark.parametrize(
    ("clicked", "recorded"),
    [
        ("https://watch.example.com:8443/films/42?token=abc#play", "https://watch.example.com:8443/films/42"),
        ("https://api.example.com/u/eyJ1Ijoi.c2ln", "https://api.example.com/u/"),
        # A custom domain mapped under a base path: the token is still the last segment.
        ("https://example.com/notify/u/eyJ1Ijoi.c2ln/", "https://example.com/notify/u/"),
        # A short link's code leads to its whole target URL (a reset token in its query, say).
        ("https://sho.rt/l/K4awphEi5n5f6w1g", "https://sho.rt/l/"),
        ("mailto:someone@example.com", None),
    ],
)
def test_a_clicked_link_is_recorded_without_any_bearer_value(clicked: str, recorded: str | None) -> None:
    assert link_without_secrets(clicked) == recorded

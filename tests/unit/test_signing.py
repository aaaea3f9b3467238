"""Signed tokens: one purpose each, altered ones refused, and keys rotated without breaking old links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from notify.errors import TransientError
from notify.settings import ApiSettings, SettingsError, WebSocketSettings, load
from notify.signing import BadToken, Signer
from notify.usertokens import MAX_TTL, UserTokens

# Keys of 32 bytes or more, as every key must be (MIN_KEY_BYTES).
K1, K2 = "k1" * 16, "k2" * 16
OLD, NEW = "old-" * 8, "new-" * 8


def test_a_token_verifies_for_its_purpose_only() -> None:
    token = Signer(lambda: K1, "unsubscribe").sign({"u": "ana"})
    assert Signer(lambda: K1, "unsubscribe").verify(token) == {"u": "ana"}
    with pytest.raises(BadToken):
        Signer(lambda: K1, "cursor").verify(token)  # a link is never accepted as a cursor


def test_rotation_signs_with_the_first_key_and_still_accepts_the_old_one() -> None:
    old = Signer(lambda: K1, "unsubscribe").sign({"u": "ana"})
    rotating = Signer(lambda: f"{K2},{K1}", "unsubscribe")
    assert rotating.verify(old) == {"u": "ana"}
    new = rotating.sign({"u": "bo"})
    assert Signer(lambda: K2, "unsubscribe").verify(new) == {"u": "bo"}
    with pytest.raises(BadToken):
        Signer(lambda: K2, "unsubscribe").verify(old)  # once k1 is dropped, its links lapse


NOT_ASCII = ["abc.\u00e9", "e30.\U0001f600", "abc.\ud800", "\u00e9.\u00e9"]


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "e30.", "x" * 3000, *NOT_ASCII])
def test_anything_else_is_refused(token: str) -> None:
    with pytest.raises(BadToken):
        Signer(lambda: K1, "unsubscribe").verify(token)


def _value(value: str) -> Callable[[], str]:
    return lambda: value


def test_the_documented_rotation_never_has_a_container_refuse_what_another_signed() -> None:
    # Containers read the key at different times (5-minute caches): at each step of OPERATIONS.md, every value a
    # container may hold accepts what any other container signs.
    steps = [OLD, f"{OLD},{NEW}", f"{NEW},{OLD}", NEW]
    for before, after in zip(steps, steps[1:], strict=False):
        for signer_value in (before, after):
            token = Signer(_value(signer_value), "user").sign({"u": "ada"})
            for verifier_value in (before, after):
                assert Signer(_value(verifier_value), "user").verify(token) == {"u": "ada"}, (
                    f"signed under {signer_value!r}, refused under {verifier_value!r}"
                )
    # What the old procedure allowed: a container on "new,old" signs what one still on "old" refuses.
    with pytest.raises(BadToken):
        Signer(lambda: OLD, "user").verify(Signer(lambda: f"{NEW},{OLD}", "user").sign({"u": "ada"}))


# -- issue 20, finding 4: a key list per purpose, 32-byte keys, user tokens no longer than a day ----------------

LONG = "a-key-of-at-least-thirty-two-bytes-0001"


class _Parameter:
    """A key source that says where it lives, as ``SsmSecret`` does (``name``)."""

    def __init__(self, value: str, name: str) -> None:
        self.value, self.name = value, name

    def __call__(self) -> str:
        return self.value


@pytest.mark.parametrize("value", ["s" * 16, f"{LONG},{'s' * 16}", f"{'s' * 31}", " , "])
def test_a_key_shorter_than_32_bytes_is_refused_at_load(value: str) -> None:
    signer = Signer(_Parameter(value, "/notifications/signing/cursors"), "cursor")
    with pytest.raises(TransientError) as signing:
        signer.sign({"u": "ana"})
    with pytest.raises(TransientError) as verifying:
        signer.verify(Signer(lambda: LONG, "cursor").sign({"u": "ana"}))
    for refused in (signing.value, verifying.value):
        message = str(refused)
        assert "/notifications/signing/cursors" in message, message  # names the parameter...
        assert "s" * 16 not in message and LONG not in message, message  # ...never a key


def test_a_key_of_32_bytes_or_more_signs() -> None:
    key = "k" * 32
    token = Signer(lambda: key, "cursor").sign({"u": 1})
    assert Signer(lambda: f" {key} , {LONG} ", "cursor").verify(token) == {"u": 1}


def test_a_user_token_living_longer_than_a_day_is_refused_even_under_a_valid_key() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    tokens = UserTokens(lambda: LONG)
    ten_years = int((now + timedelta(days=3650)).timestamp())
    forged = Signer(lambda: LONG, "user").sign({"v": 1, "u": "victim", "exp": ten_years})
    with pytest.raises(BadToken):
        tokens.verify(forged, now)
    just_over = int((now + MAX_TTL + timedelta(minutes=2)).timestamp())
    with pytest.raises(BadToken):
        tokens.verify(Signer(lambda: LONG, "user").sign({"v": 1, "u": "victim", "exp": just_over}), now)
    # The longest token the API issues verifies, on a verifier whose clock runs a little behind the issuer's.
    token, _ = tokens.issue("ada", now, MAX_TTL)
    assert tokens.verify(token, now - timedelta(seconds=30)) == "ada"


def test_a_function_names_only_its_own_key_lists_and_never_one_for_two_purposes() -> None:
    in_app = {"INBOX_TABLE": "inbox", "CONNECTIONS_TABLE": "connections"}
    assert load(WebSocketSettings, {**in_app, "USER_TOKEN_KEYS_PARAMETER": "/n/user-tokens"})
    with pytest.raises(SettingsError, match="USER_TOKEN_KEYS_PARAMETER: Field required"):
        load(WebSocketSettings, in_app)
    # A configuration of the one key for everything is refused at cold start, never read as all three lists.
    with pytest.raises(SettingsError, match="SIGNING_KEY_PARAMETER is no longer read.*docs/OPERATIONS.md"):
        load(WebSocketSettings, {**in_app, "SIGNING_KEY_PARAMETER": "/n/signing-key"})
    api = {f.alias: "x" for f in ApiSettings.model_fields.values() if f.alias and f.is_required()}
    api.update(KAFKA_BOOTSTRAP_SERVERS="x", KAFKA_TOPIC="x")  # required by the default transport, kafka
    lists = {"USER_TOKEN_KEYS_PARAMETER": "/n/u", "CURSOR_KEYS_PARAMETER": "/n/c", "UNSUBSCRIBE_KEYS_PARAMETER": "/n/s"}
    assert load(ApiSettings, {**api, **lists}).unsubscribe_keys_parameter == "/n/s"
    with pytest.raises(SettingsError, match="one SSM parameter holds the keys of two purposes"):
        load(ApiSettings, {**api, **lists, "UNSUBSCRIBE_KEYS_PARAMETER": "/n/u"})

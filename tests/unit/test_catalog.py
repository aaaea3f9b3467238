from __future__ import annotations

import pytest
from notify.catalog import EVENT_TYPES, get_event_type, validate_payload
from notify.errors import ValidationFailed


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_sample_payload_validates(name: str) -> None:
    spec = EVENT_TYPES[name]
    assert validate_payload(spec, spec.sample_payload())


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ValidationFailed) as info:
        get_event_type("nope")
    (error,) = info.value.errors
    assert error.loc == "event_type"
    assert "new_episode" in error.msg


@pytest.mark.parametrize(
    ("name", "payload", "loc"),
    [
        ("user_registered", {}, "payload.confirmation_url"),
        ("user_registered", {"confirmation_url": "not a url"}, "payload.confirmation_url"),
        ("user_registered", {"confirmation_url": "https://x.io", "extra": 1}, "payload.extra"),
        ("password_reset", {"reset_url": "https://x.io", "expires_in_minutes": 0}, "payload.expires_in_minutes"),
        ("new_episode", {**EVENT_TYPES["new_episode"].sample_payload(), "season": 0}, "payload.season"),
        (
            "new_film",
            {**EVENT_TYPES["new_film"].sample_payload(), "release_date": "2026-13-01"},
            "payload.release_date",
        ),
        (
            "review_liked",
            {**EVENT_TYPES["review_liked"].sample_payload(), "likes_count": "many"},
            "payload.likes_count",
        ),
    ],
)
def test_bad_payloads_name_the_field(name: str, payload: dict, loc: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_payload(EVENT_TYPES[name], payload)
    assert loc in [e.loc for e in info.value.errors]


def test_payload_is_normalised_to_json_types() -> None:
    out = validate_payload(EVENT_TYPES["new_film"], EVENT_TYPES["new_film"].sample_payload())
    assert out["release_date"] == "2026-12-01"
    assert out["watch_url"] == "https://example.com/watch/f-1"

"""Signed tokens: one purpose each, altered ones refused, and keys rotated without breaking old links."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from notify.signing import BadToken, Signer


def test_a_token_verifies_for_its_purpose_only() -> None:
    token = Signer(lambda: "k1", "unsubscribe").sign({"u": "ana"})
    assert Signer(lambda: "k1", "unsubscribe").verify(token) == {"u": "ana"}
    with pytest.raises(BadToken):
        Signer(lambda: "k1", "cursor").verify(token)  # a link is never accepted as a cursor


def test_rotation_signs_with_the_first_key_and_still_accepts_the_old_one() -> None:
    old = Signer(lambda: "k1", "unsubscribe").sign({"u": "ana"})
    rotating = Signer(lambda: "k2,k1", "unsubscribe")
    assert rotating.verify(old) == {"u": "ana"}
    new = rotating.sign({"u": "bo"})
    assert Signer(lambda: "k2", "unsubscribe").verify(new) == {"u": "bo"}
    with pytest.raises(BadToken):
        Signer(lambda: "k2", "unsubscribe").verify(old)  # once k1 is dropped, its links lapse


NOT_ASCII = ["abc.\u00e9", "e30.\U0001f600", "abc.\ud800", "\u00e9.\u00e9"]


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "e30.", "x" * 3000, *NOT_ASCII])
def test_anything_else_is_refused(token: str) -> None:
    with pytest.raises(BadToken):
        Signer(lambda: "k1", "unsubscribe").verify(token)


def _value(value: str) -> Callable[[], str]:
    return lambda: value


def test_the_documented_rotation_never_has_a_container_refuse_what_another_signed() -> None:
    # Containers read the key at different times (5-minute caches): at each step of OPERATIONS.md, every value a
    # container may hold accepts what any other container signs.
    steps = ["old", "old,new", "new,old", "new"]
    for before, after in zip(steps, steps[1:], strict=False):
        for signer_value in (before, after):
            token = Signer(_value(signer_value), "user").sign({"u": "ada"})
            for verifier_value in (before, after):
                assert Signer(_value(verifier_value), "user").verify(token) == {"u": "ada"}, (
                    f"signed under {signer_value!r}, refused under {verifier_value!r}"
                )
    # What the old procedure allowed: a container on "new,old" signs what one still on "old" refuses.
    with pytest.raises(BadToken):
        Signer(lambda: "old", "user").verify(Signer(lambda: "new,old", "user").sign({"u": "ada"}))

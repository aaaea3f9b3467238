"""The contract tier's one way to SAM's translation of template.yaml (local/sam.py), cached for the session."""

from __future__ import annotations

import pytest

from local.sam import Translations


@pytest.fixture(scope="session")
def sam() -> Translations:
    return Translations()

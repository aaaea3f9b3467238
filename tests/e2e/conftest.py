"""The end-to-end tier's stack: one `python -m local` for the session, shared by the modules that use it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.launch import StackProcess, start


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The whole service on free ports, as `make local` runs it (the campaign schedule ticks every 5 s)."""
    stack = start(tmp_path_factory.mktemp("live"), SCHEDULE_SECONDS="5")
    yield stack
    stack.stop()

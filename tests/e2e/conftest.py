"""The end-to-end tier's stacks: one `python -m local` for the session, shared by the modules that use it, and one
with TRANSPORT=sqs, shared by the slice's sqs half and the sqs transport's own tests."""

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


@pytest.fixture(scope="session")
def sqs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    """The whole service with TRANSPORT=sqs, as `TRANSPORT=sqs make local` runs it: no Kafka, the jobs on the SQS
    jobs queue (the campaign schedule ticks every 5 s); 240 s: a ceiling for its start on a loaded machine."""
    stack = start(tmp_path_factory.mktemp("sqs"), timeout=240, TRANSPORT="sqs", SCHEDULE_SECONDS="5")
    yield stack
    stack.stop()

"""Lambda SnapStart runtime hooks: a snapshot holds a function's init, never what belongs to one container.

With SnapStart (template.yaml), Lambda runs a function's init once per published version, snapshots the microVM
and resumes every new execution environment of that version from the snapshot. The snapshot should hold the work
that is the same everywhere: the imports (kafka-python and the MSK IAM signer included, which the code otherwise
imports on the first publish) and botocore's service models and endpoint rules, which the first client of each
service loads. It must not hold what belongs to one environment: the ``random`` module's state (retry and
fan-out jitter), Kafka producers and HTTP connection pools, credentials, and the per-container caches (API keys,
templates, Auth profiles, the Auth token, the SES token bucket).

So before the snapshot the container's services are built once, which loads what their clients need, and after a
restore they are dropped and built again: the models are already in memory, so that costs milliseconds, and every
restored environment starts with its own producer, pools, caches and credentials, as after a cold start.

``snapshot_restore_py`` ships with Lambda's Python runtimes only: anywhere else :func:`register` registers
nothing and the hooks never run.
"""

from __future__ import annotations

import importlib
import random
from typing import Any, Protocol

# Modules the code imports on first use rather than at import (kafka-python's producer and protocol, the MSK IAM
# signer): under SnapStart the snapshot holds them instead of a restored environment's first publish.
PRELOAD = ("kafka", "kafka.errors", "aws_msk_iam_sasl_signer")


class ServicesFactory(Protocol):
    """A ``functools.cache``d factory of the container's services (each function's ``services``)."""

    def __call__(self) -> Any:
        """The services, built on the first call."""
        ...

    def cache_clear(self) -> None:
        """Forget the services, so the next call builds them again."""
        ...


def before_snapshot(services: ServicesFactory) -> None:
    """Import what the first invocation would import, and build the services once (no request is made)."""
    for module in PRELOAD:
        importlib.import_module(module)
    services()


def after_restore(services: ServicesFactory) -> None:
    """Reseed ``random`` and rebuild the services, so restored environments share no state of the snapshot's."""
    random.seed()  # from os.urandom; uuid4 and secrets read os.urandom themselves
    services.cache_clear()
    services()


def register(services: ServicesFactory) -> bool:
    """Register both hooks for ``services`` on Lambda's Python runtime (True); elsewhere do nothing (False)."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot, services)
    register_after_restore(after_restore, services)
    return True

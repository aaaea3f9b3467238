"""The one loader of the sample events in events/ (the same files `sam local invoke -e` takes)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parent.parent.parent / "events"


@cache
def _read(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text()))


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of events/<name>.json."""
    return copy.deepcopy(_read(name))

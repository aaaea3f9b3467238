"""Benchmarks (``make bench``): they print numbers; nothing here asserts a timing.

Each module runs alone (``python -m bench.ingest``) or with the others (``python -m bench``). With ``--quick``
it runs once at a tiny size: that checks it still works (tests/e2e/test_bench_runs.py), and its figures mean
nothing.
"""

from __future__ import annotations

import argparse
from typing import Optional

QUICK_HELP = "once, at a tiny size: checks that the benchmark runs; the figures mean nothing"


def arguments(doc: Optional[str]) -> argparse.ArgumentParser:
    """The command line every benchmark takes (``--quick``), described by the first paragraph of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=QUICK_HELP)
    return parser

"""Cold start: the time to import each handler module in a fresh interpreter, next to a bare handler's.

The bare handler does what any Powertools + boto3 function does at import (a
Logger, Metrics and Tracer, an Event Handler resolver, ``import boto3``) and
nothing else, so the ratio shows what this service adds on top of the platform.
Neither builds a boto3 client at import: the service builds its clients on the
first invocation (once per container).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = (
    "import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "logger, metrics, tracer = Logger(), Metrics(), Tracer()\n"
    "app = APIGatewayHttpResolver(enable_validation=True)\n"
)
MODULES = {"api": "import api.app", "worker": "import worker.app", "scheduler": "import scheduler.app"}


def _time_import(code: str, runs: int) -> float:
    """Median seconds for ``code`` to run in a new interpreter, minus the interpreter's own start-up."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / p) for p in ("layers/common", "functions/api", "functions/worker", "functions/scheduler")
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
    }
    timer = "import time; t=time.perf_counter()\n{code}\nprint(time.perf_counter()-t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", timer.format(code=code)], env=env, capture_output=True, text=True, check=True
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def run(runs: int = 7) -> dict[str, float]:
    """Median import seconds per handler module and for the bare handler."""
    results = {"bare": _time_import(BARE, runs)}
    for name, code in MODULES.items():
        results[name] = _time_import(code, runs)
    return results


def main() -> None:
    results = run()
    bare = results["bare"]
    print("cold start: median import time in a fresh interpreter (7 runs)")
    print(f"  {'bare Powertools+boto3':<24}{bare * 1000:8.0f} ms   1.00×")
    for name in MODULES:
        print(f"  {name + '.app':<24}{results[name] * 1000:8.0f} ms   {results[name] / bare:.2f}×  (goal ≤ 1.5×)")


if __name__ == "__main__":
    main()

"""Cold start: the time to import each handler module in a fresh interpreter, next to a bare handler's, and what
SnapStart changes.

The bare handler does what any Powertools + boto3 function does at import (a
Logger, Metrics and Tracer, an Event Handler resolver, ``import boto3``) and
nothing else, so the ratio shows what this service adds on top of the platform.
Neither builds a boto3 client at import: the service builds its clients on the
first invocation (once per container).

SnapStart (``notify.snapstart``): in a fresh interpreter, with a stand-in for Lambda's ``snapshot_restore_py``
that records the hooks, the handler module is imported, its before-snapshot hook run (the lazily imported
modules, then the services built once) and its after-restore hook run (``random`` reseeded, the services built
again). Import plus the before-snapshot hook is the init a snapshot holds; the after-restore hook is what a
restored environment still runs before its first event. Without SnapStart a cold start pays the import, the
services' first build and, on the first publish, kafka-python's import. Lambda's own restore of the microVM is not
measured here (CloudWatch reports it as Restore Duration).
"""

from __future__ import annotations

import json
import os
import platform
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
# The functions with SnapStart (template.yaml) and their settings.
SNAPSTART = {"api": ("api.app", "ApiSettings"), "worker": ("worker.app", "WorkerSettings")}
# Times a fresh interpreter's import, then the hooks the module registered, as a snapshot and a restore run them.
HOOKS = """
import json, sys, time, types
hooks = types.ModuleType("snapshot_restore_py")
hooks.before, hooks.after = [], []
hooks.register_before_snapshot = lambda f, *a, **k: hooks.before.append((f, a, k)) or f
hooks.register_after_restore = lambda f, *a, **k: hooks.after.append((f, a, k)) or f
sys.modules["snapshot_restore_py"] = hooks
t0 = time.perf_counter()
__import__(sys.argv[1])
t1 = time.perf_counter()
for f, a, k in hooks.before:
    f(*a, **k)
t2 = time.perf_counter()
for f, a, k in hooks.after:
    f(*a, **k)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "before_snapshot": t2 - t1, "after_restore": t3 - t2}))
"""
# Without SnapStart: the import, the first build of the services and, on the first publish, kafka-python.
FIRST_INVOCATION = """
import json, sys, time
t0 = time.perf_counter()
module = __import__(sys.argv[1], fromlist=["services"])
t1 = time.perf_counter()
module.services()  # each handler module has it (api.app imports it from api.context)
import kafka, aws_msk_iam_sasl_signer  # noqa: E401 - what the first publish imports
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_invocation": t2 - t1}))
"""


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / p) for p in ("layers/common", "functions/api", "functions/worker", "functions/scheduler")
        ),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
    }


def _time_import(code: str, runs: int) -> float:
    """Median seconds for ``code`` to run in a new interpreter, minus the interpreter's own start-up."""
    timer = "import time; t=time.perf_counter()\n{code}\nprint(time.perf_counter()-t)"
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", timer.format(code=code)],
            env=_environment(),
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def _settings_environment(model_name: str) -> dict[str, str]:
    """A placeholder of the right type for every variable the settings read; nothing is called."""
    from notify import settings

    env = {}
    for field in getattr(settings, model_name).model_fields.values():
        if not field.alias:
            continue
        kind = str(field.annotation)
        if field.alias == "KAFKA_AUTH":
            env[field.alias] = "iam"  # as template.yaml's default: the MSK IAM signer is part of the init
        elif field.alias.endswith("_URL"):
            env[field.alias] = "http://127.0.0.1:9/placeholder"
        elif "int" in kind or "float" in kind:
            env[field.alias] = "16" if field.alias == "WORKER_CONCURRENCY" else "5"
        else:
            env[field.alias] = "placeholder"
    return {
        **env,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "placeholder",
        "AWS_SECRET_ACCESS_KEY": "placeholder",
    }


def _median_phases(code: str, module: str, model_name: str, runs: int) -> dict[str, float]:
    """Median seconds of each phase ``code`` prints as JSON, over ``runs`` fresh interpreters."""
    env = {**_environment(), **_settings_environment(model_name)}
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code, module], env=env, capture_output=True, text=True, check=True, timeout=120
        )
        for phase, seconds in json.loads(out.stdout.strip().splitlines()[-1]).items():
            samples.setdefault(phase, []).append(seconds)
    return {phase: statistics.median(values) for phase, values in samples.items()}


def run(runs: int = 7) -> dict[str, float]:
    """Median import seconds per handler module and for the bare handler."""
    results = {"bare": _time_import(BARE, runs)}
    for name, code in MODULES.items():
        results[name] = _time_import(code, runs)
    return results


def run_snapstart(runs: int = 7) -> dict[str, dict[str, float]]:
    """Per SnapStart function: median import, before-snapshot and after-restore seconds, and the first invocation's
    setup without SnapStart."""
    results = {}
    for name, (module, model_name) in SNAPSTART.items():
        hooks = _median_phases(HOOKS, module, model_name, runs)
        plain = _median_phases(FIRST_INVOCATION, module, model_name, runs)
        results[name] = {**hooks, "first_invocation": plain["first_invocation"], "plain_import": plain["import"]}
    return results


def main() -> None:
    print(f"Python {platform.python_version()} ({sys.executable})")
    results = run()
    bare = results["bare"]
    print("cold start: median import time in a fresh interpreter (7 runs)")
    print(f"  {'bare Powertools+boto3':<24}{bare * 1000:8.0f} ms   1.00×")
    for name in MODULES:
        print(f"  {name + '.app':<24}{results[name] * 1000:8.0f} ms   {results[name] / bare:.2f}×  (goal ≤ 1.5×)")
    snap = run_snapstart()
    print("SnapStart: median of 7 fresh interpreters (Lambda's own restore of the microVM not included)")
    print(
        f"  {'':<12}{'import':>8}{'before-snapshot hook':>22}{'= snapshot holds':>18}"
        f"{'after-restore hook':>20}{'without SnapStart':>19}"
    )
    for name, r in snap.items():
        held = r["import"] + r["before_snapshot"]
        without = r["plain_import"] + r["first_invocation"]
        print(
            f"  {name + '.app':<12}{r['import'] * 1000:6.0f} ms{r['before_snapshot'] * 1000:19.0f} ms"
            f"{held * 1000:15.0f} ms{r['after_restore'] * 1000:17.0f} ms{without * 1000:16.0f} ms"
        )
    print(
        "  (without SnapStart: import + the services' first build + kafka-python's import on the first publish;"
        " with it, a restored environment runs only the after-restore hook)"
    )


if __name__ == "__main__":
    main()

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

Each SnapStart function gets its environment from template.yaml, as a deployment would (the parameters' defaults,
example values for the others, resource names computed by ``local.infra.planned_infra``), so that a new setting
cannot leave it unconfigured. Building the services contacts nothing: a connection attempt fails the run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys

from bench import arguments
from local.cfn import template
from local.events import REGION
from local.infra import function_environments, planned_infra
from local.launch import pythonpath
from local.snapshot_restore import STAND_IN

BARE = (
    "import boto3\n"
    "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
    "logger, metrics, tracer = Logger(), Metrics(), Tracer()\n"
    "app = APIGatewayHttpResolver(enable_validation=True)\n"
)
MODULES = {"api": "import api.app", "worker": "import worker.app", "scheduler": "import scheduler.app"}
RUNS = 7  # fresh interpreters per figure, the median printed (1 with --quick)
# Run before the scripts below (they build the services): a connection or a DNS lookup raises, so the benchmark
# fails instead of timing a request. Building the services must make none (a snapshot must not hold a connection).
NO_NETWORK = """
import socket
def _refuse(*args, **kwargs):
    raise RuntimeError(f"a network call while building the services: {args!r}")
socket.socket.connect = socket.socket.connect_ex = socket.getaddrinfo = _refuse
"""
# Times a fresh interpreter's import, then the hooks the module registered, as a snapshot and a restore run them.
HOOKS = (
    STAND_IN
    + """
import json, time
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
)
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
    """This process's environment without AWS's variables (no profile, endpoint or credentials of the machine's)."""
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("AWS_")},
        "PYTHONPATH": pythonpath(),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "bench",
    }


def _time_import(code: str, runs: int) -> float:
    """Median seconds for ``code`` to run in a new interpreter, minus the interpreter's own start-up."""
    timer = "import time; t=time.perf_counter()\n{code}\nprint(time.perf_counter()-t)"
    samples = []
    for _ in range(runs):
        out = _run([sys.executable, "-c", timer.format(code=code)], _environment())
        samples.append(float(out.strip().splitlines()[-1]))
    return statistics.median(samples)


# A deployment's values for template.yaml's parameters without a default, of the shape a real one has, so that
# the services build as they would in Lambda. No default exists because each deployment has its own; any value
# would do, since building the services makes no request (the scripts above refuse every connection), so these
# addresses are never contacted. KafkaAuth iam (MSK's; the default is tls): the MSK IAM signer is part of the init.
EXAMPLE_PARAMETERS = {
    "KafkaBootstrapServers": (
        "b-1.notifications.a1b2c3.c2.kafka.us-east-1.amazonaws.com:9098,"
        "b-2.notifications.a1b2c3.c2.kafka.us-east-1.amazonaws.com:9098"
    ),
    "MskClusterArn": "",  # KafkaMode's default is self-managed: there is no MSK cluster to name
    "KafkaAuth": "iam",
    "AuthApiUrl": "https://auth.example.com",
    "SenderEmail": "notifications@example.com",
}


def snapstart_functions() -> dict[str, str]:
    """The functions template.yaml gives SnapStart: handler module by logical id."""
    return {
        logical_id: function.handler.rsplit(".", 1)[0]
        for logical_id, function in template().functions().items()
        if function.properties.get("SnapStart", {}).get("ApplyOn") == "PublishedVersions"
    }


def function_environment(logical_id: str) -> dict[str, str]:
    """The function's environment as template.yaml sets it in a deployment named ``notification-service``, from
    the parameters' defaults and :data:`EXAMPLE_PARAMETERS`; resources are named, not created."""
    tpl = template()
    parameters = {**tpl.parameter_defaults(), **EXAMPLE_PARAMETERS}
    # Each API's base URL as API Gateway gives it, the logical id for its id (PUBLIC_API_URL, WEBSOCKET_ENDPOINT).
    apis = {
        logical_id: f"https://{logical_id.lower()}.execute-api.{REGION}.amazonaws.com"
        for kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api")
        for logical_id in tpl.resources(kind)
    }
    infra = planned_infra(tpl, "notification-service", parameters, apis)
    return {
        **function_environments(tpl, infra, overrides={})[logical_id],
        # What Lambda adds: the region, and credentials (never used: nothing is called).
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "example",
        "AWS_SECRET_ACCESS_KEY": "example",
    }


def _median_phases(code: str, module: str, logical_id: str, runs: int) -> dict[str, float]:
    """Median seconds of each phase ``code`` prints as JSON, over ``runs`` fresh interpreters."""
    env = {**_environment(), **function_environment(logical_id)}
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        out = _run([sys.executable, "-c", NO_NETWORK + code, module], env)
        for phase, seconds in json.loads(out.strip().splitlines()[-1]).items():
            samples.setdefault(phase, []).append(seconds)
    return {phase: statistics.median(values) for phase, values in samples.items()}


def _run(command: list[str], env: dict[str, str]) -> str:
    """The command's stdout; its stderr in the error when it fails (a settings error, say)."""
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{command[-1]}: exit {out.returncode}\n{out.stderr[-3000:]}")
    return out.stdout


def run(runs: int = RUNS) -> dict[str, float]:
    """Median import seconds per handler module and for the bare handler."""
    results = {"bare": _time_import(BARE, runs)}
    for name, code in MODULES.items():
        results[name] = _time_import(code, runs)
    return results


def run_snapstart(runs: int = RUNS) -> dict[str, dict[str, float]]:
    """Per SnapStart function (by handler module): median import, before-snapshot and after-restore seconds, and
    the first invocation's setup without SnapStart."""
    results = {}
    for logical_id, module in snapstart_functions().items():
        hooks = _median_phases(HOOKS, module, logical_id, runs)
        plain = _median_phases(FIRST_INVOCATION, module, logical_id, runs)
        results[module] = {**hooks, "first_invocation": plain["first_invocation"], "plain_import": plain["import"]}
    return results


def main(quick: bool = False) -> None:
    """Print the import times and the SnapStart phases; ``quick``: one interpreter each instead of seven."""
    runs = 1 if quick else RUNS
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores")
    results = run(runs)
    bare = results["bare"]
    print(f"cold start: median import time in a fresh interpreter ({runs} runs)")
    print(f"  {'bare Powertools+boto3':<24}{bare * 1000:8.0f} ms   1.00×")
    for name in MODULES:
        print(f"  {name + '.app':<24}{results[name] * 1000:8.0f} ms   {results[name] / bare:.2f}×  (goal ≤ 1.5×)")
    snap = run_snapstart(runs)
    print(f"SnapStart: median of {runs} fresh interpreters (Lambda's own restore of the microVM not included)")
    print(
        f"  {'':<14}{'import':>8}{'before-snapshot hook':>22}{'= snapshot holds':>18}"
        f"{'after-restore hook':>20}{'without SnapStart':>19}"
    )
    for module, r in snap.items():
        held = r["import"] + r["before_snapshot"]
        without = r["plain_import"] + r["first_invocation"]
        print(
            f"  {module:<14}{r['import'] * 1000:6.0f} ms{r['before_snapshot'] * 1000:19.0f} ms"
            f"{held * 1000:15.0f} ms{r['after_restore'] * 1000:17.0f} ms{without * 1000:16.0f} ms"
        )
    print(
        "  (without SnapStart: import + the services' first build + kafka-python's import on the first publish;"
        " with it, a restored environment runs only the after-restore hook)"
    )


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

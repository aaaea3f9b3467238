"""Real peers for the benchmarks: moto server and Tansu in their own processes, provisioned from template.yaml;
dynalite (a DynamoDB implementation in Node.js) for the worker benchmark's DynamoDB, installed on first use; and
Transport sqs's jobs queue on the same moto, for the runs of that transport next to Kafka's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from local.processes import Process, free_port
from local.stack import Config, LocalStack

ROOT = Path(__file__).resolve().parent.parent
# Git-ignored: what the benchmarks install (dynalite's node_modules) and the handlers' stdout.
WORK_DIR = ROOT / ".bench"
NODE_DIR = WORK_DIR / "node"
HANDLER_LOG = WORK_DIR / "handlers.log"
DYNALITE_VERSION = "4.0.0"


@contextmanager
def peers() -> Iterator[LocalStack]:
    """The local stack's peers and resources, without its pollers: the benchmark drives the handlers.

    While it is open, this process's stdout goes to ``.bench/handlers.log``: Powertools' ``single_metric``
    prints its metric line whatever ``POWERTOOLS_METRICS_DISABLED`` says, and the numbers are printed after.
    """
    with tempfile.TemporaryDirectory() as state:
        config = Config.free_ports(prefix=f"b{uuid.uuid4().hex[:8]}", state_dir=Path(state), with_mappings=False)
        stack = LocalStack(config)
        try:
            stack.start_peers()
            stack.provision()
            stack.seed()
            # The handlers' JSON logs and metric lines would drown the numbers.
            os.environ.update(POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")
            # Powertools warns when a request records no metric (a GET, say): expected, as in pytest's settings.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            _forget_clients()
            with handler_output():
                yield stack
        finally:
            if stack.kafka is not None:
                # The handlers' Kafka producers stay connected (a container keeps its own until it ends), and Tansu
                # would wait 5 s for them to leave: nothing of it is needed any more.
                stack.kafka.stop(timeout=1.0)
            stack.stop()


def jobs_queue(stack: LocalStack, fifo: bool = False) -> tuple[str, str]:
    """Transport sqs's jobs queue on the stack's moto, with the properties template.yaml gives it (its redrive into
    the stack's DLQ included) and the name the local stack would; the stack's other resources, Kafka's, stay as they
    are. Its URL and ARN.

    ``fifo``: the same queue as a FIFO queue (``.fifo``, no content-based deduplication), for the benchmarks' FIFO
    runs (bench/fifo.py); a FIFO queue's redrive must go to a FIFO queue, so its DLQ is the stack's DLQ made again as
    one."""
    import boto3

    assert stack.infra is not None
    client: Any = boto3.client("sqs")
    suffix = ".fifo" if fifo else ""

    def attributes(logical_id: str) -> dict[str, str]:
        props = {k: v for k, v in stack.template.properties(logical_id).items() if k != "RedrivePolicy"}
        if fifo:
            props.update(FifoQueue=True, ContentBasedDeduplication=False)
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in props.items()}

    def arn(url: str) -> str:
        return str(client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    redrive = stack.template.properties("JobsQueue")["RedrivePolicy"]
    dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    dlq_arn = stack.infra.queue_arns[dlq]
    if fifo:
        dlq_url = client.create_queue(QueueName=f"{stack.config.prefix}-{dlq}.fifo", Attributes=attributes(dlq))
        dlq_arn = arn(dlq_url["QueueUrl"])
    queue = attributes("JobsQueue")
    queue["RedrivePolicy"] = json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": int(redrive["maxReceiveCount"])}
    )
    url = client.create_queue(QueueName=f"{stack.config.prefix}-JobsQueue{suffix}", Attributes=queue)["QueueUrl"]
    return str(url), arn(url)


@contextmanager
def sqs_transport(queue_url: str) -> Iterator[None]:
    """The handlers publish to the jobs queue at ``queue_url`` instead of Kafka while it is open: ``TRANSPORT`` sqs
    and ``JOBS_QUEUE_URL`` in the environment, as the template sets them for Transport sqs, and the handlers'
    services built again (a new container) on their next invocation, and again after, with the environment as it
    was."""
    saved = {name: os.environ.get(name) for name in ("TRANSPORT", "JOBS_QUEUE_URL")}
    os.environ.update(TRANSPORT="sqs", JOBS_QUEUE_URL=queue_url)
    _forget_clients()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_clients()


_logged: set[Path] = set()  # the logs this process has started: the first use empties them, later ones append


@contextmanager
def handler_output() -> Iterator[Path]:
    """Send what the handlers print (metric lines, logs) to ``.bench/handlers.log`` instead of the terminal.

    The file holds one ``make bench`` (or one ``python -m bench.x``) run: this process's first use empties it.
    """
    path = HANDLER_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if path in _logged else "w") as log, contextlib.redirect_stdout(log):
        _logged.add(path)
        yield path


def _forget_clients() -> None:
    """Handlers cache their clients per container; a new stack is a new container."""
    for module, attribute in (("api.context", "services"), ("worker.app", "services"), ("scheduler.app", "services")):
        loaded = sys.modules.get(module)
        if loaded is not None:
            getattr(loaded, attribute).cache_clear()


def dynalite_cli() -> Path:
    """dynalite's command-line script, installed with npm into ``.bench/node`` the first time."""
    cli = NODE_DIR / "node_modules" / "dynalite" / "cli.js"
    if not cli.exists():
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise RuntimeError("the worker benchmark needs node and npm to install dynalite")
        print(f"(installing dynalite {DYNALITE_VERSION} into {NODE_DIR.relative_to(ROOT)} with npm)", file=sys.stderr)
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(NODE_DIR),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                f"dynalite@{DYNALITE_VERSION}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return cli


@contextmanager
def dynalite(path: Optional[Path] = None) -> Iterator[Process]:
    """dynalite serving DynamoDB's API on 127.0.0.1, its data in memory, or in a LevelDB at ``path``."""
    port = free_port()
    command = [
        shutil.which("node") or "node",
        str(dynalite_cli()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--createTableMs",
        "0",
        "--deleteTableMs",
        "0",
        "--updateTableMs",
        "0",
        *(["--path", str(path)] if path else []),
    ]

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
        except urllib.error.HTTPError:
            return True  # it answers (400 to a request without an operation)
        except OSError:
            return False
        return True

    WORK_DIR.mkdir(exist_ok=True)
    process = Process("dynalite", port, None, command, WORK_DIR / "dynalite.log", ready)
    try:
        process.start()
        yield process
    finally:
        process.stop()


def copy_tables(stack: LocalStack, endpoint: str) -> None:
    """Create the stack's DynamoDB tables at ``endpoint`` under the same names, and seed the default templates."""
    import boto3
    from notify.adapters.dynamodb.templates import DynamoTemplateStore
    from notify.clock import utc_now
    from notify.default_templates import seed_default_templates

    assert stack.infra is not None
    client: Any = boto3.client("dynamodb", endpoint_url=endpoint)
    for logical_id, resource in stack.template.resources("AWS::DynamoDB::Table").items():
        props = resource["Properties"]
        kwargs: dict[str, Any] = {
            "TableName": stack.infra.tables[logical_id],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
        if "GlobalSecondaryIndexes" in props:
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        client.create_table(**kwargs)  # no TTL: dynalite has none, and nothing here expires
    store = DynamoTemplateStore(client, os.environ["TEMPLATES_TABLE"], cache_seconds=0)
    seed_default_templates(store, utc_now)

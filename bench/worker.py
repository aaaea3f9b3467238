"""Worker throughput: notifications per second for one 100-record MSK batch, concurrent vs sequential, on two peers.

Latency is injected where the real services would add it: the demo Auth service (in its own process) sleeps
20 ms per request, and a botocore ``before-send`` hook holds every SES SendEmail for 30 ms. Per peer, batches go
through the real handler with a pool of one (sequential, once) and of 16 threads (concurrent, three times):

- **moto**: DynamoDB and SES on one moto server process. moto spends ~30 ms of CPU per notification, so that
  one process is the ceiling, not the worker.
- **dynalite**: DynamoDB on dynalite (Node.js, its LevelDB in a temporary directory: cheaper per write than its
  in-memory store; installed with npm into ``.bench/node`` on first use), SES still on moto.

Next to the worker's CPU time per notification (``time.process_time`` of this process, which runs nothing else
during a batch), a loop makes the same AWS calls bare: the three ``UpdateItem`` and one ``SendEmail`` the
worker made for a job, captured from its requests, replayed with the same clients' configuration and peers.
Every AWS request is counted with botocore event hooks, to give requests per delivered notification.

Every user of the measured batches is notified once before, in a pass of its own on each peer (the steady state:
a user seen earlier the same day), since a user's first notification of a day also keeps their last known contact
(one more ``UpdateItem``, docs/WORKER.md step 5); that pass's requests are printed as the first-notification cost.

Transport sqs, on both peers: the same number of emails published with ``SqsJobPublisher`` to the jobs queue (on
moto, as template.yaml makes it), received from it ten at a time as the jobs queue's event source receives them
(``BatchSize: 10``), and handled as SQS events of those messages, one invocation per ten, one after the other in
the concurrent run's container (three times, the median reported). Its receives and deletes, which Lambda's poller
makes and the account pays for, are made and counted outside the measured time. The same again (``fifo``) with a FIFO
jobs queue, which the template does not offer (bench/fifo.py: each job grouped by its user and deduplicated by its id),
to compare the two kinds of queue: each batch's ten users are distinct, so FIFO's one batch per message group at a
time holds nothing back here.

Last, on dynalite, the last measured users get two more batches under a throttle on the batch's category and
channel (content email, docs/WORKER.md#throttles): one within its limit (each send counted on its user's item) and
one past it (each job skipped); their requests are printed as the cost of a throttled category.
"""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

import boto3
from botocore.config import Config
from notify.adapters.aws import SEND_CONFIG
from notify.adapters.dynamodb.throttles import DynamoThrottleRules
from notify.adapters.sqs import SqsJobPublisher
from notify.catalog import EVENT_TYPES
from notify.jobs import EventPlan, new_event_id
from notify.models import Category, Channel
from notify.throttles import CategoryThrottle, ThrottleRule

from bench import arguments
from bench.fifo import FifoJobPublisher, fifo_transport
from bench.peers import copy_tables, dynalite, jobs_queue, peers, sqs_transport
from local.cfn import template
from local.events import kafka_record, msk_event, received_message, sqs_event
from local.invoke import LambdaContext
from local.processes import free_port

CONCURRENCY = 16
SQS_BATCH = 10  # the jobs queue's event source's BatchSize (template.yaml)
AUTH_LATENCY = 0.020
SES_LATENCY = 0.030
# SES_MAX_SEND_RATE models the account's SES quota (default 14 a second per container), not the worker: raised
# so that the benchmark measures the worker (100 emails at 14/s would take 7 s whatever the worker does).
SES_RATE = 10_000
AUTH_USERS = 2_100  # the measured users of both peers (10 × batch each) and the warm-up user, the last
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "BatchGetItem", "Scan"}
PEERS = {
    "moto": "DynamoDB and SES on one moto server",
    "dynalite": "DynamoDB on dynalite, SES on moto server",
}


@dataclass(frozen=True)
class Sizes:
    """``make bench``'s sizes by default, :data:`QUICK`'s with ``--quick``."""

    batch: int = 100  # records in the MSK batch: one invocation (Transport sqs: ten invocations of ten)
    repeat: int = 3  # concurrent batches per peer (a second each): the median is reported, the others printed beside it


FULL = Sizes()
QUICK = Sizes(batch=4, repeat=1)

AUTH_SERVER = """
import sys, threading
from local.auth_service import AuthService
service = AuthService(int(sys.argv[1]), users=int(sys.argv[2]))
service.faults.latency = float(sys.argv[3])
service.start()
print("ready", flush=True)
threading.Event().wait()
"""


@dataclass
class Measured:
    """One batch through the handler."""

    seconds: float
    cpu: float  # this process's CPU seconds during the batch
    peers_cpu: dict[str, float]  # each peer process's CPU seconds during the batch
    calls: dict[str, int]
    machine: float  # CPU seconds the whole machine spent during the batch (every process, ours or not)
    notifications: int  # in the batch

    @property
    def rate(self) -> float:
        return self.notifications / self.seconds


@dataclass
class Bare:
    """The worker's AWS calls for one notification, made bare once per notification of a batch, in one thread."""

    seconds: float
    cpu: float
    peers_cpu: dict[str, float]


@dataclass
class PeerRuns:
    sequential: Measured
    concurrent: Measured
    bare: Bare
    sqs: Measured  # the concurrent container fed from the jobs queue, ten messages an invocation
    fifo: Measured  # the same from a FIFO jobs queue
    concurrent_rates: list[float] = field(default_factory=list)  # every concurrent batch, the median reported
    sqs_rates: list[float] = field(default_factory=list)
    fifo_rates: list[float] = field(default_factory=list)


@dataclass
class JobsQueue:
    """Transport sqs's jobs queue on moto: jobs go in through the API's publisher and come out as the SQS events its
    event source would deliver. ``receives`` and ``deletes`` count the requests the event source makes for them.
    ``publisher``: the API's, or bench/fifo.py's for a FIFO queue."""

    url: str
    arn: str
    publisher: type[SqsJobPublisher] = SqsJobPublisher
    receives: int = 0
    deletes: int = 0
    messages: int = 0

    @cached_property
    def client(self) -> Any:
        return boto3.client("sqs")

    def events(self, users: list[int]) -> list[dict[str, Any]]:
        """One email job per user, published to the queue, received and cut into events of :data:`SQS_BATCH`."""
        client = self.client
        self.publisher(client, self.url).publish(_jobs(users))
        records: list[dict[str, Any]] = []
        for _ in range(10 * len(users) + 10):  # a bound: each receive takes up to ten of them
            if len(records) == len(users):
                break
            answer = client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=SQS_BATCH,
                WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            self.receives += 1
            records += [received_message(m, self.arn) for m in answer.get("Messages", [])]
        assert len(records) == len(users), f"received {len(records)} of {len(users)} messages"
        self.messages += len(records)
        return [sqs_event(records[i : i + SQS_BATCH]) for i in range(0, len(records), SQS_BATCH)]

    def delete(self, events: list[dict[str, Any]]) -> None:
        """What the event source does after a batch with no failure reported: ``DeleteMessageBatch`` of its
        messages."""
        for event in events:
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(event["Records"])]
            assert not self.client.delete_message_batch(QueueUrl=self.url, Entries=entries).get("Failed")
            self.deletes += 1


@dataclass
class _Hooks:
    """State of the botocore hooks: request counts, SES latency on or off, requests captured for replay."""

    calls: Counter[str] = field(default_factory=Counter)
    latency: bool = True
    capture: Optional[list[tuple[str, dict[str, Any]]]] = None

    def count(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        self.calls[f"{service}.{operation}"] += 1

    def slow_ses(self, **_: Any) -> None:
        if self.latency:
            time.sleep(SES_LATENCY)

    def record(self, params: dict[str, Any], event_name: str, **_: Any) -> None:
        if self.capture is not None:
            self.capture.append((event_name.split(".")[2], copy.deepcopy(params)))


def run(sizes: Sizes = FULL) -> dict[str, Any]:
    hooks = _Hooks()
    session = boto3._get_default_session()
    session.events.register("before-send", hooks.count, unique_id="bench-count")
    session.events.register("before-send.sesv2.SendEmail", hooks.slow_ses, unique_id="bench-ses")
    for operation in ("dynamodb.UpdateItem", "sesv2.SendEmail"):
        session.events.register(f"before-parameter-build.{operation}", hooks.record, unique_id=f"bench-{operation}")
    results: dict[str, Any] = {}
    try:
        with (
            peers() as stack,
            auth_service(AUTH_USERS, AUTH_LATENCY) as (auth_url, auth_pid),
            tempfile.TemporaryDirectory() as data,
            dynalite(Path(data)) as dyn,
        ):
            endpoint = f"http://127.0.0.1:{dyn.port}"
            copy_tables(stack, endpoint)
            queues = {
                "sqs": JobsQueue(*jobs_queue(stack)),
                "fifo": JobsQueue(*jobs_queue(stack, fifo=True), publisher=FifoJobPublisher),
            }
            results["jobs queue"], results["fifo queue"] = queues["sqs"], queues["fifo"]
            # The worker's caches (preferences, throttle rules) as deployed, not the local stack's 1 s for its tests:
            # each measured user is new to its container either way, and the rules are read once per container.
            os.environ.update(AUTH_API_URL=auth_url, SES_MAX_SEND_RATE=str(SES_RATE), PREFERENCES_CACHE_SECONDS="30")
            from worker import app

            assert stack.moto is not None and stack.moto.pid is not None and dyn.pid is not None
            first = 1
            for peer in PEERS:
                processes = {"moto": stack.moto.pid, "Auth": auth_pid}
                if peer == "dynalite":
                    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint  # the worker's DynamoDB client only
                    processes["dynalite"] = dyn.pid
                # Each user to be measured is notified once first, by another container, so the measured batches
                # are the steady state; this pass's requests are what a user's first notification of the day costs.
                os.environ["WORKER_CONCURRENCY"] = str(CONCURRENCY)
                app.services.cache_clear()
                seen = [AUTH_USERS, *range(first, first + sizes.batch * (1 + 3 * sizes.repeat))]
                hooks.calls.clear()
                _handle(app, _batch(seen))
                results[f"{peer} first notification"] = {"calls": dict(hooks.calls), "notifications": len(seen)}
                runs: dict[str, list[Measured]] = {}
                captured: list[tuple[str, dict[str, Any]]] = []
                for label, concurrency, repeat in (
                    ("sequential", 1, 1),
                    ("concurrent", CONCURRENCY, sizes.repeat),
                    ("sqs", CONCURRENCY, sizes.repeat),
                    ("fifo", CONCURRENCY, sizes.repeat),
                ):
                    os.environ["WORKER_CONCURRENCY"] = str(concurrency)
                    queue = queues.get(label)
                    transport: Any = contextlib.nullcontext()
                    if queue is not None:
                        transport = fifo_transport(queue.url) if label == "fifo" else sqs_transport(queue.url)
                    with transport:
                        app.services.cache_clear()  # a new container: clients, caches and pool of this size
                        hooks.capture = captured if not captured else None
                        warm_up = queue.events([AUTH_USERS]) if queue else [_batch([AUTH_USERS])]
                        for event in warm_up:  # cold start, template cache, connections
                            _handle(app, event)
                        if queue:
                            queue.delete(warm_up)
                        hooks.capture = None
                        runs[label] = []
                        for _ in range(repeat):
                            users = list(range(first, first + sizes.batch))
                            events = queue.events(users) if queue else [_batch(users)]
                            runs[label].append(_measure(app, hooks, events, processes))
                            if queue:
                                queue.delete(events)
                            first += sizes.batch
                if peer == "moto":
                    results["job item"] = {"bytes": largest_item("JOB#")}
                else:
                    results["throttled"] = _throttled(app, hooks, range(first - sizes.batch, first))
                median = {
                    label: sorted(runs[label], key=lambda m: m.rate)[len(runs[label]) // 2]
                    for label in ("concurrent", "sqs", "fifo")
                }
                results[peer] = PeerRuns(
                    runs["sequential"][0],
                    median["concurrent"],
                    _bare(captured, hooks, processes, sizes.batch),
                    median["sqs"],
                    median["fifo"],
                    [m.rate for m in runs["concurrent"]],
                    [m.rate for m in runs["sqs"]],
                    [m.rate for m in runs["fifo"]],
                )
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
        session.events.unregister("before-send", unique_id="bench-count")
        session.events.unregister("before-send.sesv2.SendEmail", unique_id="bench-ses")
        for operation in ("dynamodb.UpdateItem", "sesv2.SendEmail"):
            session.events.unregister(f"before-parameter-build.{operation}", unique_id=f"bench-{operation}")
    return results


@contextmanager
def auth_service(users: int, latency: float) -> Iterator[tuple[str, int]]:
    """The demo Auth service in its own process, so its CPU is not counted as the worker's; yields URL and pid."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", AUTH_SERVER, str(port), str(users), str(latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(10)


def _measure(app: Any, hooks: _Hooks, events: list[dict[str, Any]], processes: dict[str, int]) -> Measured:
    """The events through the handler, one invocation after the other in this container."""
    hooks.calls.clear()
    peers_cpu = {name: _cpu_seconds(pid) for name, pid in processes.items()}
    machine, cpu, started = _machine_cpu_seconds(), time.process_time(), time.perf_counter()
    for event in events:
        _handle(app, event)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    machine = _machine_cpu_seconds() - machine
    peers_cpu = {name: _cpu_seconds(pid) - peers_cpu[name] for name, pid in processes.items()}
    return Measured(elapsed, cpu, peers_cpu, dict(hooks.calls), machine, sum(_records(e) for e in events))


def _records(event: dict[str, Any]) -> int:
    """The records of an MSK or an SQS event."""
    if "records" in event:
        return sum(len(r) for r in event["records"].values())
    return len(event["Records"])


def _handle(app: Any, event: dict[str, Any], outcome: Optional[str] = "sent") -> None:
    """The batch through the handler; every record must end ``outcome`` (None: whatever it ends)."""
    answer = app.lambda_handler(event, LambdaContext("WorkerFunction", 120))
    processor = app.kafka_processor if "records" in event else app.sqs_processor
    if outcome is not None:
        assert processor.outcomes == {outcome: _records(event)}, (processor.outcomes, answer)


def _throttled(app: Any, hooks: _Hooks, users: range) -> dict[str, dict[str, int]]:
    """The requests of a batch to ``users`` (notified before) under a daily throttle on content email: first with a
    limit the batch stays within (each send counted), then with a limit of 1, which each user has used (each job
    skipped). Each in a new container, warmed up first (its rules and templates read), as the measured batches are."""
    rules = DynamoThrottleRules(boto3.client("dynamodb"), os.environ["TEMPLATES_TABLE"], cache_seconds=0)
    calls: dict[str, dict[str, int]] = {}
    try:
        for label, limit, outcome in (("admitted", 10_000, "sent"), ("skipped", 1, "skipped")):
            rule = ThrottleRule(channel=Channel.EMAIL, limit=limit, period_seconds=86400)
            rules.put(CategoryThrottle(Category.CONTENT, rule, "bench"))
            app.services.cache_clear()
            _handle(app, _batch([AUTH_USERS]), None)
            hooks.calls.clear()
            _handle(app, _batch(list(users)), outcome)
            calls[label] = dict(hooks.calls)
    finally:
        rules.delete(Category.CONTENT, Channel.EMAIL)
    return calls


def _bare(captured: list[tuple[str, dict[str, Any]]], hooks: _Hooks, processes: dict[str, int], count: int) -> Bare:
    """The captured calls of one notification, replayed ``count`` times on new job items, in one thread.

    The clients are configured as the worker's (``build_services``); the parameters are built before the clock
    starts, so only the calls are measured. No SES latency is injected: it costs no CPU, only time.
    """
    operations = [op for op, _ in captured]
    assert sorted(operations) == ["SendEmail", "UpdateItem", "UpdateItem", "UpdateItem"], operations
    pool = Config(max_pool_connections=CONCURRENCY + 4)
    dynamodb: Any = boto3.client("dynamodb", config=pool.merge(Config(parameter_validation=False)))
    ses: Any = boto3.client("sesv2", config=pool.merge(SEND_CONFIG))
    calls = []
    for n in range(count):
        key = f"JOB#bare-{n}-{time.time_ns()}"  # a new job item, the same for its three writes
        for operation, params in captured:
            params = copy.deepcopy(params)
            if operation == "UpdateItem":
                params["Key"]["pk"] = {"S": key}
                calls.append((dynamodb.update_item, params))
            else:
                calls.append((ses.send_email, params))
    calls[0][0](**calls[0][1])  # connections open, clients' first-call setup done
    hooks.latency = False
    try:
        peers_cpu = {name: _cpu_seconds(pid) for name, pid in processes.items()}
        cpu, started = time.process_time(), time.perf_counter()
        for call, params in calls[len(captured) :]:
            call(**params)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        peers_cpu = {name: _cpu_seconds(pid) - peers_cpu[name] for name, pid in processes.items()}
    finally:
        hooks.latency = True
    scale = count / (count - 1)  # the first notification's calls were the warm-up
    return Bare(elapsed * scale, cpu * scale, {k: v * scale for k, v in peers_cpu.items()})


def _batch(users: list[int]) -> dict[str, Any]:
    """An MSK event of one email job per user."""
    records = [
        kafka_record("notification-jobs", 0, i, j.model_dump_json().encode()) for i, j in enumerate(_jobs(users))
    ]
    return msk_event(records, "127.0.0.1:9092")


def _jobs(users: list[int]) -> list[Any]:
    """One ``new_episode`` email job for each user (``demo-user-<n>``)."""
    spec = EVENT_TYPES["new_episode"]
    now = datetime.now(UTC)
    plan = EventPlan(
        new_event_id(),
        spec,
        spec.sample_payload(),
        [f"demo-user-{n}" for n in users],
        [Channel.EMAIL],
        spec.priority,
        now,
        now + timedelta(days=1),
    )
    return list(plan.jobs())


def largest_item(prefix: str) -> int:
    """Bytes of the largest status-table item whose key starts with ``prefix``, by DynamoDB's sizing rules
    (a write is billed one write request unit per started KB)."""
    client: Any = boto3.client("dynamodb")
    table, largest = os.environ["NOTIFICATIONS_TABLE"], 0
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if any(v.get("S", "").startswith(prefix) for v in item.values()):
                largest = max(largest, sum(len(k.encode()) + _attribute_size(v) for k, v in item.items()))
    return largest


def _attribute_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value: strings and binaries by length, numbers ~1 byte per 2 digits + 1,
    maps and lists 3 bytes plus 1 per element plus their contents (names included)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return (len(v.lstrip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _attribute_size(x) for k, x in v.items())
    if kind == "L":
        return 3 + sum(1 + _attribute_size(x) for x in v)
    if kind in ("SS", "NS"):
        return sum(len(x.encode()) for x in v)
    return 1  # BOOL, NULL


def _requests(calls: dict[str, int]) -> tuple[int, int, int, int]:
    """DynamoDB writes, DynamoDB reads, SQS requests and SES sends among ``calls`` (``service.Operation``: count)."""
    writes = sum(v for k, v in calls.items() if k.startswith("dynamodb.") and k.split(".")[1] in WRITES)
    reads = sum(v for k, v in calls.items() if k.startswith("dynamodb.") and k.split(".")[1] in READS)
    sqs = sum(v for k, v in calls.items() if k.startswith("sqs."))
    return writes, reads, sqs, calls.get("sesv2.SendEmail", 0)


def _machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy (from /proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(quick: bool = False) -> dict[str, float]:
    """Print the run; return the per-notification quantities docs/COST.md rests on (``quick``: :data:`QUICK`'s
    sizes)."""
    sizes = QUICK if quick else FULL
    results = run(sizes)
    batch = sizes.batch
    print(
        f"worker: one MSK batch of {batch} emails through the handler, Auth +{AUTH_LATENCY * 1000:.0f} ms"
        f" (own process), SES +{SES_LATENCY * 1000:.0f} ms; sequential = a pool of 1, concurrent = {CONCURRENCY}"
        f" threads; sqs = Transport sqs: the same {batch} emails from the jobs queue as {-(-batch // SQS_BATCH)}"
        f" SQS events of {SQS_BATCH} (its event source's BatchSize), one after the other in the concurrent container;"
        " fifo = the same from a FIFO jobs queue (bench only: MessageGroupId the user, MessageDeduplicationId the job)"
        f"\n  SES_MAX_SEND_RATE raised to {SES_RATE:,}/s for this benchmark: its default (14/s per"
        " container) models the account's SES quota, not the worker"
    )
    cores = os.cpu_count() or 1
    for peer, title in PEERS.items():
        runs: PeerRuns = results[peer]
        base = runs.sequential.rate
        print(f"  {title}:")
        for label in ("sequential", "concurrent", "sqs", "fifo"):
            r: Measured = getattr(runs, label)
            others = ", ".join(f"{name} {cpu / batch * 1000:.1f}" for name, cpu in r.peers_cpu.items())
            print(
                f"    {label:<11}{r.seconds:6.2f} s {r.rate:7.1f} notifications/s {r.rate / base:5.1f}×"
                f"   CPU ms per notification: worker {r.cpu / batch * 1000:.1f} | {others};"
                f" machine busy {r.machine / r.seconds:.1f} of {cores} cores"
            )
        print(
            f"      (concurrent batches: {', '.join(f'{x:.1f}' for x in runs.concurrent_rates)} notifications/s;"
            f" sqs: {', '.join(f'{x:.1f}' for x in runs.sqs_rates)};"
            f" fifo: {', '.join(f'{x:.1f}' for x in runs.fifo_rates)})"
        )
        b = runs.bare
        others = ", ".join(f"{name} {cpu / batch * 1000:.1f}" for name, cpu in b.peers_cpu.items())
        print(
            f"    bare AWS calls, the same 3 UpdateItem + 1 SendEmail per notification in one thread, no injected"
            f" latency: {b.seconds / batch * 1000:.1f} ms per notification;"
            f" CPU ms per notification: here {b.cpu / batch * 1000:.1f} | {others}"
        )
        c = runs.concurrent
        everything = (c.cpu + sum(c.peers_cpu.values())) / batch
        worker = c.cpu / batch
        print(
            f"    CPU ceilings (arithmetic): the worker and its peers use {everything * 1000:.1f} ms of CPU per"
            f" notification, so {cores} cores deliver at most {cores / everything:.0f}/s"
            f" ({cores / everything / base:.1f}×); the worker alone, on one core (the GIL), at most"
            f" {1 / worker:.0f}/s ({1 / worker / base:.1f}×)"
        )
    calls = results["dynalite"].concurrent.calls
    writes, reads, sqs, ses = _requests(calls)
    print(
        f"  AWS requests per delivered notification: DynamoDB {writes / batch:.2f} writes + {reads / batch:.2f} reads,"
        f" SES {ses / batch:.2f}, SQS {sqs / batch:.2f}"
    )
    print(f"  (all requests of the batch: {dict(sorted(calls.items()))})")
    sqs_writes, sqs_reads, sqs_sqs, sqs_ses = (n / batch for n in _requests(results["dynalite"].sqs.calls))
    queue: JobsQueue = results["jobs queue"]
    fifo: JobsQueue = results["fifo queue"]
    print(
        f"  Transport sqs, the worker's own requests per notification: DynamoDB {sqs_writes:.2f} writes +"
        f" {sqs_reads:.2f} reads, SES {sqs_ses:.2f}, SQS {sqs_sqs:.2f}; the event source's (Lambda's poller, billed"
        f" to the account) {queue.receives / queue.messages:.2f} ReceiveMessage +"
        f" {queue.deletes / queue.messages:.2f} DeleteMessageBatch (FIFO queue: {fifo.receives / fifo.messages:.2f}"
        f" + {fifo.deletes / fifo.messages:.2f})"
    )
    first = results["dynalite first notification"]
    first_writes = sum(v for k, v in first["calls"].items() if k.startswith("dynamodb.") and k.split(".")[1] in WRITES)
    print(
        f"  a user's first notification of the day (the pass before, every user new): DynamoDB"
        f" {first_writes / first['notifications']:.2f} writes (the last known contact's included)"
    )
    throttled = {
        label: (
            sum(v for k, v in found.items() if k.startswith("dynamodb.") and k.split(".")[1] in WRITES) / batch,
            sum(v for k, v in found.items() if k.startswith("dynamodb.") and k.split(".")[1] in READS) / batch,
        )
        for label, found in results["throttled"].items()
    }
    print(
        "  under a throttle rule on the batch's category and channel (no rule: the figures above): DynamoDB"
        f" {throttled['admitted'][0]:.2f} writes + {throttled['admitted'][1]:.2f} reads per notification sent"
        f" (its counter's conditional UpdateItem included), {throttled['skipped'][0]:.2f} writes +"
        f" {throttled['skipped'][1]:.2f} reads per job skipped as throttled"
    )
    # Lambda bills the invocation's wall time × MemorySize: one batch of records is one invocation.
    memory_gb = template().functions()["WorkerFunction"].memory_size / 1024
    moto, dyn = results["moto"].concurrent, results["dynalite"].concurrent
    moto_sqs, dyn_sqs = results["moto"].sqs, results["dynalite"].sqs
    moto_fifo, dyn_fifo = results["moto"].fifo, results["dynalite"].fifo
    quantities = {
        "worker_gb_s": dyn.seconds * memory_gb / batch,
        "worker_gb_s_moto": moto.seconds * memory_gb / batch,
        "worker_cpu_ms": dyn.cpu / batch * 1000,
        "worker_invocations": 1 / batch,
        "dynamodb_writes": writes / batch,
        "dynamodb_reads": reads / batch,
        "dynamodb_writes_throttled": throttled["admitted"][0],
        "ses_sends": ses / batch,
        "sqs_requests": sqs / batch,
        "job_item_bytes": results["job item"]["bytes"],
        "worker_gb_s_sqs": dyn_sqs.seconds * memory_gb / batch,
        "worker_gb_s_sqs_moto": moto_sqs.seconds * memory_gb / batch,
        "worker_gb_s_fifo": dyn_fifo.seconds * memory_gb / batch,
        "worker_gb_s_fifo_moto": moto_fifo.seconds * memory_gb / batch,
        "worker_invocations_sqs": 1 / SQS_BATCH,
        "sqs_esm_requests": (queue.receives + queue.deletes) / queue.messages,
    }
    print(
        f"  worker GB-s per notification ({memory_gb:g} GB × time per batch / {batch}): "
        f"{quantities['worker_gb_s']:.5f} on dynalite, {quantities['worker_gb_s_moto']:.5f} on moto;"
        f" sqs ({memory_gb:g} GB × the {-(-batch // SQS_BATCH)} invocations' time / {batch}):"
        f" {quantities['worker_gb_s_sqs']:.5f} on dynalite, {quantities['worker_gb_s_sqs_moto']:.5f} on moto;"
        f" fifo {quantities['worker_gb_s_fifo']:.5f} on dynalite, {quantities['worker_gb_s_fifo_moto']:.5f} on moto"
    )
    size = results["job item"]["bytes"]
    print(f"  largest job item after SENT: {size} bytes = {-(-size // 1024)} write request unit(s) per write")
    return quantities


if __name__ == "__main__":
    main(quick=arguments(__doc__).parse_args().quick)

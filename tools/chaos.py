"""``make chaos``: thousands of notifications through the running local stack while its peers fail, then a count.

It starts its own local stack on free loopback ports, with the worker's invocations in child processes (one
container per trigger, as Lambda would run them) and Tansu keeping its log in moto's S3. Then, while a load of
single events, ``events:batch`` calls and one segment event goes through the API (emails and pushes):

- the Auth service answers 20% of requests with a 500 and delays 10% past the worker's read timeout;
- SES throttles 10% of sends and SNS 5% of publishes (a proxy in front of moto answers with their own 429s);
- the Kafka broker is stopped, then restarted; with ``--transport sqs`` (``make chaos TRANSPORT=sqs``: no Kafka,
  jobs on the SQS jobs queue) SQS is unavailable instead for 10 s to every function and to the event sources'
  pollers (a proxy in front of moto answers every SQS call 503);
- poison records land on every partition of the jobs topic (with sqs: poison messages on the jobs queue);
- a worker invocation is cut off mid-batch (at least twice), as a Lambda timeout would, and the batch is
  delivered again to a fresh container;
- one template runs away (a loop over a payload number) for the events that feed it a large one;
- ``new_episode`` by email is digested (a rule: 10 s windows per series, 5 members make one full), and a stream of
  such events to a few users fills buckets while all of the above happens;
- a status webhook endpoint (the stack's demo receiver) subscribes to every final status the worker records, and
  its receiver answers 20% of requests with a 503.

Then it drains: until every accepted job is terminal (with sqs: and the jobs queue empty, none in flight: a message
whose batch failed comes back after the visibility timeout), or until no job has changed for a quiet period (120 s) with
none waiting for a retry, or, a safety net, until a ceiling. It reads every accepted job's status, every letter in
the DLQ and the ledger of provider calls, prints a table (accepted, SENT, FAILED with a letter, EXPIRED, SKIPPED;
stuck, split into still moving, waiting in an undrained backlog and lettered; lost; duplicates; and the one
documented ambiguous window on its own line), writes it as JSON to the state directory, and exits 1 unless lost,
duplicates and stuck are all 0, and, for the digests, unless no member is lost (its digest's job not terminal, or
the member in no digest) and no bucket was sent twice, and, for the webhooks, unless every subscribed status change
reached the receiver (or waits for a retry the deliveries log shows) and none reached it under two ids. Everything
is seeded (``--seed``); see docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import boto3
import httpx

from local.cfn import ROOT
from local.provider_faults import ProviderFaults
from local.stack import Config, LocalStack

if TYPE_CHECKING:
    from notify.records import JobRecord

log = logging.getLogger("chaos")
# SES's feedback moves a sent email on (DELIVERED, BOUNCED, COMPLAINED): those were SENT first.
AFTER_SENT = ("DELIVERED", "BOUNCED", "COMPLAINED")
# DIGESTED is final for a member: its digest's job sends it (the drain then waits for that job too).
TERMINAL = ("SENT", "FAILED", "EXPIRED", "SKIPPED", "DIGESTED", *AFTER_SENT)
RUNAWAY_BODY = (
    "{{ liked_by }} liked your review of {{ movie_title }}.\n"
    "{% for i in range(likes_count) %}{% for j in range(likes_count) %}{{ liked_by }} {% endfor %}{% endfor %}"
)


@dataclass
class Settings:
    seed: int = 1
    transport: str = "kafka"  # or sqs: the SQS outage replaces the broker's restart
    users: int = 300
    singles: int = 700  # POST /api/v1/events, 1 to 3 recipients each
    batches: int = 25  # POST /api/v1/events:batch, 10 events each
    load_seconds: float = 60.0
    # The drain ends when every accepted job is terminal, or when no job's record has changed for this long and
    # none waits for a retry or a scheduled send (a killed container's lease is 60 s; backoffs run to minutes)...
    quiet_seconds: float = 120.0
    drain_ceiling_seconds: float = 1800.0  # ... or, a safety net, after this long whatever happens
    auth_error_rate: float = 0.2
    auth_slow_rate: float = 0.1
    auth_slow_seconds: float = 2.5  # the Auth client's read timeout is 2 s
    email_throttle_rate: float = 0.1
    push_throttle_rate: float = 0.05
    kafka_down_at: float = 15.0  # stopped then (SIGTERM), started again kafka_down_seconds after it exited
    kafka_down_seconds: float = 10.0
    sqs_down_at: float = 15.0  # with sqs: every SQS call refused (503) for sqs_down_seconds from then
    sqs_down_seconds: float = 10.0
    poison_at: float = 30.0
    poison_per_partition: int = 3
    cut_offs: tuple[float, ...] = (5.0, 38.0)  # armed at these seconds; each kills the next batch of 10+ records
    cut_after: float = 0.5  # seconds into that invocation
    segment_at: float = 22.0
    runaway_share: float = 0.15  # of review_liked events by email carry a likes_count the template cannot afford
    ses_rate: int = 200  # SES_MAX_SEND_RATE of each worker container (moto's "account" is not the limit here)
    # Digests (issue 23): new_episode by email is collected per series over 10 s windows, max_items members a full
    # digest; besides the load's own new_episode emails, digest_events more go to 1-3 of the first digest_users
    # users about one of digest_series series, so that buckets fill, close and reopen under the same faults.
    digest_window_seconds: int = 10
    digest_max_items: int = 5
    digest_events: int = 100
    digest_users: int = 8
    digest_series: int = 2
    # Status webhooks (issue 24): the receiver fails this share of requests (503), seeded; after the jobs' drain the
    # run waits up to webhook_wait_seconds for the messages whose retries are due soon (5 s after a first failure).
    webhook_failure_rate: float = 0.2
    webhook_wait_seconds: float = 180.0


# A small run for the test suite (tests/e2e/test_chaos.py): the same faults on a shorter timeline.
QUICK: dict[str, Any] = {
    "users": 40,
    "singles": 80,
    "batches": 4,
    "load_seconds": 20.0,
    "kafka_down_at": 6.0,
    "kafka_down_seconds": 4.0,
    "sqs_down_at": 6.0,
    "sqs_down_seconds": 4.0,
    "poison_at": 9.0,
    "cut_offs": (2.0, 12.0),
    "segment_at": 8.0,
    "drain_ceiling_seconds": 420.0,
    "digest_events": 30,
}
# The final statuses the worker records, as the chaos endpoint subscribes to them (DELIVERED and the rest come from
# SES's feedback, outside the faults under test).
WEBHOOK_TYPES = {
    "SENT": "notification.sent",
    "FAILED": "notification.failed",
    "EXPIRED": "notification.expired",
    "SKIPPED": "notification.skipped",
    "DIGESTED": "notification.digested",
}
DIGEST_TYPE = "new_episode"
DIGEST_RULE = {"channels": ["email"], "key": ["series_id"]}

# What a job's record shows of its progress: its status, how long its history is and when it last changed.
Signature = Optional[tuple[str, int, str]]


def _signature(record: Optional[JobRecord]) -> Signature:
    return None if record is None else (record.status.value, len(record.history), record.updated_at)


def _due(record: Optional[JobRecord]) -> Optional[float]:
    """When a waiting job is due again (epoch seconds): a retry's time (RETRYING: ``at`` + ``retry_in``) or a
    scheduled send's (SCHEDULED: ``due_at``); None for a job that is not waiting."""
    if record is None or not record.history or record.status.value not in ("RETRYING", "SCHEDULED"):
        return None
    last = record.history[-1]
    try:
        if "retry_in" in last.detail:
            return _epoch(last.at) + float(last.detail["retry_in"])
        if "due_at" in last.detail:
            return _epoch(str(last.detail["due_at"]))
    except (TypeError, ValueError):
        return None
    return None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Load:
    """What the API accepted, by job id, and what it refused for good."""

    jobs: dict[str, str] = field(default_factory=dict)  # job id → how it came (single, batch, segment)
    segment_events: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # final answers other than 202, by status
    retried: int = 0  # requests sent again with the same Idempotency-Key after a 503 or a timeout
    runaway_jobs: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ids: list[str], how: str) -> None:
        with self.lock:
            for job in ids:
                self.jobs[job] = how


class Client:
    """The API caller a product team would write: a retry with the same Idempotency-Key on 503 or a timeout."""

    def __init__(self, url: str, key: str, load: Load) -> None:
        self._http = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=15.0)
        self._load = load

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        key = str(uuid.uuid4())
        status, answer = 0, None
        for attempt in range(8):
            try:
                resp = self._http.post(path, json=body, headers={"Idempotency-Key": key})
                status, answer = resp.status_code, resp.json()
            except httpx.HTTPError as exc:
                status, answer = 0, str(exc)
            if status not in (0, 409, 503):
                return status, answer
            with self._load.lock:
                self._load.retried += 1
            time.sleep(min(8.0, 0.5 * 2**attempt))
        return status, answer

    def close(self) -> None:
        self._http.close()


def _payload(event_type: str, rng: random.Random, n: int, runaway: bool = False) -> dict[str, Any]:
    if event_type == "review_liked":
        count = 5000 if runaway else rng.randint(1, 20)
        return {
            "review_id": f"r-{n}",
            "movie_id": f"m-{n}",
            "movie_title": "Dune",
            "liked_by": "Ana",
            "likes_count": count,
        }
    if event_type == "new_episode":
        return {
            "series_id": f"s-{n}",
            "series_title": "Dark",
            "season": 1,
            "episode": n % 10 + 1,
            "watch_url": f"https://example.com/watch/{n}",
        }
    if event_type == "new_film":
        return {"film_id": f"f-{n}", "title": "Dune", "release_date": "2026-12-01", "watch_url": f"https://e.x/{n}"}
    if event_type == "password_reset":
        return {"reset_url": f"https://example.com/reset/{n}", "expires_in_minutes": 30}
    return {"confirmation_url": f"https://example.com/confirm/{n}", "first_name": "Ana"}


def _event(rng: random.Random, n: int, users: list[str], runaway_share: float) -> tuple[dict[str, Any], bool]:
    """One event for 1–3 users; True when it feeds the runaway template."""
    event_type = rng.choice(["user_registered", "password_reset", "new_episode", "new_film", "review_liked"])
    channels = {
        "user_registered": ["email"],
        "password_reset": ["email"],
        "new_episode": rng.choice([["email"], ["push"], ["email", "push"]]),
        "new_film": rng.choice([["email"], ["email", "push"]]),
        "review_liked": rng.choice([["push"], ["email"], ["email", "push"]]),
    }[event_type]
    runaway = event_type == "review_liked" and "email" in channels and rng.random() < runaway_share
    body: dict[str, Any] = {
        "event_type": event_type,
        "payload": _payload(event_type, rng, n, runaway),
        "recipients": {"user_ids": rng.sample(users, rng.randint(1, 3))},
        "channels": channels,
        # The retry policies of high and normal priority: a low-priority retry may wait up to an hour.
        "priority": rng.choice(["high", "normal"]),
    }
    if rng.random() < 0.05:  # short-lived: some of these expire while their peers fail (set when sent)
        body["expires_at"] = rng.uniform(10, 40)
    return body, runaway


def _digest_event(rng: random.Random, n: int, users: list[str], series: int) -> dict[str, Any]:
    """One new_episode email for 1-3 of ``users`` about one of ``series`` series: a member of a digest."""
    k = rng.randrange(series)
    payload = _payload(DIGEST_TYPE, rng, n)
    payload.update(series_id=f"s-digest-{k}", series_title=f"Digest {k}")
    return {
        "event_type": DIGEST_TYPE,
        "payload": payload,
        "recipients": {"user_ids": rng.sample(users, rng.randint(1, min(3, len(users))))},
        "channels": ["email"],
        "priority": rng.choice(["high", "normal"]),
    }


def _digested(record: Optional[JobRecord]) -> Optional[dict[str, Any]]:
    """A DIGESTED member's ``bucket_id`` and ``digest_job_id`` (its DIGESTED entry's detail), else None."""
    if record is None or record.status.value != "DIGESTED":
        return None
    for entry in reversed(record.history):
        if entry.status.value == "DIGESTED":
            return dict(entry.detail or {})
    return {}


def _stamped(body: dict[str, Any]) -> dict[str, Any]:
    """The event as sent now: a relative ``expires_at`` (seconds) becomes a time."""
    if isinstance(body.get("expires_at"), float):
        return {**body, "expires_at": _iso(time.time() + body["expires_at"])}
    return body


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class Chaos:
    def __init__(self, settings: Settings, state_dir: Path) -> None:
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.state_dir = state_dir
        config = Config.free_ports(
            prefix=f"chaos{settings.seed}",
            state_dir=state_dir,
            kafka_storage="s3",
            transport=settings.transport,
            containers=True,
            webhook_receiver_messages=1_000_000,
        )
        self.proxy = ProviderFaults(
            f"http://127.0.0.1:{config.moto_port}",
            email_throttle_rate=settings.email_throttle_rate,
            push_throttle_rate=settings.push_throttle_rate,
            seed=settings.seed,
        )
        config.worker_env = {
            "AWS_ENDPOINT_URL_SESV2": self.proxy.url,
            "AWS_ENDPOINT_URL_SNS": self.proxy.url,
            "SES_MAX_SEND_RATE": str(settings.ses_rate),
        }
        if self.sqs_mode:  # every function's SQS calls, and the pollers', go through the proxy (see start)
            config.worker_env["AWS_ENDPOINT_URL_SQS"] = self.proxy.url
        self.stack = LocalStack(config)
        self.load = Load()
        self.timeline: list[tuple[float, str]] = []
        self.users = [f"chaos-user-{n}" for n in range(1, settings.users + 1)]
        self._t0 = 0.0
        # The drain's view of each job: its record's signature when last read, and when (monotonic) it changed.
        self._seen: dict[str, Signature] = {}
        self._changed: dict[str, float] = {}
        self.drain: dict[str, Any] = {}
        self.digest_jobs: set[str] = set()  # the digests' own jobs, learnt from their members' DIGESTED entries
        self.webhook_id = ""
        self.webhook_wait: dict[str, Any] = {}
        self.webhook_count: dict[str, Any] = {}
        self._pending_noted: Optional[int] = None  # the jobs queue's count the drain last printed (sqs)
        self.out: Any = sys.stdout  # where progress goes

    @property
    def sqs_mode(self) -> bool:
        return self.s.transport == "sqs"

    @property
    def jobs_trigger(self) -> str:
        """The worker's container for the jobs' trigger: the Kafka mapping's, or the jobs queue's."""
        return "jobs" if self.sqs_mode else "kafka"

    def sqs(self) -> Any:
        """An SQS client of the run's own (counting, poison): moto's, never through the outage."""
        return boto3.client("sqs", endpoint_url=self.stack.endpoint)

    def note(self, what: str) -> None:
        at = time.monotonic() - self._t0
        self.timeline.append((round(at, 1), what))
        print(f"  t={at:6.1f}s  {what}", file=self.out, flush=True)

    # -- set-up -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.proxy.start()
        if self.sqs_mode:  # the in-process functions (API, scheduler, feedback) and the SQS event sources' pollers
            os.environ["AWS_ENDPOINT_URL_SQS"] = self.proxy.url
        self.stack.start()
        sns = boto3.client("sns")
        app = sns.create_platform_application(Name="chaos", Platform="GCM", Attributes={"PlatformCredential": "key"})[
            "PlatformApplicationArn"
        ]
        for n, user in enumerate(self.users):
            devices = 1 + n % 2
            endpoints = [
                sns.create_platform_endpoint(PlatformApplicationArn=app, Token=f"{user}-device-{d}")["EndpointArn"]
                for d in range(devices)
            ]
            self.stack.auth.add_user(
                user,
                segments=("chaos",),
                email=f"{user}@example.com",
                first_name="Chaos",
                last_name=str(n),
                push_endpoints=endpoints,
            )
        client = httpx.Client(base_url=self.stack.api_url, headers={"X-API-Key": self.stack.config.api_key})
        resp = client.put("/api/v1/templates/review_liked.email.en", json={"body_text": RUNAWAY_BODY})
        client.close()
        if resp.status_code != 200:
            raise SystemExit(f"could not save the runaway template: {resp.status_code} {resp.text}")
        client = httpx.Client(base_url=self.stack.api_url, headers={"X-API-Key": self.stack.config.api_key})
        rule = {
            **DIGEST_RULE,
            "window": {"seconds": self.s.digest_window_seconds},
            "max_items": self.s.digest_max_items,
        }
        resp = client.put(f"/api/v1/digest-rules/{DIGEST_TYPE}", json=rule)
        client.close()
        if resp.status_code not in (200, 201):
            raise SystemExit(f"could not put the digest rule: {resp.status_code} {resp.text}")
        client = httpx.Client(base_url=self.stack.api_url, headers={"X-API-Key": self.stack.config.api_key})
        hook = {"url": f"{self.stack.receiver.url}/chaos", "events": [*WEBHOOK_TYPES.values(), "digest.sent"]}
        resp = client.post("/api/v1/webhooks", json=hook)
        client.close()
        if resp.status_code != 201:
            raise SystemExit(f"could not register the webhook endpoint: {resp.status_code} {resp.text}")
        self.webhook_id = resp.json()["webhook_id"]
        self.stack.receiver.fail_rate(self.s.webhook_failure_rate, seed=self.s.seed, status=503)
        faults = self.stack.auth.faults
        faults.rng = random.Random(self.s.seed)
        faults.error_rate, faults.slow_rate = self.s.auth_error_rate, self.s.auth_slow_rate
        faults.slow_seconds = self.s.auth_slow_seconds

    # -- the run ------------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self._t0 = time.monotonic()
        self.note(f"load starts: {self.s.singles} events and {self.s.batches} batches over {self.s.load_seconds:.0f} s")
        chaos = threading.Thread(target=self._faults, name="chaos-faults", daemon=True)
        chaos.start()
        self._send_load()
        chaos.join()
        self.note(f"load done: {len(self.load.jobs)} jobs accepted; draining")
        self._drain()
        self._drain_webhooks()
        return self.report()

    def _send_load(self) -> None:
        client = Client(self.stack.api_url, self.stack.config.api_key, self.load)
        plan: list[tuple[str, Any, bool]] = []
        for n in range(self.s.singles):
            body, runaway = _event(self.rng, n, self.users, self.s.runaway_share)
            plan.append(("single", body, runaway))
        for b in range(self.s.batches):
            events = [_event(self.rng, 100_000 + b * 10 + i, self.users, self.s.runaway_share) for i in range(10)]
            plan.append(("batch", {"events": [e for e, _ in events]}, any(r for _, r in events)))
        self.rng.shuffle(plan)
        # The digest stream has its own generator, so that the rest of the load stays what it was for a seed.
        digest_rng = random.Random(f"digest-{self.s.seed}")
        digest_users = self.users[: self.s.digest_users]
        for n in range(self.s.digest_events):
            body = _digest_event(digest_rng, 200_000 + n, digest_users, self.s.digest_series)
            plan.insert(digest_rng.randrange(len(plan) + 1), ("digest", body, False))
        pace = self.s.load_seconds / len(plan)
        start = time.monotonic()
        segment_sent = False

        def send(kind: str, body: Any) -> None:
            path = "/api/v1/events:batch" if kind == "batch" else "/api/v1/events"
            body = {"events": [_stamped(e) for e in body["events"]]} if kind == "batch" else _stamped(body)
            status, answer = client.post(path, body)
            if kind == "batch" and status == 207:
                for result, event in zip(answer["results"], body["events"], strict=True):
                    if result["status"] == 202:
                        self._accept(result, "batch", event)
                    else:
                        self.load.refused[str(result["status"])] += 1
            elif status == 202:
                self._accept(answer, kind, body)
            else:
                log.warning("%s refused for good: %s %s", kind, status, str(answer)[:300])
                self.load.refused[str(status)] += 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            for i, (kind, body, _) in enumerate(plan):
                at = start + i * pace
                time.sleep(max(0.0, at - time.monotonic()))
                if not segment_sent and time.monotonic() - self._t0 >= self.s.segment_at:
                    segment_sent = True
                    pool.submit(self._segment, client)
                pool.submit(send, kind, body)
        client.close()

    def _accept(self, answer: dict[str, Any], how: str, body: dict[str, Any]) -> None:
        from notify.jobs import job_id

        self.load.add(answer["job_ids"], how)
        if (
            body["event_type"] == "review_liked"
            and body["payload"]["likes_count"] >= 5000
            and "email" in body["channels"]
        ):
            emails = [job_id(answer["event_id"], user, "email") for user in body["recipients"]["user_ids"]]
            with self.load.lock:
                self.load.runaway_jobs.update(emails)

    def _segment(self, client: Client) -> None:
        from notify.jobs import job_id

        body = {
            "event_type": "new_film",
            "payload": _payload("new_film", self.rng, 999_999),
            "recipients": {"segment_id": "chaos"},
            "channels": ["email"],
            "priority": "high",
        }
        status, answer = client.post("/api/v1/events", body)
        if status != 202:
            self.load.refused[str(status)] += 1
            return
        event_id = answer["event_id"]
        self.load.segment_events.append(event_id)
        self.load.add([job_id(event_id, user, "email") for user in self.users], "segment")
        self.note(f"segment event {event_id} accepted ({len(self.users)} users)")

    def _faults(self) -> None:
        """The timeline of faults, in its own thread while the load runs."""
        events: list[tuple[float, str]] = [(t, "cut") for t in self.s.cut_offs]
        events += [(self.s.sqs_down_at, "sqs")] if self.sqs_mode else [(self.s.kafka_down_at, "kafka")]
        events += [(self.s.poison_at, "poison")]
        self.note(
            f"Auth fails {self.s.auth_error_rate:.0%} (500) and delays {self.s.auth_slow_rate:.0%} "
            f"by {self.s.auth_slow_seconds} s; SES throttles {self.s.email_throttle_rate:.0%}, "
            f"SNS {self.s.push_throttle_rate:.0%}"
        )
        for at, what in sorted(events):
            time.sleep(max(0.0, self._t0 + at - time.monotonic()))
            if what == "cut":
                self.stack.workers[self.jobs_trigger].cut_off(self.s.cut_after, min_records=10)
                self.note(f"armed: cut off the next {self.jobs_trigger} batch of 10+ records {self.s.cut_after} s in")
            elif what == "kafka":
                assert self.stack.kafka is not None
                self.stack.kafka.stop()
                self.note("Kafka broker stopped")
                time.sleep(self.s.kafka_down_seconds)
                self.stack.kafka.start()
                self.note("Kafka broker restarted")
            elif what == "sqs":
                self.proxy.sqs_outage(True)
                self.note("SQS unavailable")
                time.sleep(self.s.sqs_down_seconds)
                self.proxy.sqs_outage(False)
                self.note(f"SQS available again ({self.proxy.ledger.sqs_refused} calls refused)")
            elif what == "poison":
                count = self._poison()
                where = "messages on the jobs queue" if self.sqs_mode else "records on every partition"
                self.note(f"poison: {count} {where}")

    def _poison(self) -> int:
        if self.sqs_mode:
            return self._poison_queue()
        from kafka import KafkaProducer

        topic = os.environ["KAFKA_TOPIC"]
        producer = KafkaProducer(bootstrap_servers=self.stack.bootstrap, api_version=(2, 8, 0), acks="all")
        samples = [b"\xff\xfe\x00 not utf-8", b"[1, 2, 3]", b"[" * 5000 + b"]" * 5000, b"", b'{"job_id": 7}']
        partitions = sorted(producer.partitions_for(topic) or {0})
        for partition in partitions:
            for value in samples[: self.s.poison_per_partition]:
                producer.send(topic, value, partition=partition)
        producer.flush()
        producer.close()
        self.poison = len(partitions) * self.s.poison_per_partition
        self.partitions = len(partitions)
        return self.s.poison_per_partition

    def _poison_queue(self) -> int:
        """What SQS can carry of the Kafka poison (a body is Unicode text of at least one character), on the jobs
        queue: poison_per_partition of them, three times over, between the load's jobs."""
        samples = ["not json at all", "[1, 2, 3]", "[" * 5000 + "]" * 5000, '{"job_id": 7}']
        url = self.stack.infra.queues["JobsQueue"] if self.stack.infra else ""
        sqs = self.sqs()
        sent = 0
        for _ in range(3):
            for body in samples[: self.s.poison_per_partition]:
                sqs.send_message(QueueUrl=url, MessageBody=body)
                sent += 1
        self.poison, self.partitions = sent, 1
        return sent

    def jobs_queue_pending(self) -> Optional[int]:
        """With sqs: the jobs queue's messages visible or in flight (a batch that failed or was cut off comes back
        after the visibility timeout); None with Kafka."""
        if not self.sqs_mode or self.stack.infra is None:
            return None
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=self.stack.infra.queues["JobsQueue"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def _drain(self) -> None:
        """Read every accepted job every 5 s until all are terminal, or until none has changed for the quiet
        period while none waits for a retry or a scheduled send, or until the ceiling."""
        began = time.monotonic()
        last_change, last_done = began, -1
        quiet, ceiling = self.s.quiet_seconds, self.s.drain_ceiling_seconds
        while True:
            records = self.records()
            now = time.monotonic()
            if self._observe(records, now):
                last_change = now
            terminal = sum(1 for r in records.values() if r.status.value in TERMINAL)
            tracked = len(self.load.jobs) + len(self.digest_jobs)
            if terminal != last_done:
                digests = f" (with {len(self.digest_jobs)} digest jobs)" if self.digest_jobs else ""
                self.note(f"drain: {terminal}/{tracked} terminal{digests}")
                last_done = terminal
            waiting = sum(1 for r in records.values() if r.status.value not in TERMINAL and self._waiting(r))
            # A message of the jobs queue in flight comes back: its job (or a webhook the record's first handling
            # could not queue) is not done until it has.
            pending = self.jobs_queue_pending()
            if pending:
                if pending != self._pending_noted:
                    self.note(f"drain: {pending} messages on the jobs queue, visible or in flight")
                    self._pending_noted = pending
                if now - began < ceiling:
                    time.sleep(5)
                    continue
            # A digest's job whose record is not written yet (its bucket not closed) is not terminal either.
            if terminal == tracked:
                ended = "terminal"
                break
            if now - last_change >= quiet and not waiting:
                ended = "quiet"
                break
            if now - began >= ceiling:
                ended = "ceiling"
                break
            time.sleep(5)
        self.drain = {
            "ended": ended,
            "seconds": round(now - began, 1),
            "quiet_seconds": quiet,
            "ceiling_seconds": ceiling,
        }
        self.note(f"drain over: {_drain_line(self.drain)}")

    def _observe(self, records: dict[str, JobRecord], now: float) -> bool:
        """Note which jobs' records changed since the last read; True if any did."""
        changed = False
        for job in [*self.load.jobs, *sorted(self.digest_jobs)]:
            signature = _signature(records.get(job))
            if job not in self._seen or self._seen[job] != signature:
                self._seen[job], self._changed[job] = signature, now
                changed = True
        return changed

    def _waiting(self, record: Optional[JobRecord]) -> bool:
        """A retry or a scheduled send is due, or was due less than a quiet period ago (its turn is coming)."""
        due = _due(record)
        return due is not None and time.time() < due + self.s.quiet_seconds

    def _moving(self, job: str, record: Optional[JobRecord]) -> bool:
        """Changed within the last quiet period (or since the drain's last read), or waiting for its turn."""
        if _signature(record) != self._seen.get(job):
            return True
        changed = self._changed.get(job)
        if changed is not None and time.monotonic() - changed < self.s.quiet_seconds:
            return True
        return self._waiting(record)

    def _drain_webhooks(self) -> None:
        """Wait until every subscribed change's message has reached the receiver or waits for a retry that is not
        due yet (its last attempt failed, as the deliveries log shows), or until webhook_wait_seconds."""
        began = time.monotonic()
        while True:
            records = self.records()
            missing, waiting = self._webhooks_missing(records)
            if not missing - waiting or time.monotonic() - began >= self.s.webhook_wait_seconds:
                break
            time.sleep(2)
        self.webhook_wait = {"seconds": round(time.monotonic() - began, 1), "missing": len(missing)}
        self.note(f"webhooks: {len(missing)} not received yet, {len(waiting)} of them waiting for a retry")
        # The count is of this moment: a retry that comes due later, while the delay queue still holds it, would
        # otherwise look lost to a count taken after.
        self.webhook_count = self.webhooks(records, missing, waiting)

    def _expected_webhooks(self, records: dict[str, JobRecord]) -> dict[str, tuple[str, str]]:
        """The messages the endpoint should get, by webhook-id: (type, job id) for each subscribed status in each
        tracked job's history (and digest.sent for a digest's job that was sent)."""
        from notify.webhooks import message_id

        expected: dict[str, tuple[str, str]] = {}
        for job, record in records.items():
            for status in {entry.status.value for entry in record.history} & set(WEBHOOK_TYPES):
                kind = WEBHOOK_TYPES[status]
                expected[message_id(self.webhook_id, kind, f"{job}#{status}")] = (kind, job)
            if job in self.digest_jobs and any(entry.status.value == "SENT" for entry in record.history):
                expected[message_id(self.webhook_id, "digest.sent", f"{job}#digest")] = ("digest.sent", job)
        return expected

    def _webhooks_missing(self, records: dict[str, JobRecord]) -> tuple[set[str], set[str]]:
        """The expected messages the receiver has not accepted, and those of them waiting for a retry: their last
        attempt on the deliveries log failed and the next one is not due yet."""
        from notify.webhooks import SCHEDULE

        received = {m.id for m in self.stack.receiver.messages() if m.valid}
        missing = set(self._expected_webhooks(records)) - received
        last: dict[str, dict[str, Any]] = {}
        for item in self._deliveries():
            mid = item["message_id"]["S"]
            if mid in missing and int(item["attempt"]["N"]) >= int(last.get(mid, {}).get("attempt", {"N": -1})["N"]):
                last[mid] = item
        now = time.time()
        waiting = set()
        for mid, item in last.items():
            attempt = int(item["attempt"]["N"])
            step = SCHEDULE[min(attempt, len(SCHEDULE) - 1)].total_seconds()
            at = datetime.fromisoformat(item["at"]["S"]).timestamp()
            if item["outcome"]["S"] == "retry" and at + step > now:
                waiting.add(mid)
        return missing, waiting

    def _deliveries(self) -> list[dict[str, Any]]:
        """The chaos endpoint's deliveries log: one Query of its own partition (paged), never a scan."""
        pages = (
            boto3.client("dynamodb")
            .get_paginator("query")
            .paginate(
                TableName=os.environ["NOTIFICATIONS_TABLE"],
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"WHD#{self.webhook_id}"}},
            )
        )
        return [item for page in pages for item in page["Items"]]

    def webhooks(self, records: dict[str, JobRecord], missing: set[str], waiting: set[str]) -> dict[str, Any]:
        """The webhooks' count: messages expected, received (once, and repeats of an id), lost (``missing``: not
        received, and not ``waiting`` for a retry) and changes received under two or more ids."""
        expected = self._expected_webhooks(records)
        valid = [m for m in self.stack.receiver.messages() if m.valid]
        ids_by_change: dict[tuple[str, str], set[str]] = {}
        for m in valid:
            ids_by_change.setdefault((str(m.type), str((m.data or {}).get("job_id"))), set()).add(m.id)
        doubled = [change for change, ids in ids_by_change.items() if len(ids) > 1]
        counts = self.stack.receiver.counts()
        lost = sorted(missing - waiting)
        return {
            "expected": len(expected),
            "expected_by_type": dict(Counter(kind for kind, _ in expected.values())),
            "received_unique": counts.unique,
            "received_repeats": counts.repeats,
            "invalid_signatures": counts.invalid,
            "failures_injected": counts.injected_failures,
            "unexpected": len({m.id for m in valid} - set(expected)),
            "waiting_retry": len(waiting),
            "lost": len(lost),
            "duplicates_distinct_ids": len(doubled),
            "wait": self.webhook_wait,
            "examples": {"lost": [expected[m] for m in lost[:5]], "duplicates": doubled[:5]},
        }

    # -- the count ----------------------------------------------------------------------------------------

    def records(self) -> dict[str, JobRecord]:
        """Every accepted job's record, by job id, and the records of the digests' jobs their DIGESTED members point
        to (BatchGetItem by key, never a scan). A digest's job not made yet has no record."""
        from notify.adapters.dynamodb.jobs import DynamoJobLedger

        store = DynamoJobLedger(boto3.client("dynamodb"), os.environ["NOTIFICATIONS_TABLE"])
        found = store.get_jobs(list(self.load.jobs))
        for detail in map(_digested, found.values()):
            if detail and detail.get("digest_job_id"):
                self.digest_jobs.add(str(detail["digest_job_id"]))
        if self.digest_jobs:
            found.update(store.get_jobs(sorted(self.digest_jobs)))
        return found

    def backlog(self) -> dict[str, Optional[int]]:
        """What the worker has yet to take: the records its Kafka group has not committed past on the jobs
        topic (None if the broker would not say) or, with sqs, the jobs queue's messages visible or in flight, and
        the delay queue's messages visible or in flight (delayed ones are retries and scheduled sends, which their
        jobs' records show)."""
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=os.environ["DELAY_QUEUE_URL"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        delayed = sum(int(v) for v in attributes.values())
        if self.sqs_mode:
            return {"jobs_queue": self.jobs_queue_pending(), "delay_queue": delayed}
        return {"kafka_lag": self._kafka_lag(), "delay_queue": delayed}

    def _kafka_lag(self) -> Optional[int]:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
        from kafka.errors import KafkaError

        topic = os.environ["KAFKA_TOPIC"]
        group = self.stack.kafka_wiring("WorkerFunction").source.consumer_group
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.stack.bootstrap, api_version=(2, 8, 0))
            admin = KafkaAdminClient(bootstrap_servers=self.stack.bootstrap, api_version=(2, 8, 0))
            try:
                partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
                ends = consumer.end_offsets(partitions)
                committed = admin.list_group_offsets({group: partitions}).get(group, {})
            finally:
                consumer.close()
                admin.close()
        except KafkaError as exc:
            log.warning("could not read the worker's Kafka lag: %s", exc)
            return None
        if not partitions:
            return None
        lag = 0
        for tp in partitions:
            done = committed.get(tp)
            lag += max(0, ends[tp] - (done.offset if done is not None and done.offset >= 0 else 0))
        return lag

    def letters(self) -> list[dict[str, Any]]:
        from notify.adapters.sqs import SqsDeadLetterQueue
        from notify.services.dlq import letter_view

        dlq = SqsDeadLetterQueue(self.sqs(), os.environ["DLQ_URL"])
        return [letter_view(letter) for letter in dlq.receive(100_000, 900)]

    def digests(self, records: dict[str, JobRecord], statuses: dict[str, str]) -> dict[str, Any]:
        """The digests' count: members digested, digests sent, members lost (the digest's job they point to is not
        terminal, or the member is not among its bucket's members) and digests doubled (a bucket with more than one
        digest job, a digest job at the provider more than once, or a member sent on its own as well)."""
        from notify.adapters.dynamodb.digests import DynamoDigestStore

        store = DynamoDigestStore(boto3.client("dynamodb"), os.environ["NOTIFICATIONS_TABLE"])
        members = {j: _digested(records.get(j)) or {} for j in self.load.jobs if statuses.get(j) == "DIGESTED"}
        by_bucket: dict[str, set[str]] = {}
        for detail in members.values():
            if detail.get("bucket_id"):
                by_bucket.setdefault(str(detail["bucket_id"]), set()).add(str(detail.get("digest_job_id")))
        listed: dict[str, set[str]] = {}
        counts_wrong = 0  # a closed bucket whose count is not the number of its members
        for bucket in by_bucket:
            listed[bucket] = {m.job_id for m in store.members(bucket, 100_000)}
            closed = store.closed(bucket)
            if closed is None or closed.count != len(listed[bucket]):
                counts_wrong += 1
        digest_status = {d: statuses.get(d, "MISSING") for d in self.digest_jobs}
        in_no_digest = [
            m
            for m, d in members.items()
            if not d.get("bucket_id") or not d.get("digest_job_id") or m not in listed.get(str(d["bucket_id"]), ())
        ]
        digest_not_terminal = [
            m for m, d in members.items() if digest_status.get(str(d.get("digest_job_id"))) not in TERMINAL
        ]
        lost = sorted(set(in_no_digest) | set(digest_not_terminal))
        emails = self.proxy.ledger.emails
        several_jobs = [b for b, jobs in by_bucket.items() if len(jobs) > 1]
        sent_twice = [d for d in self.digest_jobs if emails.get(d, 0) > 1]
        reached = self.proxy.ledger.reached()
        members_sent = [m for m in members if m in reached]
        return {
            "members_digested": len(members),
            "members_by_load": dict(Counter(self.load.jobs[m] for m in members)),
            "buckets": len(by_bucket),
            "digest_jobs": len(self.digest_jobs),
            "digest_statuses": dict(Counter(digest_status.values())),
            "digests_sent": sum(1 for v in digest_status.values() if v in ("SENT", *AFTER_SENT)),
            "digest_emails_accepted": sum(emails.get(d, 0) for d in self.digest_jobs),
            "largest_bucket": max((len(v) for v in listed.values()), default=0),
            "bucket_counts_wrong": counts_wrong,
            "lost_members": len(lost),
            "members_in_no_digest": len(in_no_digest),
            "members_digest_not_terminal": len(digest_not_terminal),
            "duplicate_digests": len(several_jobs) + len(sent_twice) + len(members_sent),
            "buckets_with_several_digest_jobs": len(several_jobs),
            "digests_sent_twice": len(sent_twice),
            "members_also_sent_alone": len(members_sent),
            "examples": {"lost": lost[:5], "duplicates": (several_jobs + sent_twice + members_sent)[:5]},
        }

    def report(self) -> dict[str, Any]:
        records = self.records()
        statuses = {job: rec.status.value for job, rec in records.items()}
        letters = self.letters()
        lettered = Counter(letter["job_id"] for letter in letters if letter["job_id"])
        reasons = Counter(str(letter["reason"]) for letter in letters)
        raw_letters = [letter for letter in letters if not letter["job_id"]]
        # A record is lettered again when a cut-off makes its batch come back: count records by their coordinates.
        poison_records = len({letter["source"] for letter in raw_letters})
        ledger = self.proxy.ledger
        duplicates = ledger.duplicates()
        reached = ledger.reached()
        accepted = list(self.load.jobs)
        count = Counter(statuses.get(j, "MISSING") for j in accepted)
        failed = [j for j in accepted if statuses.get(j) == "FAILED"]
        # stuck: not terminal when the drain ended, in four parts. Still moving: the record changed within the
        # quiet period, or the job waits for a retry or a scheduled send. Waiting in an undrained backlog: not
        # moving, but the worker still had Kafka records or delay-queue messages to take, and one may be this
        # job's. In the DLQ: not moving, with a letter. Lost: the rest, with nothing left that could move it.
        stuck = [j for j in accepted if statuses.get(j) not in TERMINAL]
        moving = [j for j in stuck if self._moving(j, records.get(j))]
        backlog = self.backlog()
        undrained = any(n is None or n > 0 for n in backlog.values())  # unknown counts as undrained
        in_backlog = [j for j in stuck if j not in moving and j not in lettered and undrained]
        stuck_lettered = [j for j in stuck if j not in moving and j in lettered]
        lost = [j for j in stuck if j not in moving and j not in in_backlog and j not in lettered]
        reason_of = {j: str((records[j].history[-1].detail or {}).get("reason")) for j in failed if records[j].history}
        unknown = [j for j in failed if reason_of.get(j) == "outcome_unknown"]
        sent_not_reached = [j for j in accepted if statuses.get(j) in ("SENT", *AFTER_SENT) and j not in reached]
        moto_emails = _moto_email_count(self.stack.endpoint)
        cut = self.stack.workers[self.jobs_trigger].cut
        result = {
            "settings": asdict(self.s),
            "transport": self.s.transport,
            "sqs_calls_refused": self.proxy.ledger.sqs_refused,
            "timeline": self.timeline,
            "accepted": len(accepted),
            "accepted_by": dict(Counter(self.load.jobs.values())),
            "refused": dict(self.load.refused),
            "client_retries": self.load.retried,
            "statuses": dict(count),
            "failed_with_letter": sum(1 for j in failed if j in lettered),
            "failed_without_letter": sum(1 for j in failed if j not in lettered),
            "failed_reasons": dict(Counter(reason_of.get(j, "?") for j in failed)),
            "outcome_unknown": len(unknown),
            "outcome_unknown_reached_provider": sum(1 for j in unknown if j in reached),
            "runaway_jobs": len(self.load.runaway_jobs),
            "runaway_failed_template_error": sum(
                1 for j in self.load.runaway_jobs if reason_of.get(j) == "template_error"
            ),
            "drain": self.drain,
            "stuck": len(stuck),
            "still_moving": len(moving),
            "in_backlog": len(in_backlog),
            "stuck_with_letter": len(stuck_lettered),
            "backlog": backlog,
            "lost": len(lost),
            "duplicates": len(duplicates),
            "sent_but_provider_never_reached": len(sent_not_reached),
            "letters": len(letters),
            "letter_reasons": dict(reasons),
            "poison_produced": getattr(self, "poison", 0),
            "poison_letters": len(raw_letters),
            "poison_records_lettered": poison_records,
            "provider_calls": {
                "emails_accepted": sum(ledger.emails.values()),
                "emails_in_moto": moto_emails,
                "pushes_accepted": sum(ledger.pushes.values()),
                "emails_throttled": ledger.throttled_emails,
                "pushes_throttled": ledger.throttled_pushes,
            },
            "auth": {
                "requests": self.stack.auth.faults.requests,
                "errors_injected": self.stack.auth.faults.injected_errors,
                "delays_injected": self.stack.auth.faults.injected_delays,
            },
            "cut_offs": [{"records": c.records, "after_seconds": c.after} for c in cut],
            "worker_containers": {k: f.containers for k, f in self.stack.workers.items()},
            "digests": self.digests(records, statuses),
            # (The DLQ is read once, above: a read hides its letters for 15 minutes.)
            "webhooks": {**self.webhook_count, "letters": reasons.get("webhook_undeliverable", 0)},
            "runaway_statuses": dict(Counter(statuses.get(j, "MISSING") for j in self.load.runaway_jobs)),
            # Letters beyond one per FAILED job: a job with several, or a letter whose job did not end FAILED.
            "jobs_with_several_letters": {j: n for j, n in lettered.items() if n > 1},
            "letters_of_jobs_not_failed": {
                j: statuses.get(j, "MISSING") for j in lettered if statuses.get(j, "MISSING") != "FAILED"
            },
            "examples": {
                "stuck": stuck[:5],
                "still_moving": moving[:5],
                "lost": lost[:5],
                "duplicates": list(duplicates)[:5],
            },
        }
        return result

    def stop(self) -> None:
        self.stack.stop()
        self.proxy.stop()
        if self.sqs_mode:
            os.environ.pop("AWS_ENDPOINT_URL_SQS", None)


def _moto_email_count(endpoint: str) -> int:
    """The messages in moto's SES store (its count alone: no dump of moto's whole state)."""
    from local.emails import sent_count

    return sent_count(endpoint)


def table(r: dict[str, Any]) -> str:
    st = r["statuses"]
    rows = [
        ("accepted (jobs)", r["accepted"], ", ".join(f"{k} {v}" for k, v in sorted(r["accepted_by"].items()))),
        (
            "SENT (and after: delivered, bounced, complained)",
            sum(st.get(s, 0) for s in ("SENT", *AFTER_SENT)),
            f"{r['sent_but_provider_never_reached']} without a provider call on record",
        ),
        (
            "FAILED with a DLQ letter",
            r["failed_with_letter"],
            ", ".join(f"{k} {v}" for k, v in sorted(r["failed_reasons"].items())),
        ),
        (
            "  of which outcome_unknown",
            r["outcome_unknown"],
            f"{r['outcome_unknown_reached_provider']} had reached the provider (the documented window)",
        ),
        ("FAILED without a letter", r["failed_without_letter"], ""),
        ("EXPIRED", st.get("EXPIRED", 0), ""),
        ("SKIPPED", st.get("SKIPPED", 0), ""),
        ("stuck (not terminal when the drain ended)", r["stuck"], "goal 0"),
        (
            "  still moving",
            r["still_moving"],
            f"changed in the last {r['drain']['quiet_seconds']:.0f} s, or a retry or scheduled send due; not lost",
        ),
        (
            "  waiting in an undrained backlog",
            r["in_backlog"],
            f"not moving; {_backlog_line(r['backlog'])}",
        ),
        ("  in the DLQ, not terminal", r["stuck_with_letter"], ""),
        ("lost (stuck, and none of those three)", r["lost"], "goal 0: nothing left that could move it"),
        ("duplicates (a job at its provider twice)", r["duplicates"], "goal 0"),
        (
            "poison records → lettered",
            f"{r['poison_produced']} → {r['poison_records_lettered']}",
            f"{r['poison_letters']} letters (a batch that was cut off comes back)",
        ),
        (
            "runaway template → template_error",
            f"{r['runaway_jobs']} → {r['runaway_failed_template_error']}",
            f"{r['runaway_statuses'].get('EXPIRED', 0)} expired before their turn",
        ),
        ("worker cut off mid-batch", len(r["cut_offs"]), ", ".join(f"{c['records']} records" for c in r["cut_offs"])),
    ]
    d = r["digests"]
    rows += [
        (
            "digests: members digested → buckets",
            f"{d['members_digested']} → {d['buckets']}",
            f"{', '.join(f'{k} {v}' for k, v in sorted(d['members_by_load'].items()))}; largest "
            f"{d['largest_bucket']}, {d['bucket_counts_wrong']} counts wrong",
        ),
        (
            "  digests SENT (digest jobs)",
            f"{d['digests_sent']} ({d['digest_jobs']})",
            ", ".join(f"{k} {v}" for k, v in sorted(d["digest_statuses"].items())),
        ),
        (
            "  lost members",
            d["lost_members"],
            f"goal 0: {d['members_digest_not_terminal']} with a digest not terminal, {d['members_in_no_digest']} in no "
            "digest",
        ),
        (
            "  duplicate digests",
            d["duplicate_digests"],
            f"goal 0: {d['buckets_with_several_digest_jobs']} buckets with 2+ digest jobs, {d['digests_sent_twice']} "
            f"digests emailed twice, {d['members_also_sent_alone']} members also sent alone",
        ),
    ]
    w = r["webhooks"]
    rows += [
        (
            "webhooks: subscribed changes → received",
            f"{w['expected']} → {w['received_unique']}",
            f"{w['received_repeats']} repeats of an id, {w['failures_injected']} requests failed on purpose, "
            f"{w['invalid_signatures']} invalid signatures, {w['waiting_retry']} waiting for a retry",
        ),
        ("  webhooks lost", w["lost"], "goal 0: neither received nor waiting for a retry"),
        ("  webhooks under distinct ids", w["duplicates_distinct_ids"], "goal 0: one change received as two messages"),
        ("  webhooks unexpected", w["unexpected"], "goal 0: a message for a change no job's history records"),
    ]
    calls = r["provider_calls"]
    width = max(len(str(name)) for name, _, _ in rows)
    lines = [f"{name:<{width}}  {value!s:>11}  {note}".rstrip() for name, value, note in rows]
    lines.append("")
    lines.append(f"drain: {_drain_line(r['drain'])}")
    if r.get("transport") == "sqs":
        lines.append(
            f"transport: sqs; SQS unavailable for {r['settings']['sqs_down_seconds']:g} s, "
            f"{r['sqs_calls_refused']} calls refused"
        )
    lines.append(
        f"provider: {calls['emails_accepted']} emails accepted ({calls['emails_in_moto']} in moto's store), "
        f"{calls['pushes_accepted']} pushes; throttled {calls['emails_throttled']} emails, "
        f"{calls['pushes_throttled']} pushes"
    )
    a = r["auth"]
    lines.append(
        f"Auth: {a['requests']} requests, {a['errors_injected']} answered 500, {a['delays_injected']} delayed; "
        f"API: {r['client_retries']} client retries with the same Idempotency-Key, refused {r['refused'] or 'none'}"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["letter_reasons"].items()))
    extra = sum(n - 1 for n in r["jobs_with_several_letters"].values()) + len(r["letters_of_jobs_not_failed"])
    extra += r["poison_letters"] - r["poison_records_lettered"]
    lines.append(
        f"DLQ letters: {r['letters']} ({reasons}); {extra} beyond one per FAILED job or poison record "
        "(a container cut off after lettering, before recording, letters it again on redelivery)"
    )
    return "\n".join(lines)


def _unknown(value: Optional[int]) -> str:
    return "unknown" if value is None else str(value)


def _backlog_line(backlog: dict[str, Optional[int]]) -> str:
    """What the worker had yet to take when the drain ended, in words."""
    if "jobs_queue" in backlog:
        first = f"jobs queue {_unknown(backlog['jobs_queue'])}"
    else:
        first = f"Kafka lag {_unknown(backlog.get('kafka_lag'))}"
    return f"{first}, delay queue {backlog['delay_queue']} visible or in flight"


def _drain_line(drain: dict[str, Any]) -> str:
    """Why the drain ended, in a line."""
    took, quiet, ceiling = drain["seconds"], drain["quiet_seconds"], drain["ceiling_seconds"]
    if drain["ended"] == "terminal":
        return f"every accepted job terminal after {took:.0f} s (quiet period {quiet:.0f} s, ceiling {ceiling:.0f} s)"
    if drain["ended"] == "quiet":
        return f"no job changed for {quiet:.0f} s and none waits for a retry; ended after {took:.0f} s"
    return (
        f"SAFETY CEILING of {ceiling:.0f} s hit before the drain finished: a job still moving then is stuck, "
        "not lost, and the goal is not met"
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", "1")))
    parser.add_argument(
        "--transport",
        choices=("kafka", "sqs"),
        default=os.environ.get("TRANSPORT") or "kafka",
        help="the jobs' transport (default: TRANSPORT, else kafka); sqs swaps the broker's restart for an SQS outage",
    )
    parser.add_argument("--quick", action="store_true", help="a small run: 40 users, about 200 jobs, 20 s of load")
    parser.add_argument("--singles", type=int, help=f"single events (default {Settings.singles})")
    parser.add_argument("--batches", type=int, help=f"events:batch calls of 10 events (default {Settings.batches})")
    parser.add_argument("--load-seconds", type=float, help=f"seconds of load (default {Settings.load_seconds:g})")
    parser.add_argument("--state-dir", type=Path, help="where logs and result.json go (default .chaos/seed-N)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    logging.getLogger("local.mappings").setLevel(logging.ERROR)
    chosen = {"singles": args.singles, "batches": args.batches, "load_seconds": args.load_seconds}
    settings = dataclasses.replace(
        Settings(seed=args.seed, transport=args.transport),
        **(QUICK if args.quick else {}),
        **{k: v for k, v in chosen.items() if v is not None},
    )
    suffix = "-sqs" if settings.transport == "sqs" else ""
    state_dir = args.state_dir or ROOT / ".chaos" / f"seed-{settings.seed}{suffix}"
    state_dir.mkdir(parents=True, exist_ok=True)
    chaos = Chaos(settings, state_dir)
    began = time.monotonic()
    print(f"make chaos: seed {settings.seed}, transport {settings.transport}, logs in {state_dir}/", flush=True)
    # The in-process API's logs (Powertools writes JSON to stdout) go to a file; the progress stays here.
    with (state_dir / "api.log").open("w") as api_log, contextlib.redirect_stdout(api_log):
        chaos.out = sys.__stdout__
        try:
            chaos.start()
            result = chaos.run()
        finally:
            chaos.stop()
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    (state_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result))
    print(f"\n{result['wall_seconds']} s in all; the full result is in {state_dir / 'result.json'}")
    digests = result["digests"]
    ok = result["lost"] == 0 and result["duplicates"] == 0 and result["stuck"] == 0
    ok = (
        ok
        and digests["lost_members"] == 0
        and digests["duplicate_digests"] == 0
        and digests["bucket_counts_wrong"] == 0
    )
    webhooks = result["webhooks"]
    ok = (
        ok
        and webhooks["lost"] == 0
        and webhooks["duplicates_distinct_ids"] == 0
        and webhooks["invalid_signatures"] == 0
        and webhooks["unexpected"] == 0
    )
    goal = (
        "lost 0, duplicates 0, stuck 0; digests: lost members 0, duplicate digests 0; webhooks: lost 0, "
        "distinct ids 0, invalid signatures 0, unexpected 0"
    )
    print(f"GOAL MET: {goal}" if ok else "GOAL NOT MET", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

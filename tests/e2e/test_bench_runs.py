"""`make bench` at a tiny size (`python -m bench --quick`): every benchmark still runs and prints its figures.

Benchmarks are not tests, and no timing is checked here: only that each one completes and prints the figures
docs/PERFORMANCE.md reports. They start their own peers (moto, Tansu, dynalite, `python -m local`), so they run
as `make bench` runs them, in a process of their own (about 45 s, plus dynalite's npm install on first use).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from local.cfn import ROOT
from local.launch import pythonpath

MS = r"\d+ ms"
RATE = r"[\d,]+ jobs/CPU-s"
# What each benchmark prints: a line each, its figures matched as numbers.
FIGURES = {
    "cold_start": [
        rf"^  bare Powertools\+boto3 +{MS} +1\.00×$",
        *(rf"^  {module}\.app +{MS} +[\d.]+×" for module in ("api", "worker", "scheduler")),
        # import, before-snapshot hook, = snapshot holds, after-restore hook, without SnapStart
        *(rf"^  {module}\.app +{MS}(?: +{MS}){{4}}$" for module in ("api", "worker", "websocket")),
    ],
    "ingest": [
        *(rf"^  {path}.* {RATE} +[\d,]+ jobs/s wall +\d+% of raw$" for path in ("raw producer", "POST /events")),
        r"^  largest event item the API wrote: \d+ bytes",
        r"^  bytes per job on Kafka: \d+ ",
        # Transport sqs beside Kafka (issue 25)
        rf"^  raw SQS client.*\| sqs +{RATE} +[\d,]+ jobs/s wall +\d+% of raw$",
        rf"^  POST /events.* of raw \| sqs +{RATE} +[\d,]+ jobs/s wall +\d+% of raw$",
        # a FIFO jobs queue beside the standard one (bench/fifo.py), single events and batches
        rf"^  raw SQS client, FIFO.*\| fifo +{RATE} +[\d,]+ jobs/s wall +\d+% of raw$",
        *(
            rf"^  {path}.* of raw \| sqs .* of raw \| fifo +{RATE} +[\d,]+ jobs/s wall"
            for path in ("POST /events,", "POST /events:batch")
        ),
        r"^  SQS SendMessageBatch requests per job: single [\d.]+, batch [\d.]+",
    ],
    "kafka_down": [
        r"^  Kafka up +p50 +[\d.]+ ms +p99 +[\d.]+ ms$",
        r"^  Kafka stopped, first request +[\d.]+ ms ",
        r"^  Kafka stopped, the \d+ after it +p50 +[\d.]+ ms +p99 +[\d.]+ ms$",
        r"^  Kafka started again: a publish reached it after [\d.]+ s ",
    ],
    "worker": [
        r"^  DynamoDB and SES on one moto server:$",
        r"^  DynamoDB on dynalite, SES on moto server:$",
        *(rf"^    {run} +[\d.]+ s +[\d.]+ notifications/s" for run in ("sequential", "concurrent", "sqs", "fifo")),
        r"^    bare AWS calls, .*: [\d.]+ ms per notification",
        r"^  AWS requests per delivered notification: DynamoDB [\d.]+ writes \+ [\d.]+ reads, SES [\d.]+",
        r"^  Transport sqs, the worker's own requests .*: DynamoDB [\d.]+ writes .* [\d.]+ ReceiveMessage",
        r"^  a user's first notification of the day .*: DynamoDB [\d.]+ writes",
        r"^  under a throttle rule .*: DynamoDB [\d.]+ writes \+ [\d.]+ reads per notification sent .* [\d.]+ writes",
    ],
    "fanout": [rf"^  raw producer \(a flush per 500 msgs\) +{RATE}$", rf"^  fan-out through the worker +{RATE} +\d+% "],
    "templates": [
        r"^  default new_episode email \(3 parts\) +[\d.]+ms .*MiB +rendered$",
        r"^  nested range loops +[\d.]+ms .*MiB +more than 10,000 loop iterations",
    ],
    "inapp": [r"^  median +[\d.]+ ms +p99 +[\d.]+ ms"],
}
QUANTITIES = (
    "api_gb_s_batch",
    "kafka_bytes_per_job",
    "worker_gb_s",
    "dynamodb_writes",
    "job_item_bytes",
    "api_gb_s_batch_sqs",
    "worker_gb_s_sqs",
    "api_gb_s_batch_fifo",
    "worker_gb_s_fifo",
)


@pytest.mark.timeout(900)  # above the run's own ceiling, so a slow run fails with its output
def test_every_benchmark_runs_once_at_a_tiny_size_and_prints_its_figures() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    env["PYTHONPATH"] = pythonpath()
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=720,  # a ceiling for a loaded machine: about 45 s on a quiet one
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    missing = [
        f"{benchmark}: {pattern}"
        for benchmark, patterns in FIGURES.items()
        for pattern in patterns
        if not re.search(pattern, run.stdout, re.MULTILINE)
    ]
    assert not missing, (missing, run.stdout)
    for name in QUANTITIES:
        assert re.search(rf"^  {name} +[\d.e+-]+$", run.stdout, re.MULTILINE), (name, run.stdout[-2000:])

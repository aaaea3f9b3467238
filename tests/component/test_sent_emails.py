"""Reading the emails moto accepted (``local/emails.py`` through ``GET /_local/ses/emails`` on the local moto server)
costs the same whatever else the server holds: it reads moto's SES store alone, indexed by recipient.

These tests start a moto server of their own, so that what they store is all it holds.
"""

from __future__ import annotations

import statistics
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.emails import sent_count, sent_emails
from local.invoke import AWS_ENV
from local.processes import Process, start_moto

SENDER = "notifications@example.com"


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=AWS_ENV["AWS_REGION"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process: Process = start_moto(log_path=Path(tmp_path_factory.mktemp("moto")) / "moto.log")
    endpoint = f"http://127.0.0.1:{process.port}"
    _client("sesv2", endpoint).create_email_identity(EmailIdentity=SENDER)
    yield endpoint
    process.stop()


def _send(endpoint: str, to: list[str], subject: str, cc: tuple[str, ...] = ()) -> None:
    _client("sesv2", endpoint).send_email(
        FromEmailAddress=SENDER,
        Destination={"ToAddresses": to, "CcAddresses": list(cc)},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": f"body of {subject}"}}}},
    )


def _put_items(endpoint: str, table: str, start: int, count: int) -> None:
    client = _client("dynamodb", endpoint)
    for first in range(start, start + count, 25):
        puts = [
            {"PutRequest": {"Item": {"pk": {"S": f"item-{n}"}, "data": {"S": "x" * 200}}}}
            for n in range(first, min(first + 25, start + count))
        ]
        client.batch_write_item(RequestItems={table: puts})


def _median_read_seconds(endpoint: str, address: str, reads: int = 15) -> tuple[float, list[dict[str, Any]]]:
    samples, emails = [], []
    for _ in range(reads):
        began = time.perf_counter()
        emails = sent_emails(endpoint, to=address)
        samples.append(time.perf_counter() - began)
    return statistics.median(samples), emails


def _dump_seconds(endpoint: str) -> float:
    """How long moto's whole-state dump takes (printed for comparison; what the old helper read)."""
    began = time.perf_counter()
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=300) as resp:
        resp.read()
    return time.perf_counter() - began


def test_reading_one_address_costs_the_same_with_10_or_10000_unrelated_items(moto: str) -> None:
    address = f"reader-{uuid.uuid4().hex[:6]}@example.com"
    for n in range(3):
        _send(moto, [address], f"mine {n}")
        _send(moto, [f"someone-else-{n}@example.com"], f"theirs {n}")
    table = f"unrelated-{uuid.uuid4().hex[:6]}"
    _client("dynamodb", moto).create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    _put_items(moto, table, 0, 10)
    small_dump = _dump_seconds(moto)
    few, emails_before = _median_read_seconds(moto, address)

    _put_items(moto, table, 10, 9_990)
    items = _client("dynamodb", moto).describe_table(TableName=table)["Table"]["ItemCount"]
    large_dump = _dump_seconds(moto)
    many, emails_after = _median_read_seconds(moto, address)

    print(f"\nread of one address: {few * 1000:.1f} ms with 10 items, {many * 1000:.1f} ms with {items:,}")
    print(f"moto's whole-state dump (the old way): {small_dump * 1000:.0f} ms, then {large_dump * 1000:.0f} ms")
    assert items == 10_000  # the unrelated state is there
    subjects = ["mine 0", "mine 1", "mine 2"]
    assert [e["subject"] for e in emails_after] == [e["subject"] for e in emails_before] == subjects
    # The same work either way: a bound loose enough for a loaded machine, far below what the dump costs.
    assert many <= 3 * few + 0.05


def test_the_index_finds_to_and_cc_in_any_case_and_filters(moto: str) -> None:
    tag = uuid.uuid4().hex[:6]
    to, cc = f"To-{tag}@Example.com", f"cc-{tag}@example.com"
    _send(moto, [to], f"first {tag}", cc=(cc,))
    _send(moto, [to.lower()], f"second {tag}")
    before = sent_count(moto)
    assert [e["subject"] for e in sent_emails(moto, to=to.upper())] == [f"first {tag}", f"second {tag}"]
    assert [e["subject"] for e in sent_emails(moto, to=cc)] == [f"first {tag}"]
    assert [e["subject"] for e in sent_emails(moto, to=to, last=1)] == [f"second {tag}"]
    assert [e["subject"] for e in sent_emails(moto, contains=f"second {tag}")] == [f"second {tag}"]
    (email,) = sent_emails(moto, to=cc)
    assert (email["destinations"]["ToAddresses"], email["destinations"]["CcAddresses"]) == ([to], [cc])
    assert email["source"] == SENDER and email["body"] == f"body of first {tag}"
    _send(moto, [f"later-{tag}@example.com"], "later")
    assert sent_count(moto) == before + 1
    assert sent_emails(moto, to=f"nobody-{tag}@example.com") == []


def test_a_reset_of_moto_empties_the_index(tmp_path: Path) -> None:
    process = start_moto(log_path=tmp_path / "moto.log")
    endpoint = f"http://127.0.0.1:{process.port}"
    try:
        _client("sesv2", endpoint).create_email_identity(EmailIdentity=SENDER)
        _send(endpoint, ["before@example.com"], "before")
        assert sent_count(endpoint) == 1
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=60).close()
        assert (sent_count(endpoint), sent_emails(endpoint, to="before@example.com")) == (0, [])
        _client("sesv2", endpoint).create_email_identity(EmailIdentity=SENDER)
        _send(endpoint, ["after@example.com"], "after")
        assert [e["subject"] for e in sent_emails(endpoint)] == ["after"]
    finally:
        process.stop()

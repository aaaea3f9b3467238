"""moto server with DynamoDB's requests applied one at a time, as DynamoDB's own isolation would have them.

moto serves each request on its own thread and does not isolate DynamoDB calls from each other: a
``TransactWriteItems`` checks its conditions and writes item by item, and when one condition fails it restores
a copy of the whole table taken when it started, undoing whatever other requests wrote meanwhile. DynamoDB's
transactions are serializable and its conditional writes atomic, and the stores rely on that (the inbox's counts,
a job's claim). Serializing DynamoDB's requests in the server gives the tests that isolation; every other service
(SQS long polls included) is served concurrently as before.

It also serves the emails moto "sent", read from moto's SES store alone, at ``GET /_local/ses/emails`` (see
:class:`SentMail`): moto's ``/moto-api/data.json`` dumps every backend (each DynamoDB item, queue message and topic
the session made), so reading mail through it costs more the more else the session stored. Likewise the pushes one
SNS platform endpoint got, at ``GET /_local/sns/pushes?endpoint=<endpoint ARN>``: ``{"pushes": [{"id", "message"}]}``,
oldest first, each message as the worker published it (``MessageStructure=json``: one text per platform).

And its ``TransactWriteItems`` undoes a cancelled transaction item by item: moto 5 deep-copies every table a
transaction names before it starts, to restore the copy if the transaction is cancelled. That is a copy of the whole
table per transaction (100 ms at 3,000 items, growing with the table), and the copies piled up in the server's memory
(a digest member is one transaction: a chaos run grew moto to 16 GB). With requests serialized, keeping the touched
items is enough to undo one (:func:`_transact_write_items`).

And its SQS ``ReceiveMessage`` reads a queue's retention period as the attribute it is: moto 5 checks each message
it considers against the period by building every attribute of the queue, its message counts included (a pass over
all its messages), so one receive cost the square of the backlog. A chaos run whose delay queue held 1,400 messages
kept moto's CPU at 94%, most of it there, and the worker drained four times slower (:func:`_retained`).

And a queue's attributes are each computed when read (:class:`_QueueAttributes`): moto 5's ``SendMessage`` (each
entry of a ``SendMessageBatch`` too) reads ``queue.attributes["ContentBasedDeduplication"]``, and a FIFO queue's
validation and deduplication read it three times more, and that property built every attribute, the three message
counts included, each a pass over all the queue's messages. So one send cost in proportion to the backlog and filling
a queue the square of it: with 6,000 messages waiting a ``SendMessageBatch`` of ten took 440 ms (7 ms with this),
95% of the request threads' samples under ``Queue.attributes`` (py-spy), and ``make bench`` emptied the jobs queue
between requests to keep moto out of its figures. moto's ``/moto-api/data.json`` leaves the property out now (it dumps
only what ``json.dumps`` takes); nothing reads it there.

Run as ``python -m local.moto_server -H 127.0.0.1 -p PORT`` (moto's own arguments).
"""

from __future__ import annotations

import copy
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Optional
from urllib.parse import parse_qs

import moto.dynamodb.models as dynamodb_models
from moto import server
from moto.core.utils import unix_time
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs.models import Queue, SQSBackend

from local.emails import EMAILS_PATH

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _email(message: Any) -> dict[str, Any]:
    """One message of moto's SES store as ``{id, source, destinations, subject, body}`` (SES v1 and v2 share it).

    A raw message has ``raw_data`` instead of subject and body; a templated one ``template`` and ``template_data``.
    """
    destinations = getattr(message, "destinations", {})
    if isinstance(destinations, list):  # SendRawEmail's
        destinations = {"ToAddresses": destinations}
    email = {"id": message.id, "source": message.source, "destinations": destinations}
    for attribute in ("subject", "body", "raw_data", "template", "template_data"):
        if hasattr(message, attribute):
            email[attribute] = getattr(message, attribute)
    return email


class SentMail:
    """The messages in moto's SES store, indexed by recipient (To, Cc and Bcc, case-insensitive), oldest first.

    moto appends each accepted send to its SES backend's ``sent_messages``; each read indexes only what was
    appended since the last one, so reading one address's mail costs the same however much mail, or anything else,
    the server holds. A reset of moto (new backends) rebuilds the index.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[int, tuple[list[Any], int]] = {}  # id(backend) -> (its sent_messages, messages indexed)
        self.emails: list[dict[str, Any]] = []
        self.by_address: dict[str, list[dict[str, Any]]] = {}

    def refresh(self) -> None:
        from moto.ses.models import ses_backends

        # dict's own views: moto's BackendDict creates a backend when one is looked up by key.
        backends = [b for by_region in dict.values(ses_backends) for b in dict.values(by_region)]
        with self._lock:
            current = {id(b): b.sent_messages for b in backends}
            if any(current.get(key) is not messages for key, (messages, _) in self._seen.items()):
                self._seen, self.emails, self.by_address = {}, [], {}  # moto was reset
            for key, messages in current.items():
                done = self._seen.get(key, (messages, 0))[1]
                for message in messages[done:]:
                    email = _email(message)
                    self.emails.append(email)
                    for address in {a.lower() for field in email["destinations"].values() for a in field}:
                        self.by_address.setdefault(address, []).append(email)
                    done += 1
                self._seen[key] = (messages, done)

    def query(self, to: Optional[str] = None, contains: Optional[str] = None, last: int = 0) -> dict[str, Any]:
        """``{"emails": [...], "sent": every message in the store}``: to one address, holding ``contains`` in its
        subject or body, the last ``last`` of them."""
        self.refresh()
        with self._lock:
            emails = self.by_address.get(to.lower(), []) if to else self.emails
            if contains:
                emails = [e for e in emails if contains in str(e.get("subject", "")) + str(e.get("body", ""))]
            emails = list(emails[-last:] if last > 0 else emails)
            return {"emails": emails, "sent": len(self.emails)}


_sent_mail = SentMail()
PUSHES_PATH = "/_local/sns/pushes"


def _pushes(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The messages moto's SNS stored for one platform endpoint (moto keeps them on the endpoint)."""
    from moto.sns.models import sns_backends

    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    endpoint = query.get("endpoint", "")
    pushes: list[dict[str, str]] = []
    for by_region in dict.values(sns_backends):  # dict's own views: a lookup by key would create a backend
        for backend in dict.values(by_region):
            found = backend.platform_endpoints.get(endpoint)
            if found is not None:
                pushes += [{"id": key, "message": message} for key, message in list(found.messages.items())]
    body = json.dumps({"pushes": pushes}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _emails(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    try:
        last = int(query.get("last") or 0)
    except ValueError:
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [b'{"message": "last: an integer"}']
    body = json.dumps(_sent_mail.query(query.get("to"), query.get("contains"), last)).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _serialized(self: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == EMAILS_PATH and environ.get("REQUEST_METHOD") == "GET":
        return _emails(environ, start_response)
    if environ.get("PATH_INFO") == PUSHES_PATH and environ.get("REQUEST_METHOD") == "GET":
        return _pushes(environ, start_response)
    # DynamoDB's JSON protocol names the operation in X-Amz-Target: DynamoDB_20120810.<Operation>.
    if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
        return _dispatch(self, environ, start_response)
    with _dynamodb:
        return list(_dispatch(self, environ, start_response))


class _TablesUncopied:
    """The ``copy`` module as moto's DynamoDB backend sees it: a table "copied" is the table itself (a transaction's
    rollback then restores nothing, and :func:`_transact_write_items` restores the items it touched instead); every
    other value is deep-copied as before."""

    @staticmethod
    def deepcopy(value: Any, memo: Optional[dict[int, Any]] = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


_transact = DynamoDBBackend.transact_write_items


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's TransactWriteItems, undone item by item when it is cancelled: each item it names is kept as it was
    before, and put back (or removed again) if moto raises. DynamoDB requests are serialized (:func:`_serialized`),
    so nothing else writes meanwhile."""
    touched: list[tuple[Table, Any, Any, Any]] = []
    try:
        for action in transact_items:
            _, op = next(iter(action.items()))
            table = self.tables[op["TableName"]]
            names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
            key = op["Key"] if "Key" in op else {n: op["Item"][n] for n in names}
            hash_key, range_key = self.get_keys_value(table, key)
            touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    except Exception:  # noqa: BLE001 - a malformed request: moto answers it with its own error, nothing is written
        touched = []
    try:
        _transact(self, transact_items)
    except Exception:
        for table, hash_key, range_key, item in reversed(touched):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif range_key is not None:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item
        raise


def _retained(self: SQSBackend, queue_name: str, message: Any) -> bool:
    """moto's ``is_message_valid_based_on_retention_period`` without building every attribute of the queue."""
    retention = int(self.get_queue(queue_name).message_retention_period)  # type: ignore[attr-defined]
    return bool(retention + message.sent_timestamp / 1000 > unix_time())


# moto's Queue properties that walk every message of the queue, by the attribute each one gives.
_COUNTS = {
    "ApproximateNumberOfMessages": "approximate_number_of_messages",
    "ApproximateNumberOfMessagesDelayed": "approximate_number_of_messages_delayed",
    "ApproximateNumberOfMessagesNotVisible": "approximate_number_of_messages_not_visible",
}
_queue_attributes = Queue.attributes.fget  # type: ignore[attr-defined]


class _Uncounted:
    """A queue as moto's ``Queue.attributes`` reads it, with no message counts (None): everything else is the
    queue's."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return None if name in _COUNTS.values() else getattr(self._queue, name)


class _QueueAttributes(Mapping[str, Any]):
    """``Queue.attributes`` as moto builds it (the same names, values and order), but each message count is counted
    only when it is read: a send that reads ``ContentBasedDeduplication`` no longer walks the queue's messages
    three times. A ``GetQueueAttributes`` of the counts still walks them: with ``All``, once per count, as moto did;
    naming a count, three times for it (moto asks ``name in queue.attributes``, then ``queue.attributes.get(name)``
    twice, each through a new mapping, so a count cached in the mapping would not be read again anyway)."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._values: dict[str, Any] = _queue_attributes(_Uncounted(queue))

    def __getitem__(self, name: str) -> Any:
        if name in _COUNTS:
            return getattr(self._queue, _COUNTS[name])
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


# What the server changes in moto's SQS, applied by main() (and by the tests, on moto in process).
SQS_PATCHES: tuple[tuple[type, str, Any], ...] = (
    (SQSBackend, "is_message_valid_based_on_retention_period", _retained),
    (Queue, "attributes", property(_QueueAttributes)),
)


def main(argv: list[str]) -> None:
    """moto's server, with the DynamoDB lock, item-by-item transactions, the sent-mail index, the pushes' route and
    the SQS patches in place."""
    DomainDispatcherApplication.__call__ = _serialized  # type: ignore[method-assign]
    dynamodb_models.copy = _TablesUncopied  # type: ignore[assignment]
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    for owner, name, value in SQS_PATCHES:
        setattr(owner, name, value)
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

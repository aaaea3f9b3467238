"""DynamoDB adapters: event records and job state, templates, API keys."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from notify.adapters.aws import error_code
from notify.clock import iso
from notify.errors import Conflict, FieldError, StoreUnavailable, ValidationFailed
from notify.jobs import job_id as derive_job_id
from notify.jobs import locator, locator_of_job
from notify.models import Channel, NotificationJob, Status
from notify.records import Claim, ClaimOutcome, EventRecord, JobRecord, Template, Transition
from notify.resilience import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ser = TypeSerializer()
_de = TypeDeserializer()

RETENTION = timedelta(days=90)
RELEASING = frozenset({Status.RETRYING, Status.SCHEDULED, Status.SENT, Status.FAILED, Status.EXPIRED, Status.SKIPPED})


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_de.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: make them int or float again, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


def _values(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in data.items()}


def conditional(what: str, call: Any, **kwargs: Any) -> bool:
    """Run a conditional write: True if it applied, False if its condition failed, StoreUnavailable otherwise."""
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if error_code(exc) in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return False
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


def batch_write(client: DynamoDBClient, table: str, requests: Sequence[dict[str, Any]], what: str) -> None:
    """BatchWriteItem in chunks of 25, retrying unprocessed items with backoff."""
    for i in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: list(requests[i : i + 25])}
        for attempt in range(8):
            try:
                resp = client.batch_write_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"cannot {what}: {exc}") from exc
            pending = dict(resp.get("UnprocessedItems") or {})
            if not pending:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        if pending:
            raise StoreUnavailable(f"cannot {what}: DynamoDB left items unprocessed")


def _encode_cursor(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(from_item(key), sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError("not a cursor")
    except ValueError:
        raise ValidationFailed([FieldError("cursor", "not a cursor this API returned")]) from None
    return to_item(data)


class DynamoStatusStore:
    """One item per event (``EVT#<locator>``) and one per job the worker has touched (``JOB#<id>``)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    # -- events ---------------------------------------------------------------------

    def put_event(self, record: EventRecord) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(_event_item(record)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"event {record.event_id} already exists") from exc
            raise StoreUnavailable(f"cannot record event: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"cannot record event: {exc}") from exc

    def put_events(self, records: Sequence[EventRecord]) -> None:
        """Store a batch's records compactly: those sharing a locator go into one item per ~300 KB.

        A batch's event ids share a locator (see notify.jobs.new_event_id), so a
        batch of 100 events costs one write, not 100.
        """
        groups: dict[str, list[EventRecord]] = {}
        for record in records:
            groups.setdefault(locator(record.event_id), []).append(record)
        items: list[dict[str, Any]] = []
        for loc, members in groups.items():
            chunk: list[dict[str, Any]] = []
            size = 0
            for record in members:
                data = _event_data(record)
                # Measured as stored: UTF-8 bytes, and a record that would overflow the item starts the next one.
                record_size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()) + 1
                if chunk and size + record_size > BATCH_ITEM_BYTES:
                    items.append(_batch_item(loc, chunk))
                    chunk, size = [], 0
                size += record_size
                chunk.append(data)
            if chunk:
                items.append(_batch_item(loc, chunk))
        batch_write(self._client, self._table, [{"PutRequest": {"Item": item}} for item in items], "record events")

    def delete_event(self, event_id: str) -> None:
        key = {"pk": f"EVT#{locator(event_id)}", "sk": f"EVT#{event_id}"}
        try:
            self._client.delete_item(TableName=self._table, Key=to_item(key))
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"cannot delete event: {exc}") from exc

    def get_event(self, event_id: str) -> Optional[EventRecord]:
        try:
            uuid.UUID(event_id)
        except ValueError:
            return None
        item = self._get({"pk": f"EVT#{locator(event_id)}", "sk": f"EVT#{event_id}"})
        if item:
            return _event(item)
        for record in self._query_events(f"EVT#{locator(event_id)}", "EVB#"):  # sent in a batch
            if record.event_id == event_id:
                return record
        return None

    def find_event_of_job(self, job_id: str) -> Optional[EventRecord]:
        """The event (or fan-out page) record whose users and channels derive ``job_id``."""
        try:
            loc = locator_of_job(job_id)
        except ValueError:
            return None
        for record in self._query_events(f"EVT#{loc}", "EV"):
            for uid in record.user_ids:
                for ch in record.channels:
                    if derive_job_id(record.event_id, uid, ch) == job_id:
                        return record
        return None

    def put_page(self, record: EventRecord) -> bool:
        """Record one expanded page; False if it was recorded before (the page is done)."""
        item = _event_item(record)
        item["user_ids_json"] = json.dumps(item.pop("user_ids"), separators=(",", ":"))  # one string, not 500
        return conditional(
            "record the page",
            self._client.put_item,
            TableName=self._table,
            Item=to_item(item),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def page_done(self, event_id: str, page: int) -> bool:
        return self._get({"pk": f"EVT#{locator(event_id)}", "sk": _event_sk(event_id, page)}) is not None

    def event_pages(self, event_id: str) -> list[EventRecord]:
        return self._query_events(f"EVT#{locator(event_id)}", f"EVT#{event_id}#P")

    def _query_events(self, pk: str, sk_prefix: str) -> list[EventRecord]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :sk)",
            "ExpressionAttributeValues": _values({":pk": pk, ":sk": sk_prefix}),
        }
        out: list[EventRecord] = []
        while True:
            try:
                resp = self._client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"cannot read events: {exc}") from exc
            for raw in resp.get("Items", []):
                item = from_item(raw)
                if item.get("kind") == "batch":
                    out += [_event(data) for data in json.loads(item["events"])]
                else:
                    out.append(_event(item))
            if "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- jobs -----------------------------------------------------------------------

    def get_job(self, job_id: str) -> Optional[JobRecord]:
        item = self._get({"pk": f"JOB#{job_id}", "sk": "JOB"})
        return _job(item) if item else None

    def get_jobs(self, job_ids: Sequence[str]) -> dict[str, JobRecord]:
        out: dict[str, JobRecord] = {}
        ids = list(dict.fromkeys(job_ids))
        for i in range(0, len(ids), 100):
            keys = [to_item({"pk": f"JOB#{j}", "sk": "JOB"}) for j in ids[i : i + 100]]
            request: dict[str, Any] = {self._table: {"Keys": keys}}
            while request:
                try:
                    resp = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise StoreUnavailable(f"cannot read jobs: {exc}") from exc
                for raw in resp.get("Responses", {}).get(self._table, []):
                    rec = _job(from_item(raw))
                    out[rec.job_id] = rec
                request = dict(resp.get("UnprocessedKeys") or {})
        return out

    def user_jobs(
        self,
        user_id: str,
        limit: int,
        cursor: Optional[str] = None,
        status: Optional[Status] = None,
        channel: Optional[Channel] = None,
    ) -> tuple[list[JobRecord], Optional[str]]:
        """A user's jobs, newest first, from the ``by-user`` index; the cursor is opaque."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-user",
            "KeyConditionExpression": "gsi1pk = :pk",
            "ScanIndexForward": False,
            "Limit": limit,
        }
        values: dict[str, Any] = {":pk": f"USER#{user_id}"}
        filters = []
        if status is not None:
            filters.append("#s = :status")
            values[":status"] = status.value
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        if channel is not None:
            filters.append("channel = :channel")
            values[":channel"] = channel.value
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = _values(values)
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor)
        records: list[JobRecord] = []
        for _ in range(20):  # filtered pages may come back short: keep reading, within bounds
            try:
                resp = self._client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"cannot read notifications: {exc}") from exc
            records += [_job(from_item(raw)) for raw in resp.get("Items", [])]
            last = resp.get("LastEvaluatedKey")
            if not last or len(records) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last
            kwargs["Limit"] = limit - len(records)
        next_cursor = _encode_cursor(last) if last else None
        return records[:limit], next_cursor

    def claim(self, job: NotificationJob, now: datetime, lease_seconds: int) -> Claim:
        token = uuid.uuid4().hex
        now_ts = int(now.timestamp())
        created = iso(job.created_at)
        values = {
            ":processing": Status.PROCESSING.value,
            ":accepted": Status.ACCEPTED.value,
            ":retrying": Status.RETRYING.value,
            ":scheduled": Status.SCHEDULED.value,
            ":token": token,
            ":lease": now_ts + lease_seconds,
            ":nowts": now_ts,
            ":attempt": job.attempt,
            ":now": iso(now),
            ":accepted_entry": [_entry(Status.ACCEPTED, job.created_at, 0)],
            ":entry": [_entry(Status.PROCESSING, now, job.attempt)],
            ":job_id": job.job_id,
            ":event_id": job.event_id,
            ":event_type": job.event_type,
            ":user_id": job.user_id,
            ":channel": job.channel.value,
            ":created": created,
            ":gsi1pk": f"USER#{job.user_id}",
            ":gsi1sk": f"{created}#{job.job_id}",
            ":ttl": int(job.created_at.timestamp() + RETENTION.total_seconds()),
        }
        sets = [
            "#s = :processing",
            "lease_token = :token",
            "lease_until = :lease",
            "attempt_n = :attempt",
            "updated_at = :now",
            "history = list_append(if_not_exists(history, :accepted_entry), :entry)",
            "job_id = :job_id",
            "event_id = :event_id",
            "event_type = :event_type",
            "user_id = :user_id",
            "channel = :channel",
            "created_at = if_not_exists(created_at, :created)",
            "gsi1pk = :gsi1pk",
            "gsi1sk = if_not_exists(gsi1sk, :gsi1sk)",
            "#ttl = if_not_exists(#ttl, :ttl)",
        ]
        for name, moment in (("send_after", job.send_after), ("expires_at", job.expires_at)):
            if moment is not None:
                values[f":{name}"] = iso(moment)
                sets.append(f"{name} = :{name}")
        condition = (
            "attribute_not_exists(pk) OR (attempt_n <= :attempt AND "
            "(#s IN (:accepted, :retrying, :scheduled) OR (#s = :processing AND lease_until < :nowts)))"
        )
        if 0 < job.attempt == job.retry_base:
            # A redrive's copy (notify.dlq.replay) takes a FAILED job back; a stray older copy never does.
            values[":failed"] = Status.FAILED.value
            values[":entry"] = [_entry(Status.PROCESSING, now, job.attempt, None, {"redrive": True})]
            condition += " OR (#s = :failed AND attempt_n < :attempt)"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_item({"pk": f"JOB#{job.job_id}", "sk": "JOB"}),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status", "#ttl": "ttl"},
                ExpressionAttributeValues=_values(values),
            )
            return Claim(ClaimOutcome.CLAIMED, token)
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise StoreUnavailable(f"cannot claim job: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"cannot claim job: {exc}") from exc
        return self._contended(job, now, lease_seconds, token)

    def _contended(self, job: NotificationJob, now: datetime, lease_seconds: int, token: str) -> Claim:
        item = self._get({"pk": f"JOB#{job.job_id}", "sk": "JOB"})
        if not item:
            return Claim(ClaimOutcome.DUPLICATE)
        status = Status(item["status"])
        now_ts = int(now.timestamp())
        stale = int(item.get("attempt_n", 0)) > job.attempt
        if status is Status.SENDING and not stale and int(item.get("lease_until", 0)) < now_ts:
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=to_item({"pk": f"JOB#{job.job_id}", "sk": "JOB"}),
                    UpdateExpression="SET lease_token = :token, lease_until = :lease",
                    ConditionExpression="#s = :sending AND lease_token = :old",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=_values(
                        {
                            ":token": token,
                            ":lease": now_ts + lease_seconds,
                            ":sending": Status.SENDING.value,
                            ":old": item.get("lease_token", ""),
                        }
                    ),
                )
                return Claim(ClaimOutcome.ABANDONED, token, status)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise StoreUnavailable(f"cannot claim job: {exc}") from exc
                return Claim(ClaimOutcome.DUPLICATE, current=status)
        if stale:
            # An older copy of a job that has moved on: nothing left to do with it.
            return Claim(ClaimOutcome.DUPLICATE, current=Status.SENT)
        return Claim(ClaimOutcome.DUPLICATE, current=status)

    def transition(
        self,
        job: NotificationJob,
        status: Status,
        now: datetime,
        token: Optional[str],
        *,
        attempt: Optional[int] = None,
        error: Optional[str] = None,
        detail: Optional[dict[str, Any]] = None,
    ) -> bool:
        entry_attempt = job.attempt if attempt is None else attempt
        values: dict[str, Any] = {
            ":s": status.value,
            ":now": iso(now),
            ":entry": [_entry(status, now, job.attempt, error, detail)],
            ":token": token,
        }
        sets = ["#s = :s", "updated_at = :now", "history = list_append(history, :entry)"]
        removes: list[str] = []
        if attempt is not None:
            values[":attempt"] = entry_attempt
            sets.append("attempt_n = :attempt")
        if error is not None:
            values[":error"] = error
            sets.append("last_error = :error")
        for key in ("template_version", "provider_message_id"):
            if detail and key in detail:
                values[f":{key}"] = detail[key]
                sets.append(f"{key} = :{key}")
        if status in RELEASING:
            removes = ["lease_token", "lease_until"]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return conditional(
            f"record {status.value}",
            self._client.update_item,
            TableName=self._table,
            Key=to_item({"pk": f"JOB#{job.job_id}", "sk": "JOB"}),
            UpdateExpression=expression,
            ConditionExpression="lease_token = :token",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_values(values),
        )

    def _get(self, key: Mapping[str, Any]) -> Optional[dict[str, Any]]:
        try:
            resp = self._client.get_item(TableName=self._table, Key=to_item(key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"cannot read: {exc}") from exc
        item = resp.get("Item")
        return from_item(item) if item else None


def _event_sk(event_id: str, page: Optional[int] = None) -> str:
    return f"EVT#{event_id}" if page is None else f"EVT#{event_id}#P{page:06d}"


# DynamoDB items stop at 400 KB; one event's record is at most ~140 KB (1,000 ids of 128 bytes), so a chunk
# closed before it passes 250 KB leaves room for the keys and attributes.
BATCH_ITEM_BYTES = 250_000


def _event_data(record: EventRecord) -> dict[str, Any]:
    data = {k: v for k, v in record.__dict__.items() if v is not None}
    data["channels"] = [c.value for c in record.channels]
    return data


def _batch_item(loc: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """One item holding many events' records as a JSON string: cheap to write, read whole."""
    return to_item(
        {
            "pk": f"EVT#{loc}",
            "sk": f"EVB#{events[0]['event_id']}",
            "kind": "batch",
            "events": json.dumps(events, ensure_ascii=False, separators=(",", ":")),
            "ttl": int(time.time() + RETENTION.total_seconds()),
        }
    )


def _event_item(record: EventRecord) -> dict[str, Any]:
    return {
        "pk": f"EVT#{locator(record.event_id)}",
        "sk": _event_sk(record.event_id, record.page),
        "kind": "event" if record.page is None else "page",
        "event_id": record.event_id,
        "event_type": record.event_type,
        "user_ids": record.user_ids,
        "channels": [c.value for c in record.channels],
        "priority": record.priority,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "send_after": record.send_after,
        "segment_id": record.segment_id,
        "page": record.page,
        "ttl": int(time.time() + RETENTION.total_seconds()),
    }


def _entry(
    status: Status,
    now: datetime,
    attempt: int,
    error: Optional[str] = None,
    detail: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": status.value, "at": iso(now), "attempt": attempt}
    if error is not None:
        entry["error"] = error
    if detail:
        entry["detail"] = detail
    return entry


def _event(item: Mapping[str, Any]) -> EventRecord:
    users = json.loads(item["user_ids_json"]) if "user_ids_json" in item else item.get("user_ids", [])
    return EventRecord(
        event_id=item["event_id"],
        event_type=item["event_type"],
        user_ids=list(users),
        channels=[Channel(c) for c in item.get("channels", [])],
        priority=item["priority"],
        created_at=item["created_at"],
        expires_at=item["expires_at"],
        send_after=item.get("send_after"),
        segment_id=item.get("segment_id"),
        page=int(item["page"]) if item.get("page") is not None else None,
    )


def _job(item: Mapping[str, Any]) -> JobRecord:
    history = [
        Transition(
            status=Status(h["status"]),
            at=h["at"],
            attempt=int(h.get("attempt", 0)),
            error=h.get("error"),
            detail=dict(h.get("detail", {})),
        )
        for h in item.get("history", [])
    ]
    version = item.get("template_version")
    return JobRecord(
        job_id=item["job_id"],
        event_id=item["event_id"],
        event_type=item["event_type"],
        user_id=item["user_id"],
        channel=Channel(item["channel"]),
        status=Status(item["status"]),
        attempt=int(item.get("attempt_n", 0)),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        last_error=item.get("last_error"),
        history=history,
        send_after=item.get("send_after"),
        expires_at=item.get("expires_at"),
        template_version=int(version) if version is not None else None,
        provider_message_id=item.get("provider_message_id"),
    )


class DynamoTemplateStore:
    """Versioned templates: ``TPL#<type>#<channel>#<locale>`` / ``V#<000001>``; the newest wins.

    ``latest`` is cached for ``cache_seconds`` per container, so a worker reads
    each template about once a minute however many jobs it renders.
    """

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 30.0) -> None:
        self._client = client
        self._table = table
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str, str], tuple[float, Optional[Template]]] = {}

    def latest(self, event_type: str, channel: Channel, locale: str) -> Optional[Template]:
        key = (event_type, channel.value, locale)
        hit = self._cache.get(key)
        if hit and time.monotonic() - hit[0] < self._cache_seconds:
            return hit[1]
        items = self._query(_tpl_pk(*key), newest_first=True, limit=1)
        template = items[0] if items else None
        self._cache[key] = (time.monotonic(), template)
        return template

    def version(self, event_type: str, channel: Channel, locale: str, version: int) -> Optional[Template]:
        key = {"pk": _tpl_pk(event_type, channel.value, locale), "sk": f"V#{version:06d}"}
        try:
            resp = self._client.get_item(TableName=self._table, Key=to_item(key))
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"cannot read templates: {exc}") from exc
        item = resp.get("Item")
        return _template(from_item(item)) if item else None

    def versions(self, event_type: str, channel: Channel, locale: str) -> list[Template]:
        return self._query(_tpl_pk(event_type, channel.value, locale), newest_first=True)

    def keys(self) -> list[Template]:
        """The newest version of every key (a scan: the table holds types × channels × locales)."""
        newest: dict[str, Template] = {}
        kwargs: dict[str, Any] = {"TableName": self._table}
        while True:
            try:
                resp = self._client.scan(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"cannot read templates: {exc}") from exc
            for raw in resp.get("Items", []):
                template = _template(from_item(raw))
                current = newest.get(template.template_id)
                if current is None or template.version > current.version:
                    newest[template.template_id] = template
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return sorted(newest.values(), key=lambda t: t.template_id)

    def save(self, template: Template) -> Template:
        """Store ``template`` as the next version of its key."""
        for _ in range(5):
            current = self._query(
                _tpl_pk(template.event_type, template.channel.value, template.locale), newest_first=True, limit=1
            )
            version = (current[0].version if current else 0) + 1
            saved = Template(**{**template.__dict__, "version": version})
            item = {
                "pk": _tpl_pk(template.event_type, template.channel.value, template.locale),
                "sk": f"V#{version:06d}",
                **{k: v for k, v in saved.__dict__.items() if k != "channel"},
                "channel": template.channel.value,
            }
            try:
                self._client.put_item(
                    TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(sk)"
                )
                self._cache.pop((template.event_type, template.channel.value, template.locale), None)
                return saved
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise StoreUnavailable(f"cannot save template: {exc}") from exc
            except BotoCoreError as exc:
                raise StoreUnavailable(f"cannot save template: {exc}") from exc
        raise Conflict("the template changed concurrently; try again")

    def _query(self, pk: str, newest_first: bool, limit: Optional[int] = None) -> list[Template]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
            "ExpressionAttributeValues": _values({":pk": pk, ":v": "V#"}),
            "ScanIndexForward": not newest_first,
        }
        if limit:
            kwargs["Limit"] = limit
        out: list[Template] = []
        while True:
            try:
                resp = self._client.query(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"cannot read templates: {exc}") from exc
            out += [_template(from_item(raw)) for raw in resp.get("Items", [])]
            if limit or "LastEvaluatedKey" not in resp:
                return out
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def _tpl_pk(event_type: str, channel: str, locale: str) -> str:
    return f"TPL#{event_type}#{channel}#{locale}"


def _template(item: Mapping[str, Any]) -> Template:
    return Template(
        event_type=item["event_type"],
        channel=Channel(item["channel"]),
        locale=item["locale"],
        version=int(item["version"]),
        template_id=item["template_id"],
        subject=item.get("subject"),
        body_text=item.get("body_text"),
        body_html=item.get("body_html"),
        title=item.get("title"),
        body=item.get("body"),
        created_at=item.get("created_at", ""),
        deleted=bool(item.get("deleted", False)),
    )


class DynamoApiKeyStore:
    """API keys stored by SHA-256 hash: ``KEY#<hex>`` → name, scopes.

    A valid key's scopes are cached per container for ``cache_seconds`` (as API
    Gateway caches an authorizer's answer), so a disabled key stops working
    within that time; unknown keys are not cached, so a new key works at once.
    """

    def __init__(self, client: DynamoDBClient, table: str, cache_seconds: float = 60.0) -> None:
        self._client = client
        self._table = table
        self._cache: TtlCache[frozenset[str]] = TtlCache(ttl_seconds=cache_seconds, max_items=1000)

    def scopes(self, key_hash: str) -> Optional[frozenset[str]]:
        cached = self._cache.get(key_hash)
        if cached is not None:
            return cached
        found = self._read_scopes(key_hash)
        if found is not None:
            self._cache.put(key_hash, found)
        return found

    def _read_scopes(self, key_hash: str) -> Optional[frozenset[str]]:
        try:
            resp = self._client.get_item(TableName=self._table, Key=to_item({"pk": f"KEY#{key_hash}"}))
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"cannot read API keys: {exc}") from exc
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        if data.get("disabled"):
            return None
        return frozenset(data.get("scopes", []))

    def put(self, key_hash: str, name: str, scopes: Sequence[str], created_at: str) -> None:
        item = {"pk": f"KEY#{key_hash}", "name": name, "scopes": list(scopes), "created_at": created_at}
        try:
            self._client.put_item(TableName=self._table, Item=to_item(item))
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"cannot store API key: {exc}") from exc

"""Item helpers every DynamoDB store shares: (de)serialising items, one way to call, one way to write conditionally,
one way to read every page of a Query."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from notify.adapters.aws import error_code
from notify.errors import StoreUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ser = TypeSerializer()
_de = TypeDeserializer()
CONDITION_FAILED = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException"})


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item from plain data; ``None`` attributes are left out."""
    return {k: _ser.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain data from a DynamoDB item (numbers as int or float, not Decimal)."""
    return {k: _plain(_de.deserialize(v)) for k, v in item.items()}


def expression_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """``ExpressionAttributeValues`` from plain data (``None`` kept, as NULL)."""
    return {k: _ser.serialize(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal: make them int or float again, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value


def call(what: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    """Call a DynamoDB API and return its answer; any failure is StoreUnavailable ("cannot <what>: …")."""
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


def conditional(what: str, method: Callable[..., Any], **kwargs: Any) -> bool:
    """A conditional write (or transaction): True if it applied, False if its condition failed.

    Every other failure is StoreUnavailable. This is the only place a condition failure is read, so every store
    says "someone else got there first" the same way.
    """
    try:
        method(**kwargs)
        return True
    except ClientError as exc:
        if error_code(exc) in CONDITION_FAILED:
            return False
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


def conditional_update(what: str, client: DynamoDBClient, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """A conditional UpdateItem: ``(True, what it returned)`` if it applied (the ``ReturnValues`` asked for, else
    ``{}``), else ``(False, the item as it stood)`` (``{}``: no item), so the caller can tell which part of the
    condition failed without another read.

    Every other failure is StoreUnavailable, as for :func:`conditional`.
    """
    try:
        resp = client.update_item(**kwargs, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        returned = resp.get("Attributes")
        return True, from_item(returned) if isinstance(returned, dict) else {}
    except ClientError as exc:
        if error_code(exc) in CONDITION_FAILED:
            item = exc.response.get("Item")  # type: ignore[attr-defined]
            return False, from_item(item) if isinstance(item, dict) else {}
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


def transact(what: str, client: DynamoDBClient, actions: list[dict[str, Any]]) -> Optional[list[str]]:
    """TransactWriteItems: None if it applied, else each action's cancellation reason code ("None" for the actions
    that were not to blame; ``TransactionConflict`` when another write to one of its items was under way). Any other
    failure is StoreUnavailable."""
    try:
        client.transact_write_items(TransactItems=actions)  # type: ignore[arg-type]
        return None
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise StoreUnavailable(f"cannot {what}: {exc}") from exc
        reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
        return reasons + ["None"] * (len(actions) - len(reasons))
    except BotoCoreError as exc:
        raise StoreUnavailable(f"cannot {what}: {exc}") from exc


def query_all(what: str, client: DynamoDBClient, *, limit: Optional[int] = None, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a Query finds (plain data), page after page; with ``limit``, at most that many, each page asking
    only for the items still missing (1,000 at the most)."""
    found: list[dict[str, Any]] = []
    while limit is None or len(found) < limit:
        if limit is not None:
            kwargs["Limit"] = min(1000, limit - len(found))
        resp = call(what, client.query, **kwargs)
        found += [from_item(raw) for raw in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            break
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
    return found


def batch_write(client: DynamoDBClient, table: str, requests: Sequence[dict[str, Any]], what: str) -> None:
    """BatchWriteItem in chunks of 25, retrying unprocessed items with backoff; StoreUnavailable if some remain."""
    for i in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: list(requests[i : i + 25])}
        for attempt in range(8):
            resp = call(what, client.batch_write_item, RequestItems=pending)
            pending = dict(resp.get("UnprocessedItems") or {})
            if not pending:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))
        if pending:
            raise StoreUnavailable(f"cannot {what}: DynamoDB left items unprocessed")

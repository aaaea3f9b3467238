"""API keys by hash (ApiKeysTable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from notify.adapters.dynamodb.items import call, from_item, to_item
from notify.resilience import TtlCache

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
        """A GetItem on ``KEY#<hash>``, cached per container; a disabled or unknown key is None (and not cached)."""
        cached = self._cache.get(key_hash)
        if cached is not None:
            return cached
        found = self._read_scopes(key_hash)
        if found is not None:
            self._cache.put(key_hash, found)
        return found

    def _read_scopes(self, key_hash: str) -> Optional[frozenset[str]]:
        resp = call(
            "read API keys", self._client.get_item, TableName=self._table, Key=to_item({"pk": f"KEY#{key_hash}"})
        )
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        if data.get("disabled"):
            return None
        return frozenset(data.get("scopes", []))

    def put(self, key_hash: str, name: str, scopes: Sequence[str], created_at: str) -> None:
        """Store a key's hash with its name and scopes (``make api-key``); the key itself is never stored."""
        item = {"pk": f"KEY#{key_hash}", "name": name, "scopes": list(scopes), "created_at": created_at}
        call("store API key", self._client.put_item, TableName=self._table, Item=to_item(item))

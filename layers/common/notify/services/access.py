"""API keys: stored as SHA-256 hashes, each with scopes."""

from __future__ import annotations

import hashlib
import secrets
from typing import Optional

from notify.errors import Forbidden, Unauthorized
from notify.ports import ApiKeyLookup

SCOPES = (
    "events:write",
    "notifications:read",
    "templates:read",
    "templates:write",
    "campaigns:read",
    "campaigns:write",
    "preferences:read",
    "preferences:write",
    "users:token",  # issue user tokens (POST /api/v1/users/{user_id}/tokens) for the in-app inbox and WebSocket
    "links:write",  # make short links (POST /api/v1/links) and read the ones the key made
    "webhooks:read",  # list status webhook endpoints and their deliveries (never their secrets)
    "webhooks:write",  # create, change, delete, test them and rotate their secrets
    "admin",
)


def hash_key(key: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh random API key."""
    return "nk_" + secrets.token_urlsafe(32)


def authorize(store: ApiKeyLookup, key: Optional[str], scope: str) -> frozenset[str]:
    """The key's scopes if it may use ``scope``; Unauthorized or Forbidden otherwise."""
    if not key:
        raise Unauthorized("missing X-API-Key header")
    scopes = store.scopes(hash_key(key))
    if scopes is None:
        raise Unauthorized("invalid API key")
    if scope not in scopes and "admin" not in scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")
    return scopes

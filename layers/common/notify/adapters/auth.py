"""The Auth service over HTTP: timeouts, a bounded retry, a circuit breaker and a short cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Optional

import httpx

from notify.errors import NotFound, PermanentError, TransientError
from notify.ports import SegmentPage, UserProfile
from notify.resilience import CircuitBreaker, TtlCache


class HttpUserDirectory:
    def __init__(
        self,
        client: httpx.Client,
        breaker: Optional[CircuitBreaker] = None,
        cache: Optional[TtlCache[UserProfile]] = None,
        attempts: int = 2,
        backoff_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._breaker = breaker or CircuitBreaker("auth")
        self._cache = cache if cache is not None else TtlCache(ttl_seconds=60)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def build(cls, base_url: str, token: str, timeout_seconds: float = 2.0) -> HttpUserDirectory:
        """A directory with its own pooled client."""
        client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"} if token else {},
            timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        return cls(client)

    def get_user(self, user_id: str) -> UserProfile:
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        # Single flight: concurrent lookups of one user in a batch make one request.
        with self._locks_guard:
            lock = self._locks.setdefault(user_id, threading.Lock())
        try:
            with lock:
                cached = self._cache.get(user_id)
                if cached is not None:
                    return cached
                return self._fetch(user_id)
        finally:
            with self._locks_guard:
                self._locks.pop(user_id, None)

    def _fetch(self, user_id: str) -> UserProfile:
        data = self._request(f"/api/v1/users/{user_id}", None, f"user {user_id}")
        profile = _profile(data)
        self._cache.put(user_id, profile)
        return profile

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        """One page of a dynamic segment; each profile warms the cache the worker reads next."""
        params: dict[str, Any] = {"segment": segment_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._request("/api/v1/users", params, f"segment {segment_id}")
        profiles = [_profile(item) for item in data.get("items", [])]
        for profile in profiles:
            self._cache.put(profile.id, profile)
        return SegmentPage([p.id for p in profiles], data.get("next_cursor") or None)

    def _request(self, path: str, params: Optional[dict[str, Any]], what: str) -> dict[str, Any]:
        """GET with the breaker, bounded retries of transient failures, and domain errors for the rest."""
        self._breaker.before()
        last: Exception = TransientError("no attempt made")
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff * (2 ** (attempt - 1)))
            try:
                resp = self._client.get(path, params=params)
            except httpx.HTTPError as exc:
                last = TransientError(f"Auth service unreachable: {exc!r}")
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = TransientError(f"Auth service answered {resp.status_code}")
                continue
            self._breaker.success()
            if resp.status_code == 404:
                raise NotFound(f"{what} not found")
            if resp.status_code != 200:
                raise PermanentError(f"Auth service answered {resp.status_code} for {what}")
            return dict(resp.json())
        self._breaker.failure()
        raise last


def _profile(data: dict[str, Any]) -> UserProfile:
    return UserProfile(
        id=str(data["id"]),
        email=data.get("email"),
        phone=data.get("phone"),
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        locale=data.get("locale"),
        timezone=data.get("timezone"),
        push_endpoints=tuple(data.get("push_endpoints") or ()),
    )

"""The Auth service over HTTP: timeouts, a bounded retry, a circuit breaker and a short cache."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, Optional
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from notify.errors import NotFound, PermanentError, TransientError
from notify.models import DOT_SEGMENTS, UserId
from notify.records import SegmentPage, UserProfile
from notify.resilience import CircuitBreaker, TtlCache

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1024 * 1024  # a profile or a page of 500 is a few hundred KB at most
USERS_PATH = "/api/v1/users"


class AuthUser(BaseModel):
    """A user as the Auth service must describe them; anything else is the peer's error, not ours."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: UserId
    email: Optional[str] = Field(default=None, max_length=320)
    phone: Optional[str] = Field(default=None, max_length=64)
    first_name: Optional[str] = Field(default=None, max_length=200)
    last_name: Optional[str] = Field(default=None, max_length=200)
    locale: Optional[str] = Field(default=None, max_length=35)
    timezone: Optional[str] = Field(default=None, max_length=64)
    push_endpoints: list[str] = Field(default_factory=list, max_length=20)


class AuthPage(BaseModel):
    """A page of segment members as the Auth service answers it; each item is validated on its own, later."""

    model_config = ConfigDict(extra="ignore")

    items: list[Any] = Field(max_length=10_000)
    next_cursor: Optional[str] = Field(default=None, max_length=4096)


class _BearerToken(httpx.Auth):
    """``Authorization: Bearer <token>`` with the token its source holds now."""

    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token()}"
        yield request


class HttpUserDirectory:
    """The Auth service over HTTP: the user directory, and the source of dynamic segments.

    Every request passes a circuit breaker and is retried (``attempts`` in all, exponential backoff) when there
    is no connection or the answer is 429 or 5xx. Profiles are cached (60 s unless another cache is given), and
    every page of a segment warms the cache for the lookups that follow it.
    """

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
    def build(
        cls, base_url: str, token: Optional[Callable[[], str]] = None, timeout_seconds: float = 2.0
    ) -> HttpUserDirectory:
        """A directory with its own pooled client; ``token`` gives the current service token (read per request,
        so a rotated token is picked up as soon as its source returns it), none for an Auth service without one."""
        client = httpx.Client(
            base_url=base_url,
            headers={"Accept": "application/json"},
            auth=_BearerToken(token) if token is not None else None,
            timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        return cls(client)

    def get_user(self, user_id: str) -> UserProfile:
        """``GET /api/v1/users/{id}`` (the id escaped as one path segment), unless the cache holds the profile.

        Concurrent lookups of one user share one request. 404 is NotFound; no connection, 429 and 5xx are
        TransientError once the retries are spent (CircuitOpen while the breaker is open); any other status, an
        answer over 1 MiB, not a JSON object, not a valid profile, or the profile of another user is PermanentError.
        """
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
        data = self._request(_user_path(user_id), None, f"user {user_id}")
        user = _user(data, f"user {user_id}")
        if user.id != user_id:
            raise PermanentError(f"the Auth service answered user {user.id!r} for user {user_id!r}")
        profile = _profile(user)
        self._cache.put(user_id, profile)
        return profile

    def page(self, segment_id: str, cursor: Optional[str], limit: int) -> SegmentPage:
        """One page of a dynamic segment; each profile warms the cache the worker reads next.

        Members the Auth service describes wrongly (no id, an id over 128 bytes...) cannot be reached: they are
        left out of the page and logged, so one bad entry does not stop the segment.
        """
        params: dict[str, Any] = {"segment": segment_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        data = self._request(USERS_PATH, params, f"segment {segment_id}")
        try:
            page = AuthPage.model_validate(data)
        except ValidationError as exc:
            raise PermanentError(f"the Auth service answered an invalid page of segment {segment_id}: {exc}") from None
        profiles = []
        for item in page.items:
            try:
                profiles.append(_profile(AuthUser.model_validate(item)))
            except ValidationError as exc:
                log.warning("segment %s: skipped a member the Auth service described wrongly: %s", segment_id, exc)
        for profile in profiles:
            self._cache.put(profile.id, profile)
        return SegmentPage([p.id for p in profiles], page.next_cursor or None)

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
            return _json_object(resp, what)
        self._breaker.failure()
        raise last


def _user_path(user_id: str) -> str:
    """``/api/v1/users/{id}`` with the id as one path segment, whatever it holds ("../admin?x=1" stays
    ``/api/v1/users/..%2Fadmin%3Fx%3D1``); the service's token goes nowhere else.

    ``.`` and ``..`` are PermanentError, never sent: escaping leaves dots alone, and every URL parser (httpx's,
    and any proxy's in front of the Auth service, even from ``%2E%2E``) reads them as steps up the path, to
    ``/api/v1/users`` or ``/api/v1``. The path is checked once built, as httpx will send it.
    """
    if user_id in DOT_SEGMENTS:
        raise PermanentError(f"{user_id!r} is no user id: a URL reads it as a path step, so it is never sent to Auth")
    path = f"{USERS_PATH}/{quote(user_id, safe='')}"
    sent = httpx.URL(path).raw_path.decode("ascii")
    if sent != path or sent.count("/") != USERS_PATH.count("/") + 1:
        raise PermanentError(f"user {user_id!r} would not be one segment below {USERS_PATH}/ ({sent})")
    return path


def _json_object(resp: httpx.Response, what: str) -> dict[str, Any]:
    """The answer as a JSON object, or PermanentError saying what the Auth service got wrong."""
    if len(resp.content) > MAX_ANSWER_BYTES:
        raise PermanentError(f"the Auth service answered {len(resp.content)} bytes for {what}")
    try:
        data = resp.json()
    except (ValueError, RecursionError):
        raise PermanentError(f"the Auth service answered something that is not JSON for {what}") from None
    if not isinstance(data, dict):
        raise PermanentError(f"the Auth service answered a JSON {type(data).__name__}, not an object, for {what}")
    return data


def _user(data: dict[str, Any], what: str) -> AuthUser:
    try:
        return AuthUser.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise PermanentError(f"the Auth service answered an invalid profile for {what}: {errors}") from None


def _profile(user: AuthUser) -> UserProfile:
    return UserProfile(
        id=user.id,
        email=user.email,
        phone=user.phone,
        first_name=user.first_name,
        last_name=user.last_name,
        locale=user.locale,
        timezone=user.timezone,
        push_endpoints=tuple(user.push_endpoints),
    )

from __future__ import annotations

import pytest
from notify.errors import TransientError
from notify.resilience import CircuitBreaker, TtlCache
from notify.settings import ApiSettings, SettingsError, WorkerSettings, env_names, load
from pydantic import ValidationError

WORKER_ENV = {
    "NOTIFICATIONS_TABLE": "n",
    "TEMPLATES_TABLE": "t",
    "CAMPAIGNS_TABLE": "c",
    "DELAY_QUEUE_URL": "http://q/delay",
    "DLQ_URL": "http://q/dlq",
    "AUTH_API_URL": "http://auth",
    "SENDER_EMAIL": "from@example.com",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_TOPIC": "notification-jobs",
    "INBOX_TABLE": "i",
    "CONNECTIONS_TABLE": "w",
}


def test_settings_load_and_are_frozen() -> None:
    settings = load(WorkerSettings, {**WORKER_ENV, "WORKER_CONCURRENCY": "4", "PUBLIC_API_URL": ""})
    assert settings.worker_concurrency == 4
    assert settings.public_api_url is None
    with pytest.raises(ValidationError):
        settings.sender_email = "x"  # type: ignore[misc]


def test_missing_settings_are_all_listed() -> None:
    with pytest.raises(SettingsError) as info:
        load(ApiSettings, {"KAFKA_TOPIC": "t"})
    message = str(info.value)
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "IDEMPOTENCY_TABLE", "API_KEYS_TABLE", "DLQ_URL"):
        assert name in message
    assert "KAFKA_TOPIC" not in message


def test_env_names_are_the_aliases() -> None:
    assert {"AUTH_API_URL", "SENDER_EMAIL", "NOTIFICATIONS_TABLE"} <= env_names(WorkerSettings)


def test_breaker_opens_after_threshold_and_half_opens_after_reset() -> None:
    now = [0.0]
    breaker = CircuitBreaker("auth", threshold=2, reset_seconds=10, monotonic=lambda: now[0])
    breaker.failure()
    breaker.before()
    breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(TransientError):
        breaker.before()
    now[0] = 10.0
    assert breaker.state == "half-open"
    breaker.before()
    breaker.success()
    assert breaker.state == "closed"


def test_ttl_cache_expires_and_evicts() -> None:
    now = [0.0]
    cache: TtlCache[int] = TtlCache(ttl_seconds=5, max_items=2, monotonic=lambda: now[0])
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("c", 3)
    assert cache.get("a") is None
    assert cache.get("c") == 3
    now[0] = 6.0
    assert cache.get("c") is None


def test_a_ttl_cache_update_changes_a_live_value_and_keeps_its_age() -> None:
    now = [0.0]
    cache: TtlCache[int] = TtlCache(ttl_seconds=5, monotonic=lambda: now[0])
    cache.put("a", 1)
    now[0] = 4.0
    cache.update("a", lambda v: v + 1)
    cache.update("missing", lambda v: v + 1)
    assert cache.get("a") == 2 and cache.get("missing") is None
    now[0] = 5.5  # 5.5 s after the read, though 1.5 s after the update
    assert cache.get("a") is None
    cache.update("a", lambda v: v + 1)
    assert cache.get("a") is None

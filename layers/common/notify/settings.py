"""Configuration: loaded once per container into frozen models, from the variables template.yaml sets.

The only module of the package that reads ``os.environ``. A missing or bad
variable fails at cold start with every problem listed, not deep in a request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=False, extra="ignore")


# The one parameter that signed every kind of token until each got its own key list (docs/OPERATIONS.md).
RETIRED_KEY_VARIABLE = "SIGNING_KEY_PARAMETER"


class _KeyLists(_Settings):
    """The SSM SecureStrings holding the key lists a function signs or verifies with: user tokens, page cursors,
    one-click unsubscribe links and short links' codes each have their own (``notify.signing``, ``notify.links``).
    A function names only those it uses, and no two purposes may name one parameter: one key for all is what they
    replace."""

    @model_validator(mode="before")
    @classmethod
    def _not_the_retired_parameter(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and RETIRED_KEY_VARIABLE in data:
            raise ValueError(
                f"{RETIRED_KEY_VARIABLE} is no longer read: user tokens, cursors and unsubscribe links each have "
                "their own key list (USER_TOKEN_KEYS_PARAMETER, CURSOR_KEYS_PARAMETER, UNSUBSCRIBE_KEYS_PARAMETER); "
                "see docs/OPERATIONS.md, moving from one signing key"
            )
        return data

    @model_validator(mode="after")
    def _one_parameter_per_purpose(self) -> _KeyLists:
        named = [v for k, v in self.__dict__.items() if k.endswith("_keys_parameter") and v]
        if len(set(named)) != len(named):
            raise ValueError(f"one SSM parameter holds the keys of two purposes ({', '.join(sorted(named))})")
        return self


class StoreSettings(_Settings):
    """The tables and queues every function uses."""

    notifications_table: str = Field(alias="NOTIFICATIONS_TABLE")
    templates_table: str = Field(alias="TEMPLATES_TABLE")
    campaigns_table: str = Field(alias="CAMPAIGNS_TABLE")
    delay_queue_url: str = Field(alias="DELAY_QUEUE_URL")
    dlq_url: str = Field(alias="DLQ_URL")


KafkaAuth = Literal["none", "tls", "iam", "scram-sha-256", "scram-sha-512", "mtls"]
# The authentications whose credentials are in a Secrets Manager secret (KAFKA_SECRET_ARN).
KAFKA_SECRET_AUTHS = ("scram-sha-256", "scram-sha-512", "mtls")


# How jobs travel from the API, the scheduler and fan-out to the worker (docs/ARCHITECTURE.md#transport): the Kafka
# topic, or the SQS jobs queue.
Transport = Literal["kafka", "sqs"]


class KafkaSettings(_Settings):
    """The jobs' transport: ``TRANSPORT`` kafka (the default: brokers, topic, authentication and the publish
    timeout) or sqs (``JOBS_QUEUE_URL``, the jobs queue; no Kafka variable is needed or checked).

    ``kafka_auth``: none (PLAINTEXT), tls (SSL, no client identity), iam (MSK IAM over SASL_SSL), scram-sha-256 /
    scram-sha-512 (SASL_SSL with the username and password of ``KAFKA_SECRET_ARN``) or mtls (SSL with the client
    certificate and key of ``KAFKA_SECRET_ARN``). ``KAFKA_ROOT_CA_SECRET_ARN``: the brokers' CA for a private one
    (otherwise the system's trust store verifies them). The secrets are those the event source mapping reads, in
    the formats Lambda's SourceAccessConfigurations expect (docs/DEPLOY.md#kafka-authentication).
    """

    # First: the fields after it are checked against it (a field validator sees the fields defined before it).
    transport: Transport = Field(default="kafka", alias="TRANSPORT")
    jobs_queue_url: Optional[str] = Field(default=None, alias="JOBS_QUEUE_URL", validate_default=True)
    # Required with TRANSPORT kafka (below); Optional only so that the sqs transport needs neither.
    kafka_bootstrap_servers: Optional[str] = Field(default=None, alias="KAFKA_BOOTSTRAP_SERVERS", validate_default=True)
    kafka_topic: Optional[str] = Field(default=None, alias="KAFKA_TOPIC", validate_default=True)
    kafka_auth: KafkaAuth = Field(default="none", alias="KAFKA_AUTH")
    kafka_secret_arn: Optional[str] = Field(default=None, alias="KAFKA_SECRET_ARN")
    kafka_root_ca_secret_arn: Optional[str] = Field(default=None, alias="KAFKA_ROOT_CA_SECRET_ARN")
    kafka_timeout_seconds: float = Field(default=5.0, gt=0, le=60, alias="KAFKA_TIMEOUT_SECONDS")
    region: Optional[str] = Field(default=None, alias="AWS_REGION")

    @field_validator("jobs_queue_url", "kafka_bootstrap_servers", "kafka_topic")
    @classmethod
    def _required_by_the_transport(cls, value: Optional[str], info: ValidationInfo) -> Optional[str]:
        """A missing variable the transport needs is "Field required", reported with every other problem (a model
        validator would run only once all the fields were valid). An invalid TRANSPORT is its own error."""
        needs = {"kafka": ("kafka_bootstrap_servers", "kafka_topic"), "sqs": ("jobs_queue_url",)}
        transport = info.data.get("transport")
        if value is None and transport is not None and info.field_name in needs[transport]:
            if transport == "sqs":
                raise PydanticCustomError("missing", "Field required (TRANSPORT sqs publishes the jobs to this queue)")
            raise PydanticCustomError("missing", "Field required")
        return value

    @model_validator(mode="after")
    def _secrets_match_the_auth(self) -> KafkaSettings:
        if self.transport != "kafka":  # nothing of Kafka is read
            return self
        if self.kafka_auth in KAFKA_SECRET_AUTHS and not self.kafka_secret_arn:
            raise ValueError(
                f"KAFKA_AUTH {self.kafka_auth} needs KAFKA_SECRET_ARN, the Secrets Manager secret with its credentials"
            )
        if self.kafka_secret_arn and self.kafka_auth not in KAFKA_SECRET_AUTHS:
            raise ValueError(
                f"KAFKA_SECRET_ARN is for KAFKA_AUTH {', '.join(KAFKA_SECRET_AUTHS)}, not {self.kafka_auth}"
            )
        if self.kafka_root_ca_secret_arn and self.kafka_auth in ("none", "iam"):
            raise ValueError(f"KAFKA_ROOT_CA_SECRET_ARN verifies TLS brokers; KAFKA_AUTH {self.kafka_auth} takes none")
        return self


class InAppSettings(_Settings):
    """The in-app channel: the inbox and connections tables, the WebSocket API's management endpoint and the most
    live connections a user may have.

    ``WEBSOCKET_ENDPOINT`` is the URL ``PostToConnection`` is called on (``https://{api}.execute-api.{region}.
    amazonaws.com/{stage}`` on AWS, the local gateway's on the local stack); unset, nothing is pushed and items
    only wait in the inbox.
    """

    inbox_table: str = Field(alias="INBOX_TABLE")
    connections_table: str = Field(alias="CONNECTIONS_TABLE")
    websocket_endpoint: Optional[str] = Field(default=None, alias="WEBSOCKET_ENDPOINT")
    # Live connections a user may have: $connect closes the oldest beyond it, and a read of a user's connections
    # (each notification, each inbox change) reads at most this many records (docs/INBOX.md).
    max_connections_per_user: int = Field(default=10, ge=1, le=100, alias="MAX_CONNECTIONS_PER_USER")


class WebhookSettings(_Settings):
    """Status webhooks' destinations (docs/WEBHOOKS.md): https to public addresses only. The local stack alone turns
    on ``WEBHOOK_ALLOW_HTTP_LOOPBACK``, so its demo receiver on ``http://127.0.0.1`` can be registered and called."""

    webhook_allow_http_loopback: bool = Field(default=False, alias="WEBHOOK_ALLOW_HTTP_LOOPBACK")


class WebhookCacheSettings(_Settings):
    """How long the functions that emit status webhooks keep the endpoints they read (the template sets
    PreferencesCacheSeconds): a new or changed endpoint applies to changes from at most that long after."""

    webhook_cache_seconds: float = Field(default=30, ge=0, le=300, alias="WEBHOOK_CACHE_SECONDS")


class ApiSettings(StoreSettings, KafkaSettings, InAppSettings, _KeyLists, WebhookSettings, WebhookCacheSettings):
    """The API function's: the stores and Kafka, plus the idempotency and API key tables, the inbox and the three
    key lists (it issues and checks user tokens and cursors, and reads unsubscribe links)."""

    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    user_token_keys_parameter: str = Field(alias="USER_TOKEN_KEYS_PARAMETER")
    cursor_keys_parameter: str = Field(alias="CURSOR_KEYS_PARAMETER")
    unsubscribe_keys_parameter: str = Field(alias="UNSUBSCRIBE_KEYS_PARAMETER")
    api_keys_table: str = Field(alias="API_KEYS_TABLE")
    # How long a user token lasts unless the request asks for less (docs/INBOX.md).
    user_token_seconds: int = Field(default=3600, ge=60, le=86400, alias="USER_TOKEN_SECONDS")
    # The local stack's dev-only POST /dev/users/{user_id}/tokens (no API key): never on in a deployed stack.
    dev_user_tokens: bool = Field(default=False, alias="DEV_USER_TOKENS")
    # The origins whose pages it answers (comma-separated; the local stack sets its own): a browser's request from
    # any other page is refused, one without an Origin (curl) is not.
    dev_user_token_origins: str = Field(default="", alias="DEV_USER_TOKEN_ORIGINS")
    # Short links: GET /l/{code} follows them and counts clicks, POST /api/v1/links makes them (docs/API.md). No
    # base: https:// and the host a request came to (the HTTP API's execute-api domain).
    links_table: str = Field(alias="LINKS_TABLE")
    short_link_base: Optional[str] = Field(default=None, alias="SHORT_LINK_BASE")


class WorkerSettings(StoreSettings, KafkaSettings, InAppSettings, _KeyLists, WebhookSettings, WebhookCacheSettings):
    """The worker's: the stores and Kafka, plus the Auth service, sender, concurrency, fan-out page size, send rate."""

    auth_api_url: str = Field(alias="AUTH_API_URL")
    # The SSM SecureString holding the Auth service token (read through Powertools' parameters utility, cached
    # 5 minutes); unset: the Auth service is called without a token.
    auth_api_token_parameter: Optional[str] = Field(default=None, alias="AUTH_API_TOKEN_PARAMETER")
    sender_email: str = Field(alias="SENDER_EMAIL")
    # One-click unsubscribe links: the API's public URL (links are <url>/u/<token>) and their key list.
    public_api_url: Optional[str] = Field(default=None, alias="PUBLIC_API_URL")
    unsubscribe_keys_parameter: Optional[str] = Field(default=None, alias="UNSUBSCRIBE_KEYS_PARAMETER")
    # Short links ({{ url | short }}): <SHORT_LINK_BASE>/l/<code>, the code derived under their own key list, the link
    # stored in LINKS_TABLE. Unset: ``short`` leaves URLs as they are.
    short_link_base: Optional[str] = Field(default=None, alias="SHORT_LINK_BASE")
    short_link_keys_parameter: Optional[str] = Field(default=None, alias="SHORT_LINK_KEYS_PARAMETER")
    links_table: Optional[str] = Field(default=None, alias="LINKS_TABLE")
    # SES publishes the events of sends made through it (delivery, bounce, complaint) to the feedback function.
    ses_configuration_set: Optional[str] = Field(default=None, alias="SES_CONFIGURATION_SET")
    # Account mail's: it publishes the same events but no Open or Click, so SES tracks nothing in those emails.
    ses_untracked_configuration_set: Optional[str] = Field(default=None, alias="SES_UNTRACKED_CONFIGURATION_SET")
    worker_concurrency: int = Field(default=16, ge=1, le=128, alias="WORKER_CONCURRENCY")
    preferences_cache_seconds: float = Field(default=30, ge=0, le=300, alias="PREFERENCES_CACHE_SECONDS")
    fanout_page_size: int = Field(default=500, ge=1, le=1000, alias="FANOUT_PAGE_SIZE")
    # How long an in-app notification stays in the inbox (DynamoDB's TTL deletes it after).
    inbox_retention_days: int = Field(default=90, ge=1, le=3650, alias="INBOX_RETENTION_DAYS")
    # Emails a second one worker container may send (a token bucket shared by its delivery threads). The account's
    # SES maximum send rate is account- and region-specific (see the SES console or GetAccount); the account sees
    # this rate times the worker's concurrent containers, so set it to the account's rate divided by the worker's
    # ReservedConcurrentExecutions.
    ses_max_send_rate: float = Field(default=14.0, gt=0, le=10000, alias="SES_MAX_SEND_RATE")


class SchedulerSettings(StoreSettings, KafkaSettings):
    """The scheduler reads campaigns and ingests their runs like the API does."""


class FeedbackSettings(StoreSettings, KafkaSettings, WebhookCacheSettings):
    """The feedback function's: the stores (it writes job feedback and preferences to NotificationsTable)."""


class WebSocketSettings(InAppSettings, _KeyLists):
    """The WebSocket function's ($connect, $disconnect, $default): the in-app tables and the user tokens' key list,
    which each handshake's token is checked with."""

    user_token_keys_parameter: str = Field(alias="USER_TOKEN_KEYS_PARAMETER")


class SettingsError(RuntimeError):
    """The environment does not configure this function; lists every problem."""


S = TypeVar("S", bound=_Settings)


def load(model: type[S], environ: Optional[Mapping[str, str]] = None) -> S:
    """Build ``model`` from the environment (empty strings count as unset)."""
    env = os.environ if environ is None else environ
    data = {k: v for k, v in env.items() if v != ""}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = "; ".join(f"{_where(model, e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors)
        raise SettingsError(f"{model.__name__} is not configured: {problems}") from None


def _where(model: type[_Settings], loc: tuple[int | str, ...]) -> str:
    """An error's location, a field by its variable: pydantic names a field the input left out by its field name
    when a validator of its default refused it (one the transport needs)."""
    first = model.model_fields.get(str(loc[0]))
    head = first.alias if first is not None and first.alias else str(loc[0])
    return ".".join([head, *map(str, loc[1:])])


def env_names(model: type[_Settings]) -> set[str]:
    """The environment variables ``model`` reads (for the template contract test)."""
    return {f.alias for f in model.model_fields.values() if f.alias}

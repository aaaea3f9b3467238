"""The whole local stack as one object: peers, resources from template.yaml, and the handlers wired to them."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import boto3

from local.auth_service import AuthService
from local.cfn import ROOT, SqsSource, Template, template
from local.container import ContainerFunction
from local.events import ACCOUNT, REGION
from local.gateway import Cors, Gateway
from local.http_api import http_api
from local.infra import (
    STATE_FILE,
    Infra,
    StackState,
    create_resources,
    create_topic,
    function_environments,
    local_environment,
    merged_environment,
    own_origins,
    put_secret,
    queue_url,
    resolve,
    verify_sender,
)
from local.invoke import AWS_ENV, Function
from local.mappings import Invocable, KafkaMapping, KafkaWiring, Schedule, SqsMapping, rate_seconds
from local.processes import Process, free_port, moto_process, tansu_process
from local.provider_faults import ProviderFaults
from local.ses_simulator import MailboxSimulator, published_events
from local.webhook_receiver import WebhookReceiver
from local.ws_gateway import WebSocketGateway

log = logging.getLogger("local.stack")

# The demo inbox page and its assets, served by the local HTTP gateway at /demo/ (docs/INBOX.md).
DEMO = ROOT / "local" / "demo"
# The template's Transport values (template.yaml checks it too: parameters() refuses a value it does not allow).
TRANSPORTS = ("kafka", "sqs")
# Its DrainTransport values: none, or the transport being left, whose event source stays until it is drained.
DRAIN_TRANSPORTS = ("none", *TRANSPORTS)


def parameter_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """PARAMETER_OVERRIDES' template parameter values, as `sam deploy --parameter-overrides` takes them."""
    return dict(pair.partition("=")[::2] for pair in shlex.split(env.get("PARAMETER_OVERRIDES", "")))


def transports(env: Mapping[str, str]) -> tuple[str, str]:
    """The Transport and DrainTransport ``env`` gives `make local`: TRANSPORT and DRAIN_TRANSPORT, else
    PARAMETER_OVERRIDES' Transport and DrainTransport, else kafka and none. ValueError when the two ways disagree
    (whether the values are allowed is Config's to say)."""
    overrides = parameter_overrides(env)
    transport = env.get("TRANSPORT") or overrides.get("Transport") or "kafka"
    if overrides.get("Transport", transport) != transport:
        raise ValueError(f"TRANSPORT={transport} and PARAMETER_OVERRIDES Transport={overrides['Transport']}")
    drain = env.get("DRAIN_TRANSPORT") or overrides.get("DrainTransport") or "none"
    if overrides.get("DrainTransport", drain) != drain:
        raise ValueError(
            f"DRAIN_TRANSPORT={drain} and PARAMETER_OVERRIDES DrainTransport={overrides['DrainTransport']}"
        )
    return transport, drain


@dataclass
class Config:
    api_port: int = 3000
    moto_port: int = 4566
    kafka_port: int = 9092
    auth_port: int = 3001
    ws_port: int = 3002  # the WebSocket API and its management API (/@connections)
    webhook_receiver_port: int = 3003  # the demo receiver of status webhooks (local/webhook_receiver.py)
    webhook_receiver_messages: int = 200  # the messages it keeps (the chaos run keeps them all)
    # How jobs travel to the worker, the template's Transport: kafka (Tansu, or kafka_bootstrap) or sqs (the
    # template's jobs queue in moto, delivered by its event source mapping; no Kafka at all).
    transport: str = "kafka"
    # The template's DrainTransport: none, or the transport being left (never ``transport``), which the worker's
    # event source mapping still reads while nothing publishes to it (docs/DEPLOY.md#transport). kafka runs Tansu.
    drain_transport: str = "none"
    kafka_bootstrap: Optional[str] = None  # an existing Kafka instead of starting Tansu
    kafka_mode: Optional[str] = None  # the template's KafkaMode (msk | self-managed); its default if None
    kafka_storage: str = "memory"  # Tansu's log: memory, or s3 (a bucket in moto: survives a broker restart)
    # An authenticated Kafka at kafka_bootstrap (docs/DEPLOY.md#kafka-authentication): its KafkaAuth, the JSON of
    # its KafkaSecretArn secret and its brokers' CA chain in PEM, which the stack stores in moto's Secrets Manager
    # as an operator stores them in AWS; the functions and the Kafka mapping read them from there.
    kafka_auth: str = "none"
    kafka_secret: Optional[str] = None
    kafka_root_ca: Optional[str] = None
    api_key: str = "local-dev-key"
    prefix: str = "notify-local"
    schedule_seconds: Optional[float] = None  # the template's rate by default
    state_dir: Path = field(default_factory=lambda: ROOT / ".local-stack")
    with_mappings: bool = True
    # Run the worker's invocations in child processes, one container per event source mapping, as Lambda
    # would: timeouts enforced, invocations that can be cut off (the chaos run); logs in state_dir/worker-*.log.
    containers: bool = False
    worker_env: dict[str, str] = field(default_factory=dict)  # added to the worker containers' environment
    # Template parameter values over the local ones, as `sam deploy --parameter-overrides` takes them
    # (PARAMETER_OVERRIDES="CorsAllowedOrigins=http://127.0.0.1:8080 LogLevel=DEBUG").
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"TRANSPORT={self.transport!r}: {' or '.join(TRANSPORTS)}")
        if self.drain_transport not in DRAIN_TRANSPORTS:
            raise ValueError(f"DRAIN_TRANSPORT={self.drain_transport!r}: {', '.join(DRAIN_TRANSPORTS)}")
        if self.drain_transport == self.transport:
            raise ValueError(
                f"DRAIN_TRANSPORT={self.drain_transport}: the transport being left, not TRANSPORT={self.transport}"
            )

    @property
    def uses_kafka(self) -> bool:
        """Kafka runs: the functions publish to it (Transport kafka), or the worker drains it (DrainTransport)."""
        return "kafka" in (self.transport, self.drain_transport)

    @classmethod
    def from_env(cls) -> Config:
        """The configuration ``make local`` reads from its environment; ValueError names a variable it refuses."""
        env = os.environ
        seconds = env.get("SCHEDULE_SECONDS")
        overrides = parameter_overrides(env)
        transport, drain = transports(env)
        return cls(
            transport=transport,
            drain_transport=drain,
            api_port=int(env.get("API_PORT", 3000)),
            moto_port=int(env.get("MOTO_PORT", 4566)),
            kafka_port=int(env.get("KAFKA_PORT", 9092)),
            auth_port=int(env.get("AUTH_PORT", 3001)),
            ws_port=int(env.get("WS_PORT", 3002)),
            webhook_receiver_port=int(env.get("WEBHOOK_RECEIVER_PORT", 3003)),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_mode=env.get("KAFKA_MODE") or None,
            kafka_storage=env.get("KAFKA_STORAGE") or "memory",
            kafka_auth=env.get("KAFKA_AUTH") or "none",
            kafka_secret=env.get("KAFKA_SECRET") or None,
            kafka_root_ca=Path(env["KAFKA_ROOT_CA_FILE"]).read_text() if env.get("KAFKA_ROOT_CA_FILE") else None,
            containers=env.get("LOCAL_CONTAINERS", "") not in ("", "0", "false"),
            api_key=env.get("LOCAL_API_KEY", "local-dev-key"),
            schedule_seconds=float(seconds) if seconds else None,
            state_dir=Path(env["LOCAL_STATE_DIR"]) if env.get("LOCAL_STATE_DIR") else ROOT / ".local-stack",
            parameter_overrides=overrides,
        )

    @classmethod
    def free_ports(cls, **changes: object) -> Config:
        ports = {
            "api_port": free_port(),
            "moto_port": free_port(),
            "kafka_port": free_port(),
            "auth_port": free_port(),
            "ws_port": free_port(),
            "webhook_receiver_port": free_port(),
        }
        return cls(**{**ports, **changes})  # type: ignore[arg-type]


class LocalStack:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.template: Template = template()
        self.moto: Optional[Process] = None
        self.kafka: Optional[Process] = None
        self.auth = AuthService(config.auth_port)
        self.infra: Optional[Infra] = None
        self.environments: dict[str, dict[str, str]] = {}
        self.gateway: Optional[Gateway] = None
        self.ws_gateway: Optional[WebSocketGateway] = None
        self._loops: list[KafkaMapping | SqsMapping | Schedule] = []
        # The worker's containers by trigger when config.containers: kafka (the topic's mapping), sqs (the delay
        # queue), jobs (the jobs queue's mapping); kafka and jobs both while DrainTransport drains one of them.
        self.workers: dict[str, ContainerFunction] = {}
        self.simulator: Optional[MailboxSimulator] = None
        self.ses_proxy: Optional[ProviderFaults] = None
        self.kafka_secrets: dict[str, str] = {}  # KafkaSecretArn, KafkaRootCaSecretArn: their secrets in moto
        # The demo receiver of status webhooks; it learns the secrets of the endpoints registered for its URL.
        self.receiver = WebhookReceiver(
            config.webhook_receiver_port,
            secret_source=self._receiver_secrets,
            max_messages=config.webhook_receiver_messages,
        )

    @property
    def transport(self) -> str:
        return self.config.transport

    @property
    def drain_transport(self) -> str:
        return self.config.drain_transport

    @property
    def bootstrap(self) -> str:
        """The Kafka brokers (Transport or DrainTransport kafka); empty with sqs alone, as a deployment without Kafka
        leaves them."""
        if not self.config.uses_kafka:
            return ""
        return self.config.kafka_bootstrap or f"127.0.0.1:{self.config.kafka_port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.config.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    @property
    def own_origins(self) -> tuple[str, ...]:
        """The origins of the stack's own pages (the console, the demo inbox): the API's, under either host name."""
        return own_origins(self.config.api_port)

    @property
    def ws_url(self) -> str:
        """Where browsers connect (``?token=<user token>``): the WebSocket API, locally."""
        return f"ws://127.0.0.1:{self.config.ws_port}/"

    @property
    def ws_management_url(self) -> str:
        """The management API's endpoint, the functions' ``WEBSOCKET_ENDPOINT`` (the stage's URL)."""
        ((api, stage),) = self.template.websocket_apis().items()
        return f"http://127.0.0.1:{self.config.ws_port}/{stage}"

    def parameters(self) -> dict[str, str]:
        """The template's parameters as the local stack sets them.

        KafkaMode is the template's default unless ``KAFKA_MODE`` says otherwise: the Kafka here is Tansu either
        way, but the worker gets the events of that mode's event source mapping (``SelfManagedKafka`` or
        ``aws:kafka``), as it would in AWS. Transport is ``Config.transport`` and DrainTransport
        ``Config.drain_transport``; with sqs alone the Kafka parameters are left empty, as a deployment without Kafka
        leaves them.
        """
        defaults = self.template.parameter_defaults()
        mode = self.config.kafka_mode or defaults["KafkaMode"]
        allowed = self.template.parameters["KafkaMode"].get("AllowedValues")
        if allowed and mode not in allowed:
            raise ValueError(f"KAFKA_MODE={mode!r}: the template allows {', '.join(allowed)}")
        msk = f"arn:aws:kafka:{REGION}:{ACCOUNT}:cluster/{self.config.prefix}/00000000-0000-0000-0000-000000000000-1"
        unknown = sorted(self.config.parameter_overrides.keys() - self.template.parameters.keys())
        if unknown:
            raise ValueError(f"PARAMETER_OVERRIDES: the template has no parameter {', '.join(unknown)}")
        transports = self.template.parameters["Transport"].get("AllowedValues", TRANSPORTS)
        if self.transport not in transports:
            raise ValueError(f"TRANSPORT={self.transport!r}: the template allows {', '.join(transports)}")
        if self.config.parameter_overrides.get("Transport", self.transport) != self.transport:
            raise ValueError("PARAMETER_OVERRIDES: set the transport with TRANSPORT, not Transport")
        drains = self.template.parameters["DrainTransport"].get("AllowedValues", DRAIN_TRANSPORTS)
        if self.drain_transport not in drains:
            raise ValueError(f"DRAIN_TRANSPORT={self.drain_transport!r}: the template allows {', '.join(drains)}")
        if self.config.parameter_overrides.get("DrainTransport", self.drain_transport) != self.drain_transport:
            raise ValueError("PARAMETER_OVERRIDES: set the transport being drained with DRAIN_TRANSPORT")
        return {
            **defaults,
            "Transport": self.transport,
            "DrainTransport": self.drain_transport,
            "KafkaMode": mode,
            "MskClusterArn": msk if mode == "msk" and self.config.uses_kafka else "",
            "KafkaBootstrapServers": self.bootstrap,
            "KafkaAuth": self.config.kafka_auth,
            **self.kafka_secrets,
            "AuthApiUrl": f"http://127.0.0.1:{self.auth.port or self.config.auth_port}",
            "SenderEmail": "notifications@example.com",
            "PublicApiUrl": self.api_url,  # one-click unsubscribe links point at the local API
            # Browsers may call the API from the stack's own pages only, not from any site a developer visits.
            "CorsAllowedOrigins": ",".join(self.own_origins),
            # One worker process serves everything here: let a preference change show within a second.
            "PreferencesCacheSeconds": "1",
            **self.config.parameter_overrides,
        }

    def start_peers(self) -> None:
        """moto server, Kafka (Transport or DrainTransport kafka only) and the Auth service; AWS clients in this
        process point at moto."""
        state = self.config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        logs = ("moto.log", "tansu.log") if self.config.uses_kafka else ("moto.log",)
        for name in logs:  # this run's logs only; restarts within the run append
            (state / name).write_bytes(b"")
        # Kept before they are waited on, so that `stop` ends them even if start-up is interrupted.
        self.moto = moto_process(self.config.moto_port, state / "moto.log")
        self.moto.start()
        os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=self.endpoint)
        if self.config.uses_kafka and self.config.kafka_bootstrap is None:
            s3 = None
            if self.config.kafka_storage == "s3":
                bucket = f"{self.config.prefix}-kafka"
                boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)  # Tansu's region
                s3 = (self.endpoint, bucket)
            elif self.config.kafka_storage != "memory":
                raise ValueError(f"KAFKA_STORAGE={self.config.kafka_storage!r}: memory or s3")
            self.kafka = tansu_process(self.config.kafka_port, state / "tansu.log", s3)
            self.kafka.start()
        self.auth.start()

    def provision(self) -> dict[str, str]:
        """Create the template's resources, the topic (Transport or DrainTransport kafka) and the sender identity;
        set and return the env."""
        # The WebSocket API's execute-api URLs (WEBSOCKET_ENDPOINT) resolve to the local WebSocket gateway.
        apis = dict.fromkeys(self.template.websocket_apis(), f"http://127.0.0.1:{self.config.ws_port}")
        self.store_kafka_secrets()
        self.infra = create_resources(self.template, self.config.prefix, self.parameters(), apis)
        # The Auth token lives in SSM Parameter Store, as in AWS; the demo Auth service accepts this one.
        put_secret(self.infra.parameters["AuthApiTokenParameter"], self.auth.token)
        # Each kind of token has its own key list (docs/OPERATIONS.md): this stack's own random keys, one each.
        for key_list in (
            "UserTokenKeysParameter",
            "CursorKeysParameter",
            "UnsubscribeKeysParameter",
            "ShortLinkKeysParameter",
        ):
            put_secret(self.infra.parameters[key_list], secrets.token_urlsafe(48))
        self.environments = function_environments(self.template, self.infra, local_environment(self.own_origins))
        env = merged_environment(self.environments)
        os.environ.update(env)
        if self.config.uses_kafka:
            create_topic(self.bootstrap, env["KAFKA_TOPIC"], options=self.kafka_options())
        if self.kafka is not None:  # Tansu keeps topics in memory: a restarted broker gets it again
            self.kafka.after_start.append(lambda: create_topic(self.bootstrap, env["KAFKA_TOPIC"]))
        verify_sender(env["SENDER_EMAIL"])
        self.write_state()
        return env

    def store_kafka_secrets(self) -> None:
        """Config.kafka_secret and kafka_root_ca into moto's Secrets Manager, their ARNs into ``kafka_secrets`` (the
        KafkaSecretArn and KafkaRootCaSecretArn parameters)."""
        client = boto3.client("secretsmanager")
        root_ca = json.dumps({"certificate": self.config.kafka_root_ca}) if self.config.kafka_root_ca else None
        for parameter, value in (("KafkaSecretArn", self.config.kafka_secret), ("KafkaRootCaSecretArn", root_ca)):
            if value:
                name = f"{self.config.prefix}/{parameter}"
                self.kafka_secrets[parameter] = client.create_secret(Name=name, SecretString=value)["ARN"]

    def kafka_options(self) -> dict[str, Any]:
        """How the stack's own Kafka clients (the topic's creation) connect: as the functions' producers do."""
        from notify.adapters.kafka import KafkaConfig
        from notify.adapters.secrets import SecretsManagerJson

        values = self.parameters()
        config = KafkaConfig(
            self.bootstrap,
            "",
            auth=values["KafkaAuth"],
            secret_arn=values.get("KafkaSecretArn") or None,
            root_ca_secret_arn=values.get("KafkaRootCaSecretArn") or None,
        )
        options = config.client_options(SecretsManagerJson(max_age=0))
        return {k: v for k, v in options.items() if k.startswith(("security_", "sasl_", "ssl_"))}

    @property
    def state_file(self) -> Path:
        return self.config.state_dir / STATE_FILE

    def write_state(self) -> None:
        """Where this stack's peers and resources are, for ``make invoke`` (``python -m local.invoke``)."""
        assert self.infra is not None
        state = StackState(os.getpid(), self.endpoint, self.bootstrap, self.api_url, self.auth.url, self.infra)
        self.state_file.write_text(json.dumps(asdict(state), indent=2) + "\n")

    def seed(self) -> None:
        """The default templates and the dev API key."""
        import boto3
        from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
        from notify.adapters.dynamodb.templates import DynamoTemplateStore
        from notify.clock import iso, utc_now
        from notify.default_templates import seed_default_templates
        from notify.services.access import hash_key

        dynamodb = boto3.client("dynamodb")
        seed_default_templates(DynamoTemplateStore(dynamodb, os.environ["TEMPLATES_TABLE"], cache_seconds=0), utc_now)
        DynamoApiKeyStore(dynamodb, os.environ["API_KEYS_TABLE"]).put(
            hash_key(self.config.api_key), "local-dev", ["admin"], iso(utc_now())
        )

    def function(self, logical_id: str) -> Function:
        """A handler loaded as Lambda would, with the template's timeout and memory size."""
        spec = self.template.functions()[logical_id]
        return Function(logical_id, spec.handler, spec.timeout, spec.memory_size)

    def kafka_wiring(self, function: str = "WorkerFunction") -> KafkaWiring:
        """The function's active Kafka event source mapping, resolved to this stack's topic and queues (LookupError
        with Transport sqs alone, which has none)."""
        assert self.infra is not None
        source = self.template.kafka_source(function, self.infra.parameters)
        return KafkaWiring(
            source,
            self.bootstrap,
            resolve(source.topic, self.infra),
            queue_url(source.on_failure, self.infra) if source.on_failure is not None else None,
        )

    def kafka_wirings(self, function: str = "WorkerFunction") -> list[KafkaWiring]:
        """The function's Kafka event source mapping with these parameters, if its Condition holds: with Transport
        kafka, and with DrainTransport kafka beside the jobs queue's; none with Transport sqs alone. Decided by the
        configuration, never by a failed lookup: a stack that consumes Kafka and cannot wire its mapping fails to
        start rather than start without its Kafka consumer."""
        return [self.kafka_wiring(function)] if self.config.uses_kafka else []

    def sqs_sources(self, function: str = "WorkerFunction") -> dict[str, tuple[str, SqsSource]]:
        """The function's SQS event source mappings with these parameters, each with its trigger's name: ``sqs``
        for the delay queue's (the SAM event), the queue's name otherwise (``jobs`` for the jobs queue's, with
        Transport or DrainTransport sqs)."""
        assert self.infra is not None
        return {
            logical_id: ("sqs" if source.queue == "DelayQueue" else source.queue.removesuffix("Queue").lower(), source)
            for logical_id, source in self.template.sqs_sources(function, self.infra.parameters).items()
        }

    def container(self, logical_id: str, trigger: str) -> ContainerFunction:
        """The function in its own container (child process) for one trigger, as Lambda scales per mapping."""
        spec = self.template.functions()[logical_id]
        log_path = self.config.state_dir / f"{logical_id}-{trigger}.log"
        env = self.config.worker_env if logical_id == "WorkerFunction" else {}
        function = ContainerFunction(logical_id, spec.handler, spec.timeout, spec.memory_size, env, log_path)
        self.workers[trigger] = function
        return function

    def start_functions(self) -> None:
        """Load the handlers and wire their triggers, as template.yaml describes them with these parameters: every
        event source mapping whose Condition holds (both the Kafka one and the jobs queue's while one is drained)."""
        assert self.infra is not None
        api, worker, scheduler = (self.function(f) for f in ("ApiFunction", "WorkerFunction", "SchedulerFunction"))

        def worker_for(trigger: str) -> Invocable:
            """The worker as this trigger invokes it: its own container when config.containers."""
            return self.container("WorkerFunction", trigger) if self.config.containers else worker

        # The routes and CORS of SAM's translation, as API Gateway gets them (local/http_api.py).
        served = http_api(self.template, "ApiFunction", self.infra.parameters, self.config.state_dir)
        self.gateway = Gateway(
            api, self.config.api_port, served.routes, cors=Cors.from_template(served.cors), static=DEMO
        )
        self.gateway.start()
        ((ws_api, stage),) = self.template.websocket_apis().items()
        ws_function = self.function(self.template.websocket_function(ws_api))
        self.ws_gateway = WebSocketGateway(ws_function, self.config.ws_port, stage=stage).start()
        self.receiver.start()
        if not self.config.with_mappings:
            return
        # SES publishes each send's events (the mailbox simulator's bounces and complaints included) to
        # FeedbackFunction through SNS; moto does neither, so a proxy in front of it does (local/ses_simulator.py).
        published = published_events(self.template, self.infra.configuration_sets)
        self.simulator = MailboxSimulator(self.function("FeedbackFunction").invoke, published=published).start()
        self.ses_proxy = ProviderFaults(self.endpoint, after_email=self.simulator.sent).start()
        os.environ["AWS_ENDPOINT_URL_SESV2"] = self.ses_proxy.url
        seconds = self.config.schedule_seconds or rate_seconds(self.template.schedule("SchedulerFunction"))
        self._loops = []
        for wiring in self.kafka_wirings("WorkerFunction"):
            self._loops.append(KafkaMapping(worker_for("kafka"), wiring))
        for trigger, source in self.sqs_sources("WorkerFunction").values():
            queue = source.queue
            self._loops.append(
                SqsMapping.of(worker_for(trigger), source, self.infra.queues[queue], self.infra.queue_arns[queue])
            )
        self._loops.append(Schedule(scheduler, seconds))
        for loop in self._loops:
            loop.start()

    def _receiver_secrets(self) -> list[str]:
        """The signing secrets of the endpoints registered for the demo receiver's URL: one Query of the webhook
        endpoints' partition in TemplatesTable, as the stack's moto holds it."""
        table = self.environments["WorkerFunction"]["TEMPLATES_TABLE"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        pages = dynamodb.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "WEBHOOK"}},
        )
        return [
            secret["S"]
            for page in pages
            for item in page["Items"]
            if item.get("url", {}).get("S", "").startswith(self.receiver.url)
            for secret in item.get("secrets", {}).get("L", [])
            if "S" in secret
        ]

    def start(self) -> LocalStack:
        self.start_peers()
        self.provision()
        self.seed()
        self.start_functions()
        return self

    def dead_peers(self) -> list[str]:
        """The peer processes this stack started that have exited since."""
        return [p.name for p in (self.moto, self.kafka) if p is not None and p.popen and p.popen.poll() is not None]

    def stop(self) -> None:
        if self.infra is not None:
            self.state_file.unlink(missing_ok=True)
        for loop in self._loops:
            loop.stop()
        for container in self.workers.values():
            container.stop()
        if self.ses_proxy is not None:
            self.ses_proxy.stop()
            os.environ.pop("AWS_ENDPOINT_URL_SESV2", None)
        if self.simulator is not None:
            self.simulator.stop()
        if self.gateway is not None:
            self.gateway.stop()
        if self.ws_gateway is not None:
            self.ws_gateway.stop()
        self.receiver.stop()
        self.auth.stop()
        for process in (self.kafka, self.moto):
            if process is not None:
                process.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

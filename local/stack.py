"""The whole local stack as one object: peers, resources from template.yaml, and the handlers wired to them."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from local.auth_service import AuthService
from local.cfn import ROOT, Template, template
from local.gateway import Gateway
from local.infra import (
    Infra,
    create_resources,
    create_topic,
    function_environments,
    merged_environment,
    resolve,
    verify_sender,
)
from local.invoke import Function
from local.mappings import KafkaMapping, Schedule, SqsMapping, rate_seconds
from local.processes import Process, free_port, moto_process, tansu_process

log = logging.getLogger("local.stack")

AWS_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
}


@dataclass
class Config:
    api_port: int = 3000
    moto_port: int = 4566
    kafka_port: int = 9092
    auth_port: int = 3001
    kafka_bootstrap: Optional[str] = None  # an existing Kafka instead of starting Tansu
    api_key: str = "local-dev-key"
    prefix: str = "notify-local"
    schedule_seconds: Optional[float] = None  # the template's rate by default
    state_dir: Path = field(default_factory=lambda: ROOT / ".local-stack")
    with_mappings: bool = True

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        seconds = env.get("SCHEDULE_SECONDS")
        return cls(
            api_port=int(env.get("API_PORT", 3000)),
            moto_port=int(env.get("MOTO_PORT", 4566)),
            kafka_port=int(env.get("KAFKA_PORT", 9092)),
            auth_port=int(env.get("AUTH_PORT", 3001)),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            api_key=env.get("LOCAL_API_KEY", "local-dev-key"),
            schedule_seconds=float(seconds) if seconds else None,
            state_dir=Path(env["LOCAL_STATE_DIR"]) if env.get("LOCAL_STATE_DIR") else ROOT / ".local-stack",
        )

    @classmethod
    def free_ports(cls, **changes: object) -> Config:
        ports = {"api_port": free_port(), "moto_port": free_port(), "kafka_port": free_port(), "auth_port": free_port()}
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
        self._loops: list[KafkaMapping | SqsMapping | Schedule] = []

    @property
    def bootstrap(self) -> str:
        return self.config.kafka_bootstrap or f"127.0.0.1:{self.config.kafka_port}"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.config.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.config.api_port}"

    def parameters(self) -> dict[str, str]:
        """The template's parameters as the local stack sets them."""
        return {
            **self.template.parameter_defaults(),
            "KafkaMode": "self-managed",
            "MskClusterArn": "",
            "KafkaBootstrapServers": self.bootstrap,
            "KafkaAuth": "none",
            "AuthApiUrl": f"http://127.0.0.1:{self.auth.port or self.config.auth_port}",
            "AuthApiToken": self.auth.token,
            "SenderEmail": "notifications@example.com",
            "UnsubscribeUrl": f"{self.api_url}/unsubscribe?u={{user_id}}&j={{job_id}}",
        }

    def start_peers(self) -> None:
        """moto server, Kafka and the Auth service; AWS clients in this process point at moto."""
        state = self.config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        # Kept before they are waited on, so that `stop` ends them even if start-up is interrupted.
        self.moto = moto_process(self.config.moto_port, state / "moto.log")
        self.moto.start()
        if self.config.kafka_bootstrap is None:
            self.kafka = tansu_process(self.config.kafka_port, state / "tansu.log")
            self.kafka.start()
        self.auth.start()
        os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=self.endpoint)

    def provision(self) -> dict[str, str]:
        """Create the template's resources, the topic and the sender identity; set and return the env."""
        self.infra = create_resources(self.template, self.config.prefix, self.parameters())
        self.environments = function_environments(self.template, self.infra)
        env = merged_environment(self.environments)
        os.environ.update(env)
        create_topic(self.bootstrap, env["KAFKA_TOPIC"])
        if self.kafka is not None:  # Tansu keeps topics in memory: a restarted broker gets it again
            self.kafka.after_start.append(lambda: create_topic(self.bootstrap, env["KAFKA_TOPIC"]))
        verify_sender(env["SENDER_EMAIL"])
        return env

    def seed(self) -> None:
        """The default templates and the dev API key."""
        import boto3
        from notify.access import hash_key
        from notify.adapters.dynamo import DynamoApiKeyStore, DynamoTemplateStore
        from notify.clock import iso, utc_now
        from notify.default_templates import seed_default_templates

        dynamodb = boto3.client("dynamodb")
        seed_default_templates(DynamoTemplateStore(dynamodb, os.environ["TEMPLATES_TABLE"], cache_seconds=0), utc_now)
        DynamoApiKeyStore(dynamodb, os.environ["API_KEYS_TABLE"]).put(
            hash_key(self.config.api_key), "local-dev", ["admin"], iso(utc_now())
        )

    def function(self, logical_id: str) -> Function:
        """A handler loaded as Lambda would, with the template's timeout and memory size."""
        spec = self.template.functions()[logical_id]
        return Function(logical_id, spec.handler, spec.timeout, spec.memory_size)

    def start_functions(self) -> None:
        """Load the handlers and wire their triggers, as template.yaml describes them."""
        assert self.infra is not None
        api, worker, scheduler = (self.function(f) for f in ("ApiFunction", "WorkerFunction", "SchedulerFunction"))
        self.gateway = Gateway(api, self.config.api_port)
        self.gateway.start()
        if not self.config.with_mappings:
            return
        queue, sqs_batch = self.template.sqs_event("WorkerFunction")
        kafka = self.template.kafka_source("WorkerFunction", self.infra.parameters)
        seconds = self.config.schedule_seconds or rate_seconds(self.template.schedule("SchedulerFunction"))
        self._loops = [
            KafkaMapping(
                worker,
                self.bootstrap,
                resolve(kafka.topic, self.infra),
                kafka.consumer_group,
                kafka.batch_size,
            ),
            SqsMapping(worker, self.infra.queues[queue], self.infra.queue_arns[queue], sqs_batch),
            Schedule(scheduler, seconds),
        ]
        for loop in self._loops:
            loop.start()

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
        for loop in self._loops:
            loop.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.auth.stop()
        for process in (self.kafka, self.moto):
            if process is not None:
                process.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

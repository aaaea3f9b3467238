"""Whether the transport a stack is leaving is drained: ``python -m ops transport-drained``.

Switching ``Transport`` loses no job when it takes two deployments (docs/DEPLOY.md#transport). The first sets the new
``Transport`` and ``DrainTransport`` to the old one: every function publishes the new way, while the worker's event
source on the old one stays and reads what is left there. The second, ``DrainTransport=none``, removes that event
source, so it may only come once nothing waits in the old transport. This says whether anything does:

- **kafka**: on each partition of the topic, the records after the offset the worker's consumer group
  (``notification-worker``, the event source's) has committed. Lambda commits a batch once the worker has answered
  for it (each record handled, or the batch sent to the DLQ after its retries), so a record being handled still
  counts. A partition the group never committed on counts from its first record (the mapping starts at
  TRIM_HORIZON).
- **sqs**: the jobs queue's messages: waiting (``ApproximateNumberOfMessages``), received and not deleted
  (``...NotVisible``: being handled, or back after the visibility timeout) and delayed (``...Delayed``). SQS's counts
  are approximate and settle within a minute of the last send, so check again a minute later before believing a 0.

With a stack, it first checks the functions' aliases as ``make align-aliases CHECK=1`` does (ops.aliases): an alias
still on a version behind its function's ``$LATEST`` may still publish to the transport being left, so while one
lags the answer is NOT DRAINED, whatever the transport holds.

It reads; it never changes an offset or a message, and never creates a topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, TextIO

from ops.aliases import Alias, LambdaClient, align

# boto3's CloudFormation and SQS clients (the project installs no type stubs for CloudFormation).
CloudFormationClient = Any
SqsClient = Any

# The ConsumerGroupId of both Kafka event source mappings of template.yaml (a contract test keeps them equal).
CONSUMER_GROUP = "notification-worker"
# What the jobs queue holds, by GetQueueAttributes' names, and how the report names each.
QUEUE_COUNTS = {
    "ApproximateNumberOfMessages": "waiting",
    "ApproximateNumberOfMessagesNotVisible": "in flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
TRANSPORTS = ("kafka", "sqs")


@dataclass(frozen=True)
class Backlog:
    """What still waits in a transport: a count per place (a topic's partition, or a kind of queue message)."""

    transport: str
    where: str  # the topic and group, or the queue's URL
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def drained(self) -> bool:
        return self.total == 0

    def line(self) -> str:
        """One line for the operator: DRAINED, or how many wait and where."""
        if self.drained:
            settle = "; SQS's counts settle within a minute of the last send" if self.transport == "sqs" else ""
            return f"DRAINED      {self.transport} {self.where}: nothing waits{settle}"
        parts = ", ".join(f"{place} {count}" for place, count in self.counts.items() if count)
        return f"NOT DRAINED  {self.transport} {self.where}: {self.total} waiting ({parts})"


def partition_lag(
    ends: Mapping[int, int], beginnings: Mapping[int, int], committed: Mapping[int, Optional[int]]
) -> dict[int, int]:
    """Each partition's records the group has not committed: from its committed offset, or, where it has none (or
    one before what the topic still holds), from the partition's first record, to the partition's end."""
    lag = {}
    for partition, end in sorted(ends.items()):
        start = beginnings.get(partition, 0)
        done = committed.get(partition)
        lag[partition] = max(0, end - max(start, done if done is not None and done >= 0 else start))
    return lag


def kafka_backlog(options: Mapping[str, Any], topic: str, group: str = CONSUMER_GROUP) -> Backlog:
    """The group's lag on every partition of ``topic``, with kafka-python's clients made from ``options`` (the
    producers' connection options: notify.adapters.kafka.KafkaConfig.client_options). KafkaError when Kafka cannot
    be read; LookupError for a topic Kafka does not know.

    Nothing here may create the topic: with ``auto.create.topics.enable`` (Kafka's default) a Metadata request that
    names a topic and allows creation creates it empty, so a mistyped ``--topic`` would be answered DRAINED. The
    admin client's metadata requests never allow it (it takes no ``allow_auto_create_topics``), the consumer is told
    not to, and the topic is looked up before anything else reads it."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.errors import UnknownTopicOrPartitionError, for_code

    # The admin client first, its bootstrap bounded by the request timeout: it tells an unreachable Kafka (a
    # KafkaTimeoutError) within that time (2 s for --timeout 2, against a refused port, an address that never
    # answers and a name that does not resolve), so the consumer, which retries such a broker far longer, meets
    # only a reachable one.
    timeout_ms = int(options.get("request_timeout_ms", 30_000))
    admin = KafkaAdminClient(**options, bootstrap_timeout_ms=timeout_ms)
    try:
        (described,) = admin.describe_topics([topic])
        error = for_code(described["error_code"])
        if error is UnknownTopicOrPartitionError:
            raise LookupError(f"Kafka knows no topic {topic} (check --topic or the stack's KafkaTopic)")
        if described["error_code"]:
            raise error(f"topic {topic}")
        partitions = [TopicPartition(topic, p["partition_index"]) for p in described["partitions"]]
        partitions.sort(key=lambda tp: tp.partition)
        if not partitions:
            raise LookupError(f"Kafka knows no partition of topic {topic}")
        consumer = KafkaConsumer(**options, enable_auto_commit=False, allow_auto_create_topics=False)
        try:
            ends = {tp.partition: int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
            beginnings = {tp.partition: int(offset) for tp, offset in consumer.beginning_offsets(partitions).items()}
        finally:
            consumer.close()
        found = admin.list_group_offsets({group: partitions}).get(group, {})
    finally:
        admin.close()
    committed = {tp.partition: (found[tp].offset if tp in found else None) for tp in partitions}
    lag = partition_lag(ends, beginnings, committed)
    return Backlog("kafka", f"topic {topic}, group {group}", {f"partition {p}": n for p, n in lag.items()})


def sqs_backlog(sqs: SqsClient, queue_url: str) -> Backlog:
    """The jobs queue's messages waiting, in flight and delayed."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(QUEUE_COUNTS))["Attributes"]
    return Backlog("sqs", queue_url, {label: int(attributes.get(name, 0)) for name, label in QUEUE_COUNTS.items()})


@dataclass(frozen=True)
class StackTransports:
    """What a deployed stack says of its transports: its parameters' values and the jobs queue's URL."""

    parameters: dict[str, str]
    jobs_queue_url: Optional[str]

    @property
    def draining(self) -> Optional[str]:
        """The transport being left (DrainTransport), or None."""
        value = self.parameters.get("DrainTransport", "none")
        return value if value in TRANSPORTS else None


def stack_transports(cloudformation: CloudFormationClient, stack: str) -> StackTransports:
    """The stack's parameter values and its JobsQueueUrl output (which exists while the jobs queue is read)."""
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    parameters = {p["ParameterKey"]: str(p.get("ParameterValue", "")) for p in described.get("Parameters", [])}
    outputs = {o["OutputKey"]: str(o["OutputValue"]) for o in described.get("Outputs", [])}
    return StackTransports(parameters, outputs.get("JobsQueueUrl"))


def lagging_aliases(client: LambdaClient, aliases: Iterable[Alias]) -> list[str]:
    """A NOT DRAINED line for each alias behind its function's ``$LATEST`` (what ``make align-aliases`` checks and
    fixes: ops.aliases). Until an alias moves, its function runs the version it points at, which may still publish
    to the transport being left: after a bare ``sam deploy`` that changed only ``Transport``, every alias does. Such
    a version could put a job there after this said DRAINED, and the next deployment would strand it."""
    return [
        f"NOT DRAINED  alias {o.alias.function}:{o.alias.name} still on version {o.version}, behind $LATEST's"
        f" {', '.join(o.changed)}: run make align-aliases"
        for o in align(client, aliases, apply=False)
        if o.changed
    ]


def report(backlog: Backlog, out: TextIO) -> int:
    """Print the backlog's line; the exit status: 0 drained, 1 not."""
    print(backlog.line(), file=out)
    return 0 if backlog.drained else 1

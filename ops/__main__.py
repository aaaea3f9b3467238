"""``python -m ops``: create API keys, seed default templates, align function aliases and tell whether the transport
being left is drained, in a deployed stack.

Tables are given by name or found in the stack's CloudFormation outputs; the
AWS endpoint, region and credentials come from the usual AWS environment
(``AWS_ENDPOINT_URL=http://localhost:4566`` for LocalStack).
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

import boto3
from notify.adapters.dynamodb.api_keys import DynamoApiKeyStore
from notify.adapters.dynamodb.templates import DynamoTemplateStore
from notify.clock import iso, utc_now
from notify.default_templates import seed_default_templates
from notify.services.access import SCOPES, hash_key, new_key

from ops.aliases import align as align_aliases
from ops.aliases import report, stack_aliases
from ops.drain import CONSUMER_GROUP, TRANSPORTS, kafka_backlog, lagging_aliases, sqs_backlog, stack_transports
from ops.drain import report as report_backlog

KAFKA_AUTHS = ("none", "tls", "iam", "scram-sha-256", "scram-sha-512", "mtls")


def stack_output(stack: str, key: str) -> str:
    """One output value of a CloudFormation stack."""
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output["OutputKey"] == key:
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack} has no output {key}")


def _table(explicit: Optional[str], stack: Optional[str], output: str) -> str:
    if explicit:
        return explicit
    if stack:
        return stack_output(stack, output)
    raise SystemExit(f"give --table or --stack (to read the {output} output)")


def transport_drained(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``transport-drained``: 0 when the transport being left holds no job, 1 when it does (or, with ``--stack``,
    when an alias still runs a version that may publish to it), 2 when it cannot be read. Each value is the
    option's, else the stack's (``--stack``)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _transport_drained(args, parser)
    except (ClientError, BotoCoreError) as exc:
        # The stack, its aliases or the jobs queue could not be read (an endpoint that does not answer, no
        # credentials, a stack or queue that does not exist): neither drained nor not.
        print(f"transport-drained: cannot read AWS: {exc}", file=sys.stderr)
        return 2


def _transport_drained(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from kafka.errors import KafkaError
    from notify.adapters.kafka import KafkaConfig
    from notify.errors import TransientError

    stack = stack_transports(boto3.client("cloudformation"), args.stack) if args.stack else None
    transport = args.transport or (stack.draining if stack else None)
    if transport is None:
        where = f"stack {args.stack} drains nothing (DrainTransport none)" if stack else "no --stack"
        parser.error(f"{where}: give --transport kafka or sqs")
    if args.stack:
        lagging = lagging_aliases(boto3.client("lambda"), stack_aliases(boto3.client("cloudformation"), args.stack))
        if lagging:
            print("\n".join(lagging), file=sys.stdout)
            return 1
    values = stack.parameters if stack else {}
    if transport == "sqs":
        url = args.queue_url or (stack.jobs_queue_url if stack else None)
        if not url:
            parser.error("give --queue-url: the stack's JobsQueueUrl output exists only while the queue is read")
        return report_backlog(sqs_backlog(boto3.client("sqs"), url), sys.stdout)
    bootstrap = args.bootstrap_servers or values.get("KafkaBootstrapServers")
    if not bootstrap:
        parser.error("give --bootstrap-servers (or --stack, to read KafkaBootstrapServers)")
    config = KafkaConfig(
        bootstrap,
        args.topic or values.get("KafkaTopic") or "notification-jobs",
        timeout_seconds=args.timeout,
        auth=args.kafka_auth or values.get("KafkaAuth") or "tls",
        region=boto3.session.Session().region_name,
        secret_arn=args.kafka_secret_arn or values.get("KafkaSecretArn") or None,
        root_ca_secret_arn=args.kafka_root_ca_secret_arn or values.get("KafkaRootCaSecretArn") or None,
    )
    try:
        backlog = kafka_backlog(config.client_options(), config.topic, args.group)
    except LookupError as exc:
        print(f"transport-drained: Kafka at {bootstrap}: {exc}", file=sys.stderr)
        return 2
    except (KafkaError, TransientError) as exc:
        print(f"transport-drained: cannot read Kafka at {bootstrap}: {exc}", file=sys.stderr)
        return 2
    return report_backlog(backlog, sys.stdout)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True)
    key = sub.add_parser("create-api-key", help="create an API key; prints it once (only its hash is stored)")
    key.add_argument("--name", required=True)
    key.add_argument("--scopes", default="events:write,notifications:read", help=f"comma-separated: {SCOPES}")
    key.add_argument("--key", help="use this key instead of a random one (e.g. a dev key)")
    seed = sub.add_parser("seed-templates", help="store the default template of every event type and channel")
    seed.add_argument("--locale", default="en")
    for command in (key, seed):
        command.add_argument("--stack", help="CloudFormation stack to read table names from")
        command.add_argument("--table", help="the table name (overrides --stack)")
    align = sub.add_parser("align-aliases", help="point each alias at a version of its $LATEST configuration")
    align.add_argument("--stack", required=True)
    align.add_argument("--check", action="store_true", help="only report; exit 1 when an alias lags")
    drained = sub.add_parser(
        "transport-drained",
        help="exit 0 when the transport being left (DrainTransport) holds no job any more, 1 while it does (or, with"
        " --stack, while an alias lags $LATEST: run make align-aliases), 2 when it cannot tell",
    )
    drained.add_argument("--stack", help="read DrainTransport, the Kafka parameters and JobsQueueUrl from this stack")
    drained.add_argument("--transport", choices=TRANSPORTS, help="the one to check (default: DrainTransport)")
    drained.add_argument("--queue-url", help="sqs: the jobs queue (default: the stack's JobsQueueUrl output)")
    drained.add_argument("--bootstrap-servers", help="kafka: the brokers (default: the stack's KafkaBootstrapServers)")
    drained.add_argument("--topic", help="kafka: the topic (default: the stack's KafkaTopic)")
    drained.add_argument("--kafka-auth", choices=KAFKA_AUTHS, help="kafka: default the stack's KafkaAuth, else tls")
    drained.add_argument("--kafka-secret-arn", help="kafka: default the stack's KafkaSecretArn")
    drained.add_argument("--kafka-root-ca-secret-arn", help="kafka: default the stack's KafkaRootCaSecretArn")
    drained.add_argument("--group", default=CONSUMER_GROUP, help="kafka: the worker's event source's consumer group")
    drained.add_argument("--timeout", type=float, default=30.0, help="kafka: seconds a request may take")
    args = parser.parse_args(argv)
    if args.command == "transport-drained":
        return transport_drained(args, parser)
    if args.command == "align-aliases":
        aliases = stack_aliases(boto3.client("cloudformation"), args.stack)
        outcomes = align_aliases(boto3.client("lambda"), aliases, apply=not args.check)
        lagging = report(outcomes, not args.check, sys.stdout)
        return 1 if lagging and args.check else 0
    dynamodb = boto3.client("dynamodb")
    if args.command == "create-api-key":
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            parser.error(f"unknown scopes {unknown}; known: {', '.join(SCOPES)}")
        table = _table(args.table, args.stack, "ApiKeysTableName")
        secret = args.key or new_key()
        DynamoApiKeyStore(dynamodb, table).put(hash_key(secret), args.name, scopes, iso(utc_now()))
        print(secret)
        print(f"stored as {hash_key(secret)[:12]}… with scopes {', '.join(scopes)}", file=sys.stderr)
        return 0
    table = _table(args.table, args.stack, "TemplatesTableName")
    written = seed_default_templates(DynamoTemplateStore(dynamodb, table, cache_seconds=0), utc_now, args.locale)
    print(f"{written} templates written to {table}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m ops``: create API keys, seed default templates and align function aliases in a deployed stack.

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
    args = parser.parse_args(argv)
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

"""What AWS receives: assertions on SAM's translation of template.yaml (aws-sam-translator, local/sam.py).

The other contract tests read template.yaml itself; these read the CloudFormation template SAM's transform makes of
it, with parameter values, as CloudFormation then creates it. Each finding of issue 19 that only shows there (CORS
lost in translation, versions not published, triggers, creation order, VPC, Rules, retain policies) has its test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from local.cfn import Template, load_template
from local.sam import Translations

SUBNETS = "subnet-0aaa1111,subnet-0bbb2222"
GROUPS = "sg-0ccc3333"
VPC_ID = "vpc-0ddd4444"
CLUSTER = "arn:aws:kafka:eu-west-1:123456789012:cluster/notifications/0f1e2d3c-aaaa-bbbb-cccc-111122223333-1"
# Functions in SubnetIds, whose Kafka pollers reach the DLQ through an SQS endpoint this stack creates.
VPC = {"SubnetIds": SUBNETS, "SecurityGroupIds": GROUPS, "VpcId": VPC_ID, "SqsVpcEndpoint": "create"}
MSK = {"KafkaMode": "msk", "MskClusterArn": CLUSTER, "KafkaAuth": "iam", **VPC}
TWO_ORIGINS = "https://app.example.com,https://admin.example.com"


def _names(value: Any) -> Iterator[str]:
    """Every logical id or parameter ``value`` names: Ref, Fn::GetAtt, and the ``${...}`` of an Fn::Sub."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                yield str(inner[0] if isinstance(inner, list) else str(inner).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                yield from (m.split(".", 1)[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text))
                if isinstance(inner, list):
                    yield from _names(inner[1])
            else:
                yield from _names(inner)
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- CORS ------------------------------------------------------------------------------------------------

# What the API's callers send from a browser: the console and services (X-API-Key), the inbox (Authorization:
# Bearer <user token>), JSON bodies, and the event API's Idempotency-Key.
BROWSER_HEADERS = {"x-api-key", "authorization", "content-type", "idempotency-key"}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@pytest.mark.parametrize(
    ("origins", "expected"),
    [("*", ["*"]), (TWO_ORIGINS, ["https://app.example.com", "https://admin.example.com"])],
    ids=["any-origin", "two-origins"],
)
def test_the_http_api_gets_the_whole_cors_configuration(sam: Translations, origins: str, expected: list[str]) -> None:
    translation = sam.of(overrides={"CorsAllowedOrigins": origins})
    (api,) = translation.created("AWS::ApiGatewayV2::Api").keys() - {"WebSocketApi"}
    raw = translation.template.properties(api)["Body"].get("x-amazon-apigateway-cors")
    # API Gateway imports this object from the OpenAPI body; it ignores (with a warning) anything else.
    assert isinstance(raw, dict) and "allowOrigins" in raw, f"SAM's x-amazon-apigateway-cors is {json.dumps(raw)}"
    cors = translation.evaluate(raw)
    assert cors["allowOrigins"] == expected
    assert METHODS <= {m.upper() for m in cors["allowMethods"]}
    assert BROWSER_HEADERS <= {h.lower() for h in cors["allowHeaders"]}
    assert {h.lower() for h in cors["exposeHeaders"]} >= {"retry-after"}  # the 409/429/503 answers' hint
    assert cors["maxAge"] == 600
    assert cors.get("allowCredentials", False) is False  # credentials with "*" are refused by browsers


def test_the_local_gateway_reads_the_cors_aws_receives(sam: Translations) -> None:
    # local/cfn.py's http_cors() is what the local gateway applies: the same object, in CorsConfiguration's words.
    translation = sam.of(overrides={"CorsAllowedOrigins": TWO_ORIGINS})
    (api,) = translation.created("AWS::ApiGatewayV2::Api").keys() - {"WebSocketApi"}
    aws = translation.evaluate(translation.template.properties(api)["Body"]["x-amazon-apigateway-cors"])
    local = Template(load_template()).http_cors("ApiFunction", translation.parameters)
    assert isinstance(aws, dict), f"AWS gets {aws} as the CORS object, the local gateway {local}"
    assert {k[0].lower() + k[1:]: v for k, v in local.items()} == aws

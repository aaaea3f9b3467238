"""Secrets from SSM Parameter Store and Secrets Manager, through Powertools' parameters utility and its cache."""

from __future__ import annotations

from typing import Any, Optional

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config

from notify.errors import TransientError

# How long a container keeps a secret before it reads it again: a rotated value is in use everywhere within
# this time (docs/OPERATIONS.md, rotating the Auth token).
SECRET_MAX_AGE_SECONDS = 300

# A read happens on the delivery path once per container and per max age; keep it short and bounded.
SSM_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"total_max_attempts": 2, "mode": "standard"})


class SsmSecret:
    """A SecureString parameter, decrypted and cached for ``max_age`` seconds; call it for the current value.

    A failed read raises ``TransientError`` (the job is retried later, never sent without its credentials).
    """

    def __init__(
        self,
        name: str,
        client: Optional[Any] = None,  # an SSM client; one is built when none is given
        max_age: int = SECRET_MAX_AGE_SECONDS,
    ) -> None:
        self.name = name
        self._max_age = max_age
        if client is None:
            import boto3

            client = boto3.client("ssm", config=SSM_CONFIG)
        self._provider = SSMProvider(boto3_client=client)

    def __call__(self) -> str:
        """The current value: ``GetParameter`` with decryption, through the cache; TransientError if unreadable."""
        try:
            value = self._provider.get(self.name, decrypt=True, max_age=self._max_age)
        except GetParameterError as exc:
            raise TransientError(f"cannot read the secret {self.name}: {exc}") from None
        return str(value)


class SecretsManagerJson:
    """Secrets Manager secrets holding a JSON object (what Lambda's Kafka event sources read), each cached for
    ``max_age`` seconds; call it with a secret's ARN for its current fields.

    A secret that cannot be read, or is not a JSON object, raises ``TransientError`` naming the secret, never its
    value.
    """

    def __init__(
        self,
        client: Optional[Any] = None,  # a Secrets Manager client; one is built when none is given
        max_age: int = SECRET_MAX_AGE_SECONDS,
    ) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self._max_age = max_age
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", config=SSM_CONFIG)
        self._provider = SecretsProvider(boto3_client=client)

    def __call__(self, arn: str) -> dict[str, Any]:
        """The secret's fields: ``GetSecretValue``, through the cache; TransientError if unreadable."""
        from aws_lambda_powertools.utilities.parameters.exceptions import TransformParameterError

        try:
            value = self._provider.get(arn, max_age=self._max_age, transform="json")
        except GetParameterError as exc:
            raise TransientError(f"cannot read the secret {arn}: {exc}") from None
        except TransformParameterError:
            raise TransientError(f"the secret {arn} is not a JSON object") from None
        if not isinstance(value, dict):
            raise TransientError(f"the secret {arn} is not a JSON object")
        return value

"""Secrets from SSM Parameter Store, through Powertools' parameters utility and its cache."""

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

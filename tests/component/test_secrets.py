"""The Auth token from SSM Parameter Store (moto server) through Powertools, against the demo Auth service."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from notify.adapters.auth import HttpUserDirectory
from notify.adapters.secrets import SsmSecret
from notify.errors import PermanentError, TransientError

from local.auth_service import AuthService
from local.stack import LocalStack

pytestmark = pytest.mark.usefixtures("local_stack")


@pytest.fixture
def parameter() -> Iterator[str]:
    name = f"/test/{uuid.uuid4().hex}"
    yield name
    boto3.client("ssm").delete_parameters(Names=[name])


def _put(name: str, value: str) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def test_the_local_stack_stores_the_demo_token_as_a_secure_string(local_stack: LocalStack) -> None:
    assert local_stack.infra is not None
    name = local_stack.infra.parameters["AuthApiTokenParameter"]
    stored = boto3.client("ssm").get_parameter(Name=name)["Parameter"]
    assert stored["Type"] == "SecureString"
    assert SsmSecret(name)() == local_stack.auth.token


def test_a_secret_is_cached_for_its_max_age(parameter: str) -> None:
    _put(parameter, "old")
    secret = SsmSecret(parameter, max_age=300)
    assert secret() == "old"
    _put(parameter, "new")
    assert secret() == "old"  # within the 5 minutes: no call to SSM
    assert SsmSecret(parameter, max_age=0)() == "new"


def test_a_secret_that_cannot_be_read_is_a_transient_error(parameter: str) -> None:
    with pytest.raises(TransientError):
        SsmSecret(parameter)()


def test_the_directory_sends_the_token_its_source_holds_now(auth_service: AuthService, parameter: str) -> None:
    """A rotation reaches the Auth calls without a new client: the token is read for each request."""
    _put(parameter, "wrong")
    directory = HttpUserDirectory.build(auth_service.url, SsmSecret(parameter, max_age=0))
    with pytest.raises(PermanentError):  # the demo Auth service refuses the token
        directory.get_user("demo-user-1")
    _put(parameter, auth_service.token)
    assert directory.get_user("demo-user-1").id == "demo-user-1"

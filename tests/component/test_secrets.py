"""Secrets from SSM Parameter Store (moto server) through Powertools: the Auth token, against the demo Auth
service, and the three key lists (user tokens, page cursors, unsubscribe links), each read by what needs it."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
from notify.adapters.auth import HttpUserDirectory
from notify.adapters.secrets import SsmSecret
from notify.clock import utc_now
from notify.errors import PermanentError, TransientError
from notify.models import Category, Channel
from notify.settings import ApiSettings, load
from notify.signing import BadToken
from notify.unsubscribe import UnsubscribeLinks
from notify.usertokens import UserTokens

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


# -- one key list per purpose (issue 20) --------------------------------------------------------------------

KEY_LISTS = ("UserTokenKeysParameter", "CursorKeysParameter", "UnsubscribeKeysParameter")


@pytest.fixture
def key_list(local_stack: LocalStack) -> Iterator[Callable[[str], str]]:
    """The SSM name of one of the stack's key lists (by template parameter), put back as it was after the test."""
    ssm = boto3.client("ssm")
    saved: dict[str, str] = {}

    def name(template_parameter: str) -> str:
        assert local_stack.infra is not None
        found = local_stack.infra.parameters[template_parameter]
        saved.setdefault(found, ssm.get_parameter(Name=found, WithDecryption=True)["Parameter"]["Value"])
        return found

    yield name
    for found, value in saved.items():
        _put(found, value)


def test_the_local_stack_stores_a_key_list_per_purpose(local_stack: LocalStack) -> None:
    assert local_stack.infra is not None
    values = {}
    for template_parameter in KEY_LISTS:
        name = local_stack.infra.parameters[template_parameter]
        stored = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
        assert stored["Type"] == "SecureString"
        assert len(stored["Value"].encode()) >= 32, template_parameter
        values[name] = stored["Value"]
    assert len(set(values)) == len(set(values.values())) == 3, "each purpose has its own parameter and key"


@pytest.mark.usefixtures("stack_env")
def test_an_old_unsubscribe_key_does_not_verify_a_user_token(key_list: Callable[[str], str]) -> None:
    """The old key stays in the unsubscribe list 60 days or more (OPERATIONS.md), for links in sent emails: it
    verifies those links, and whoever holds it still cannot make a user token."""
    from api.context import build_services

    old = secrets.token_urlsafe(48)
    unsubscribe = key_list("UnsubscribeKeysParameter")
    _put(unsubscribe, f"{SsmSecret(unsubscribe, max_age=0)()},{old}")
    services = build_services(load(ApiSettings))  # a new container's: it reads every parameter afresh
    link = UnsubscribeLinks(lambda: old, "https://x.io").link("u1", Category.SOCIAL, Channel.EMAIL)
    assert services.unsubscribe.read(link.rsplit("/", 1)[1]).user_id == "u1"  # sent links keep working
    minted, _ = UserTokens(lambda: old).issue("victim", utc_now())
    with pytest.raises(BadToken):
        services.user_tokens.verify(minted, utc_now())


@pytest.mark.usefixtures("stack_env")
def test_a_short_key_is_refused_at_load_naming_the_parameter_never_the_key(key_list: Callable[[str], str]) -> None:
    from api.context import build_services

    short = secrets.token_hex(8)  # 16 bytes
    name = key_list("UserTokenKeysParameter")
    _put(name, short)
    services = build_services(load(ApiSettings))
    for attempt in (
        lambda: services.user_tokens.issue("u1", utc_now()),
        lambda: services.user_tokens.verify("e30.AAAAAAAAAAAAAAAAAAAAAA", utc_now()),
    ):
        with pytest.raises(TransientError) as refused:  # the API answers 503, the handshake is refused
            attempt()
        assert name in str(refused.value) and short not in str(refused.value), str(refused.value)

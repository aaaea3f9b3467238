"""``python -m ops align-aliases`` against moto's Lambda: an alias left behind by a change of parameter values alone
is moved to a version of ``$LATEST``, and an alias that is current is left alone (``ops/aliases.py``)."""

from __future__ import annotations

import io

import boto3
import pytest

from ops.aliases import Alias, align, report

from .helpers import deployed_function, lambda_zip


@pytest.fixture
def deployed(moto_endpoint: str) -> Alias:
    """A function as a deployment leaves it: version 1 published from $LATEST, the alias `live` on it."""
    name = deployed_function("align", {"POWERTOOLS_LOG_LEVEL": "INFO"}, Timeout=30)
    return Alias("WorkerFunction", name, "live")


def _live(alias: Alias) -> dict:
    return dict(boto3.client("lambda").get_function_configuration(FunctionName=alias.function, Qualifier="live"))


def test_an_alias_behind_latest_is_moved_to_a_version_of_it(deployed: Alias) -> None:
    client = boto3.client("lambda")
    # What `sam deploy --parameter-overrides LogLevel=DEBUG` does to a function: $LATEST changes, no version.
    client.update_function_configuration(
        FunctionName=deployed.function, Environment={"Variables": {"POWERTOOLS_LOG_LEVEL": "DEBUG"}}, Timeout=60
    )
    assert _live(deployed)["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "INFO"

    checked = list(align(client, [deployed], apply=False))
    assert [o.changed for o in checked] == [["Timeout", "Environment"]]
    assert _live(deployed)["Version"] == "1", "a check must not move the alias"

    out = io.StringIO()
    assert report(align(client, [deployed]), True, out) == 1
    live = _live(deployed)
    assert live["Version"] == "2" and live["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert live["Timeout"] == 60
    assert "moved" in out.getvalue() and "Timeout, Environment" in out.getvalue()

    again = io.StringIO()
    assert report(align(client, [deployed]), True, again) == 0, "a current alias is left alone"
    assert again.getvalue().startswith("current") and _live(deployed)["Version"] == "2"


def test_new_code_on_latest_is_published_too(deployed: Alias) -> None:
    client = boto3.client("lambda")
    code = lambda_zip("def handler(e, c):\n    return 2\n")
    client.update_function_code(FunctionName=deployed.function, ZipFile=code)
    [outcome] = list(align(client, [deployed]))
    assert outcome.changed == ["CodeSha256"]
    latest = client.get_function_configuration(FunctionName=deployed.function)
    assert _live(deployed)["CodeSha256"] == latest["CodeSha256"]

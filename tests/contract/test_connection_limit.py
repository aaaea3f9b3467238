"""MaxConnectionsPerUser: one parameter, its bounds those of the setting, given to every function that reads or
trims a user's connections (docs/INBOX.md#connections-per-user)."""

from __future__ import annotations

from notify.settings import InAppSettings, load

from local.cfn import template

FUNCTIONS = ("ApiFunction", "WorkerFunction", "WebSocketFunction")


def test_the_parameter_has_the_settings_default_and_bounds() -> None:
    parameter = template().parameters["MaxConnectionsPerUser"]
    field = InAppSettings.model_fields["max_connections_per_user"]
    bounds = {type(m).__name__: m for m in field.metadata}
    assert parameter["Type"] == "Number"
    assert parameter["Default"] == field.default == 10
    assert parameter["MinValue"] == bounds["Ge"].ge == 1
    assert parameter["MaxValue"] == bounds["Le"].le == 100


def test_each_function_that_reads_a_users_connections_gets_it() -> None:
    functions = template().functions()
    for name in FUNCTIONS:
        assert functions[name].environment["MAX_CONNECTIONS_PER_USER"] == {"Ref": "MaxConnectionsPerUser"}, name
    env = {"INBOX_TABLE": "i", "CONNECTIONS_TABLE": "c", "MAX_CONNECTIONS_PER_USER": "100"}
    assert load(InAppSettings, env).max_connections_per_user == 100

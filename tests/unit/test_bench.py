"""The benchmarks' own plumbing (no timing is asserted anywhere: `make bench` prints its numbers)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from notify.settings import ApiSettings, WebSocketSettings, WorkerSettings, load

from bench import cold_start, fifo, peers, worker

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_bench_does_not_import_the_test_tree() -> None:
    for source in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n == "tests" or n.startswith("tests.") for n in names), f"{source.name} imports {names}"


def test_make_bench_runs_every_benchmark() -> None:
    def has_main(source: Path) -> bool:
        body = ast.parse(source.read_text()).body
        return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in body)

    benchmarks = {source.stem for source in BENCH.glob("*.py") if source.stem != "__main__" and has_main(source)}
    called = {
        node.func.value.id
        for node in ast.walk(ast.parse((BENCH / "__main__.py").read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "main"
        and isinstance(node.func.value, ast.Name)
    }
    assert "ingest" in benchmarks and called == benchmarks


@pytest.mark.parametrize(
    ("function", "model"),
    [("ApiFunction", ApiSettings), ("WorkerFunction", WorkerSettings), ("WebSocketFunction", WebSocketSettings)],
)
def test_the_snapstart_benchmark_configures_each_function_as_template_yaml_does(function: str, model: type) -> None:
    assert function in cold_start.snapstart_functions()
    env = cold_start.function_environment(function)
    load(model, env)  # a SettingsError here is what stopped `make bench` once
    if function == "ApiFunction":
        assert (env["USER_TOKEN_SECONDS"], env["DEV_USER_TOKENS"]) == ("3600", "false")  # the template's, not local's


def test_handler_output_goes_to_the_log_not_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "bench" / "handlers.log"
    log.parent.mkdir()
    log.write_text("an earlier run\n")
    monkeypatch.setattr(peers, "HANDLER_LOG", log)
    with peers.handler_output() as path:
        print('{"_aws": "a metric line"}')
    with peers.handler_output():
        print("the next benchmark's line")
    print("a number")
    assert path == log
    assert log.read_text() == '{"_aws": "a metric line"}\nthe next benchmark\'s line\n'
    assert capsys.readouterr().out == "a number\n"


def test_hooks_capture_a_copy_of_each_request_and_count_it() -> None:
    hooks = worker._Hooks()
    params = {"Key": {"pk": {"S": "JOB#1"}}}
    hooks.record(params, "before-parameter-build.dynamodb.UpdateItem")  # not capturing: nothing kept
    hooks.capture = []
    hooks.record(params, "before-parameter-build.dynamodb.UpdateItem")
    params["Key"]["pk"] = {"S": "changed"}
    hooks.count("before-send.sesv2.SendEmail")
    assert hooks.capture == [("UpdateItem", {"Key": {"pk": {"S": "JOB#1"}}})]
    assert hooks.calls == {"sesv2.SendEmail": 1}


def test_a_fifo_entry_is_the_standard_message_grouped_by_its_user_and_deduplicated_by_its_job_id() -> None:
    """bench/fifo.py's entries for the FIFO jobs queue: the same body and attributes as the standard publisher's, with
    no per-message delay (a FIFO queue refuses one)."""
    job = worker._jobs([7])[0]
    entry = fifo.fifo_entry(3, job)
    assert entry.pop("MessageGroupId") == "demo-user-7"
    assert entry.pop("MessageDeduplicationId") == job.job_id
    assert entry == {
        "Id": "3",
        "MessageBody": job.model_dump_json(exclude_none=True),
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "job"},
            "event_id": {"DataType": "String", "StringValue": job.event_id},
        },
    }


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "abc"}, 3),
        ({"N": "12345"}, 4),
        ({"BOOL": True}, 1),
        ({"L": [{"S": "ab"}]}, 3 + 1 + 2),
        ({"M": {"k": {"S": "v"}}}, 3 + 1 + 1 + 1),
    ],
)
def test_item_sizes_follow_dynamodb_rules(value: dict[str, object], size: int) -> None:
    assert worker._attribute_size(value) == size

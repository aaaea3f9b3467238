"""`make chaos` at a small size: the same faults on a shorter timeline, and the same goal (docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from local.cfn import ROOT
from local.launch import pythonpath


def test_a_quick_chaos_run_loses_nothing_sends_nothing_twice_and_leaves_nothing_stuck(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KAFKA_"))}
    env["PYTHONPATH"] = pythonpath()
    run = subprocess.run(
        [sys.executable, "-m", "tools.chaos", "--quick", "--seed", "7", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # the quick run's drain ceiling is 420 s; it normally drains in a minute or two
    )
    assert (tmp_path / "result.json").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    keys = ("accepted", "statuses", "drain", "stuck", "still_moving", "in_backlog", "lost", "duplicates", "cut_offs")
    summary = {k: result[k] for k in keys}
    assert run.returncode == 0, (summary, run.stdout[-3000:])
    assert (result["lost"], result["duplicates"], result["stuck"]) == (0, 0, 0)
    # Drained to the end: every job terminal, not a quiet period or the ceiling ending the wait.
    assert result["drain"]["ended"] == "terminal", summary
    assert (result["still_moving"], result["in_backlog"], result["stuck_with_letter"]) == (0, 0, 0)
    assert "drain: every accepted job terminal" in run.stdout
    # Every fault happened, or the run proved nothing.
    assert result["accepted"] >= 150 and result["accepted_by"].get("segment") == 40
    assert len(result["cut_offs"]) == 2 and all(c["records"] >= 10 for c in result["cut_offs"])
    assert result["poison_produced"] > 0 and result["poison_records_lettered"] == result["poison_produced"]
    runaway = result["runaway_statuses"]
    assert result["runaway_failed_template_error"] + runaway.get("EXPIRED", 0) == result["runaway_jobs"]
    assert result["auth"]["errors_injected"] > 0 and result["auth"]["delays_injected"] > 0
    calls = result["provider_calls"]
    assert calls["emails_throttled"] > 0 and calls["emails_accepted"] == calls["emails_in_moto"]
    assert result["sent_but_provider_never_reached"] == 0
    assert result["failed_without_letter"] == 0
    assert any("Kafka broker restarted" in what for _, what in result["timeline"])
    # The webhooks: every subscribed change received or waiting for a retry, none under two ids, each signed.
    hooks = result["webhooks"]
    assert (hooks["lost"], hooks["duplicates_distinct_ids"], hooks["invalid_signatures"]) == (0, 0, 0), hooks
    assert hooks["unexpected"] == 0, hooks  # no message for a change that never happened
    assert hooks["expected"] >= result["accepted"] and hooks["failures_injected"] > 0, hooks
    assert hooks["received_unique"] - hooks["unexpected"] + hooks["waiting_retry"] == hooks["expected"], hooks

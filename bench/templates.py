"""Runaway templates: time to refusal and the process's peak memory, each case in a fresh interpreter.

Each case is rendered with ``notify.rendering.render`` (the function the worker and the preview use) in
its own process, so its peak resident set (``VmHWM``) belongs to that case alone: the numbers are the
peak after importing the service's modules, and how much the refused render added on top. The time is the
median of several renders of the compiled template; the first render (which compiles) is given apart.
A default template rendered the same way is the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import arguments

ROOT = Path(__file__).resolve().parent.parent
CASES: dict[str, str] = {
    "nested range loops": "{% for a in range(10000) %}{% for b in range(10000) %}{{ a * b }}{% endfor %}{% endfor %}",
    "10 ** 1000000": "{{ 10 ** 1000000 }}",
    "'x' * 10**9": "{{ 'x' * 10**9 }}",
    "endless macro recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "macro calling itself twice, 40 deep": (
        "{% macro m(n) %}{% if n < 40 %}{{ m(n + 1) }}{{ m(n + 1) }}{% endif %}{% endmacro %}{{ m(0) }}"
    ),
    "huge output (10,000 × 90,000 chars)": "{% for i in range(10000) %}{{ 'x' * 90000 }}{% endfor %}",
    "huge buffered {% set %} block": (
        "{% set x %}{% for i in range(10000) %}{{ 'y' * 90000 }}{% endfor %}{% endset %}{{ x|length }}"
    ),
    "'%0999999999d' % 1": "{{ '%0999999999d' % 1 }}",
    "{{ 1/0 }}": "{{ 1/0 }}",
}
BASELINE = "default new_episode email (3 parts)"
RUNS = 20  # renders of the compiled template per case, the median printed (1 with --quick)


def _maxrss_mib() -> float:
    """This process's peak resident set, from /proc. Not ``ru_maxrss``: Linux carries that over an exec, so a
    case started by ``python -m bench`` (hundreds of MiB by then) would report its parent's peak."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024  # kB


def measure(name: str, runs: int) -> dict[str, object]:
    """Render one case ``runs`` times after a first render in this process; the result as a dict (run in a child
    process by :func:`run`)."""
    from notify.catalog import EVENT_TYPES
    from notify.default_templates import DEFAULTS
    from notify.errors import TemplateFailed
    from notify.models import Channel
    from notify.records import Template, UserProfile
    from notify.rendering import render, render_context

    spec = EVENT_TYPES["new_episode"]
    context = render_context(
        spec.name, spec.sample_payload(), UserProfile("u-1", email="u-1@example.com").template_context(), {}
    )
    if name == BASELINE:
        template = Template("new_episode", Channel.EMAIL, "en", 1, "t", **DEFAULTS[("new_episode", Channel.EMAIL)])
    else:
        template = Template("new_episode", Channel.PUSH, "en", 1, "t", title="t", body=CASES[name])
    before = _maxrss_mib()
    reason = "rendered"
    samples: list[float] = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        try:
            render(template, context)
        except TemplateFailed as exc:
            reason = getattr(exc, "reason", str(exc))
        samples.append(time.perf_counter() - started)
    return {
        "name": name,
        "first_ms": samples[0] * 1000,
        "median_ms": statistics.median(samples[1:]) * 1000,
        "rss_before_mib": before,
        "rss_peak_mib": _maxrss_mib(),
        "reason": reason,
    }


def run(runs: int = RUNS) -> list[dict[str, object]]:
    """Every case, each in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "layers/common"), str(ROOT)])}
    results = []
    for name in [BASELINE, *CASES]:
        out = subprocess.run(
            [sys.executable, "-m", "bench.templates", "--case", name, "--runs", str(runs)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main(quick: bool = False) -> None:
    """Print every case's times and memory (``quick``: one render of each after the first)."""
    runs = 1 if quick else RUNS
    print(f"templates: time to refusal (median of {runs}, first render with compile apart) and peak RSS")
    print(f"  {'case':40} {'median':>9} {'first':>9} {'RSS before':>11} {'peak':>8} {'added':>7}  reason")
    for r in run(runs):
        added = float(r["rss_peak_mib"]) - float(r["rss_before_mib"])  # type: ignore[arg-type]
        print(
            f"  {r['name']!s:40} {r['median_ms']:7.2f}ms {r['first_ms']:7.2f}ms {r['rss_before_mib']:8.1f}MiB"
            f" {r['rss_peak_mib']:5.1f}MiB {added:5.1f}MiB  {str(r['reason'])[:70]}"
        )


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--case", choices=[BASELINE, *CASES], help=argparse.SUPPRESS)  # run's child processes
    parser.add_argument("--runs", type=int, default=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.case, args.runs)))
    else:
        main(quick=args.quick)

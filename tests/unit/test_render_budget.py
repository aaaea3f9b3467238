"""The render budget: every limit, every exception a template can raise, and absent optional fields."""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import pytest
from notify.catalog import EVENT_TYPES
from notify.default_templates import DEFAULTS
from notify.errors import PermanentError, TemplateFailed
from notify.models import Channel
from notify.records import Template, UserProfile
from notify.rendering import (
    MAX_ITEMS,
    MAX_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_VALUE_CHARS,
    RenderFailed,
    render,
    render_context,
)
from notify.services.templates import required_payload, sample_digest


def _template(**parts: Any) -> Template:
    return Template("new_episode", Channel.EMAIL, "en", 7, "new_episode.email.en", **parts)


def _no_time() -> float:
    """A render clock that never moves: a test about another limit cannot hit the CPU-time deadline first
    (a loaded machine or a garbage collection in the rendering thread could, with the real clock)."""
    return 0.0


def _fails(source: str, context: dict[str, Any] | None = None, part: str = "body_text") -> RenderFailed:
    with pytest.raises(RenderFailed) as info:
        render(_template(**{part: source}), context or {}, clock=_no_time)
    assert info.value.part == part
    return info.value


# -- every limit -----------------------------------------------------------------------------------


def test_nested_loops_stop_at_the_iteration_limit() -> None:
    failed = _fails("{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}")
    assert f"more than {MAX_ITERATIONS:,} loop iterations" in failed.reason


def test_loops_over_a_payload_list_count_too() -> None:
    items = list(range(200))
    text = "{% for a in items %}{% for b in items %}.{% endfor %}{% endfor %}"
    assert "loop iterations" in _fails(text, {"items": items}).reason
    assert render(_template(body_text="{% for a in items %}{{ a }}{% endfor %}"), {"items": items[:5]}).text == "01234"


def test_macros_count_as_iterations_and_deep_recursion_is_a_template_error() -> None:
    doubling = "{% macro m(n) %}{% if n < 40 %}{{ m(n + 1) }}{{ m(n + 1) }}{% endif %}{% endmacro %}{{ m(0) }}"
    assert "macro calls" in _fails(doubling).reason
    endless = "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}"
    assert _fails(endless).reason.startswith("RecursionError")


def test_range_is_bounded() -> None:
    assert f"a range of 1,000,000 items (the limit is {MAX_ITEMS:,})" in _fails("{{ range(1000000)|length }}").reason
    assert render(_template(body_text="{{ range(3)|list }}"), {}).text == "[0, 1, 2]"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x' * 10**9 }}",
        "{{ 'x' * 1000000000 }}",
        "{{ 1000000000 * 'x' }}",
        "{{ ['x'] * 1000000 }}",
        "{{ 'x' * n }}",
    ],
)
def test_repetition_is_refused_before_it_allocates(source: str) -> None:
    assert "repeating with *" in _fails(source, {"n": 10**9}).reason or "bits" in _fails(source, {"n": 10**9}).reason


@pytest.mark.parametrize(
    "source", ["{{ 10 ** 100000 }}", "{{ 2 ** 2000 }}", "{{ 3 ** 1000 }}", "{{ (10 ** 300) * (10 ** 300) }}"]
)
def test_big_integers_are_refused(source: str) -> None:
    assert "bits" in _fails(source).reason


def test_ordinary_arithmetic_still_works() -> None:
    assert render(_template(body_text="{{ (2 ** 1000) % 7 }}"), {}).text == "2"
    text = "{{ 2 ** 10 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 1 / 4 }} {{ 'ab' * 2 }} {{ [1] + [2] }} {{ '%s=%d' % ('a', 1) }}"
    assert render(_template(body_text=text), {}).text == "1024 3 1 0.25 abab [1, 2] a=1"


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'x'|center(999999999) }}",
        "{{ 'x'.center(999999999) }}",
        "{{ 'x'.ljust(999999999) }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '%0999999999d'|format(1) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ ('{0}' * 1000).format('y' * 90000) }}",
        "{{ ('x' * 90000)|replace('x', 'y' * 1000) }}",
        "{{ ('x' * 90000).replace('', 'yy') }}",
        "{{ ('\\n' * 90000)|indent(50000) }}",
        "{{ [1]|batch(999999999, 'x')|list }}",
        "{{ [1]|slice(999999999, 'x')|list }}",
        "{{ ('\\t' * 90000).expandtabs(100000) }}",
        "{{ (1).to_bytes(999999999, 'big') }}",
        "{{ ['y' * 90000, 'y' * 90000]|join }}",
        "{% set s = 'y' * 60000 %}{{ s ~ s }}",
        "{{ ''.join(['y' * 90000, 'y' * 90000]) }}",
        "{{ ''.join(range(100)|map('string')|map('center', 5000)) }}",
        "{% set l = ['y' * 90000] * 10000 %}{{ l.count('z') }}",
    ],
)
def test_operations_that_multiply_their_input_are_estimated_first(source: str) -> None:
    failed = _fails(source)
    assert any(word in failed.reason for word in ("would make", "the limit is", "characters of input"))


def test_a_huge_structure_cannot_be_turned_into_text_or_compared() -> None:
    assert "over 100,000 characters" in _fails("{% set l = ['x' * 90000] * 1000 %}{{ l }}").reason
    assert "comparison" in _fails("{% set a = [[1] * 10000] * 10000 %}{{ a == [a] }}").reason
    shared = "{% set ns = namespace(a='x' * 90000) %}{% set x %}{{ [ns, ns] }}{% endset %}{{ x|length }}"
    assert "over 100,000 characters" in _fails(shared).reason
    control = "{% set x %}{{ [c * 90000] }}{% endset %}{{ x|length }}"  # each prints as four characters
    assert "a value of 360,004 characters" in _fails(control, {"c": "\x01"}).reason


def test_output_is_cut_at_the_limit() -> None:
    failed = _fails("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}")
    assert f"the output is over {MAX_OUTPUT_CHARS:,} characters" == failed.reason


def test_buffered_output_counts_against_the_work_budget() -> None:
    set_block = "{% set x %}{% for i in range(10000) %}{{ 'y' * 50000 }}{% endfor %}{% endset %}{{ x|length }}"
    assert "characters of work" in _fails(set_block).reason
    literal = "{% set x %}{% for i in range(10000) %}" + "z" * 1000 + "{% endfor %}{% endset %}{{ x|length }}"
    assert "characters of work" in _fails(literal).reason


def test_a_value_may_not_outgrow_the_value_limit() -> None:
    doubling = "{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    assert f"the limit is {MAX_VALUE_CHARS:,}" in _fails(doubling).reason


def test_the_deadline_is_checked_as_the_template_runs() -> None:
    ticks = itertools.count()

    def slow_clock() -> float:
        return next(ticks) * 0.01  # every look at the clock costs 10 ms

    with pytest.raises(RenderFailed) as info:
        render(_template(body_text="{% for i in range(1000) %}{{ i }}{% endfor %}"), {}, clock=slow_clock)
    assert info.value.reason.startswith("rendering took longer than")


def test_runaway_templates_keep_memory_flat() -> None:
    runaways = [
        "{% for a in range(10000) %}{% for b in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endfor %}",
        "{{ 'x' * 10**9 }}",
        "{% set x %}{% for i in range(10000) %}{{ 'y' * 90000 }}{% endfor %}{% endset %}{{ x }}",
        "{% set s = 'x' * 90000 %}{{ (s|list)|map('replace', 'x', s)|list|length }}",
    ]
    tracemalloc.start()
    try:
        for source in runaways:
            with pytest.raises(TemplateFailed):
                render(_template(body_text=source), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


# -- any exception is a TemplateFailed ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ 1/0 }}", "ZeroDivisionError: division by zero"),
        ("{{ 1 // 0 }}", "ZeroDivisionError"),
        ("{{ 'a' + 1 }}", "TypeError"),
        ("{{ 10.0 ** 400 }}", "OverflowError"),
        ("{{ [1][5] }}", "UndefinedError"),
        ("{{ missing }}", "UndefinedError: 'missing' is undefined"),
        ("{% include 'other' %}", "TypeError"),
        ("{{ x", "line 1: unexpected end of template"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),
    ],
)
def test_any_exception_a_template_raises_is_a_template_failure(source: str, reason: str) -> None:
    failed = _fails(source)
    assert isinstance(failed, TemplateFailed) and isinstance(failed, PermanentError)
    assert reason in failed.reason or failed.reason.startswith(reason)
    assert str(failed).startswith("template new_episode.email.en v7 body_text: ")


def test_the_failing_part_is_named() -> None:
    with pytest.raises(RenderFailed) as info:
        render(_template(subject="ok", body_text="ok", body_html="<p>{{ 1/0 }}</p>"), {})
    assert info.value.part == "body_html"


# -- the render context ------------------------------------------------------------------------------


def test_optional_payload_fields_are_absent_not_errors() -> None:
    context = render_context(
        "user_registered", {"confirmation_url": "https://x.test/c"}, UserProfile("u1").template_context(), {}
    )
    message = render(
        Template(
            "user_registered",
            Channel.EMAIL,
            "en",
            1,
            "user_registered.email.en",
            subject="Welcome{% if first_name %}, {{ first_name }}{% endif %}!",
            body_text="[{{ first_name }}][{{ user.first_name }}][{{ first_name|default('friend') }}]",
        ),
        context,
    )
    assert (message.subject, message.text) == ("Welcome!", "[][][friend]")


def test_unknown_names_stay_strict() -> None:
    context = render_context("user_registered", {"confirmation_url": "https://x.test/c"}, {"id": "u1"}, {})
    with pytest.raises(RenderFailed, match="'nickname' is undefined"):
        render(_template(body_text="{{ nickname }}"), context)
    with pytest.raises(RenderFailed, match="nickname"):
        render(_template(body_text="{{ user.nickname }}"), context)


@pytest.mark.parametrize(("event_type", "channel"), sorted(DEFAULTS, key=str))
def test_every_default_template_renders_with_only_the_required_fields(event_type: str, channel: Channel) -> None:
    spec = EVENT_TYPES[event_type.removesuffix(".digest")]  # a digest variant: its type's, in a digest of one
    payload = required_payload(spec)
    assert all(spec.payload_model.model_fields[name].is_required() for name in payload)
    user = UserProfile("demo-user-2", email="demo-user-2@example.com").template_context()
    event = {"event_id": "e-1", "event_type": event_type, "job_id": "j-1"}
    template = Template(
        event_type, channel, "en", 1, f"{event_type}.{channel.value}.en", **DEFAULTS[(event_type, channel)]
    )
    digest = sample_digest(payload, 1) if event_type.endswith(".digest") else None
    message = render(template, render_context(event_type, payload, user, event, digest=digest))
    rendered = [p for p in (message.subject, message.text, message.html, message.title, message.body) if p]
    assert rendered and not any("None" in p for p in rendered)


def test_each_thread_renders_under_its_own_budget() -> None:
    from concurrent.futures import ThreadPoolExecutor

    runaway = _template(body_text="{% for a in range(10000) %}{% for b in range(10000) %}.{% endfor %}{% endfor %}")
    small = _template(body_text="{% for a in range(5000) %}.{% endfor %}")

    def attempt(template: Template) -> str:
        try:
            return render(template, {}, clock=_no_time).text or ""
        except RenderFailed as exc:
            return exc.reason

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, [runaway, small, runaway, small]))
    assert results[1] == results[3] == "." * 5000
    assert "loop iterations" in results[0] and "loop iterations" in results[2]


def test_the_compiled_template_cache_is_bounded_by_source_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from notify import sandbox

    monkeypatch.setattr(sandbox, "CACHE_SOURCE_CHARS", 1_000)
    for i in range(10):
        sandbox.compile_source(f"{i}" + "x" * 300, False)
    assert sandbox._cache_chars <= 1_000
    assert sandbox.compile_source("9" + "x" * 300, False) is sandbox.compile_source("9" + "x" * 300, False)

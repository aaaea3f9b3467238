"""A Jinja2 sandbox with a render budget: output size, value size, loop iterations, arithmetic and time.

Jinja2's ``ImmutableSandboxedEnvironment`` stops a template from reaching Python internals, but not from
asking for ``'x' * 10**9``, ``9**9**9``, nested ``range`` loops or a macro that calls itself twice per
call. :class:`BoundedEnvironment` closes those holes where the template's code runs:

- every binary operator goes through :meth:`BoundedEnvironment.call_binop`, which refuses, *before*
  computing it, a string or list that would pass :data:`MAX_VALUE_CHARS` / :data:`MAX_ITEMS` and a number
  that would pass :data:`MAX_INT_BITS`;
- every call (methods, macros, globals), filter and test is checked before it runs: its inputs may not
  exceed :data:`MAX_VALUE_CHARS` in text form, and the calls that multiply their input (``center``,
  ``replace``, ``join``, ``format``, ``indent``, ``tojson`` ...) are estimated first;
- the code generator inserts a budget tick at the top of every loop body and macro body (at most
  :data:`MAX_ITERATIONS` per render) and wraps ``~`` concatenation and comparison operands;
- everything produced is charged to a work budget (:data:`MAX_WORK_CHARS` per render), which bounds
  the memory a render can take even inside ``{% set %}`` blocks, macros and filter blocks;
- every hook checks the deadline (:data:`MAX_RENDER_SECONDS` of this thread's CPU time, so other threads
  of a busy worker cannot make a template miss it);
- output is streamed with ``Template.generate()`` and cut at :data:`MAX_OUTPUT_CHARS`.

A broken limit raises :class:`BudgetExceeded` (a :class:`notify.errors.TemplateFailed`).
"""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Optional, cast

from jinja2 import StrictUndefined, Template, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame, operators, optimizeconst
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_context

from notify.errors import TemplateFailed

#: Characters one part (subject, body_text, body_html, title, body) may render to.
MAX_OUTPUT_CHARS = 100_000
#: Characters (or items) any one value may have: a string, a list, or the text form of a structure.
MAX_VALUE_CHARS = 100_000
#: Items in a ``range()`` or a list built with ``*`` / ``+``.
MAX_ITEMS = 10_000
#: Loop iterations plus macro calls in one render (every part together).
MAX_ITERATIONS = 10_000
#: Characters and items produced by every operation of one render together (intermediate values included).
MAX_WORK_CHARS = 1_000_000
#: Bits an integer may reach through ``*`` or ``**`` (about 308 decimal digits).
MAX_INT_BITS = 1_024
#: CPU time of the rendering thread one render (every part together) may take.
MAX_RENDER_SECONDS = 0.25

_TIME_CHECK_EVERY = 256  # nodes walked between two clock reads when measuring a large structure


class BudgetExceeded(TemplateFailed):
    """A template asked for more than its render budget allows."""


@dataclass
class Budget:
    """What one render may still spend; shared by every part rendered under it."""

    clock: Callable[[], float] = time.thread_time
    seconds: float = MAX_RENDER_SECONDS
    deadline: float = 0.0
    iterations: int = 0
    work: int = 0
    failure: Optional[str] = field(default=None)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = self.clock() + self.seconds

    def fail(self, reason: str) -> None:
        """Record the first broken limit (so a swallowed exception cannot hide it) and raise."""
        if self.failure is None:
            self.failure = reason
        raise BudgetExceeded(reason)

    def check_time(self) -> None:
        """Raise BudgetExceeded once the render's CPU time passes its deadline."""
        if self.clock() > self.deadline:
            self.fail(f"rendering took longer than {self.seconds:g} s")

    def tick(self, chars: int = 0) -> None:
        """One loop iteration or macro call, which emits up to ``chars`` characters of literal text."""
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            self.fail(f"more than {MAX_ITERATIONS:,} loop iterations and macro calls")
        self.charge(chars)

    def charge(self, amount: int) -> None:
        """Characters or items just produced."""
        self.work += amount
        if self.work > MAX_WORK_CHARS:
            self.fail(f"more than {MAX_WORK_CHARS:,} characters of work (values built while rendering)")
        self.check_time()

    def account(self, value: Any) -> Any:
        """Check and charge a value an operation produced; return it."""
        if isinstance(value, (str, bytes, bytearray)):
            if len(value) > MAX_VALUE_CHARS:
                self.fail(f"a value of {len(value):,} characters (the limit is {MAX_VALUE_CHARS:,})")
            self.charge(len(value))
        elif isinstance(value, (list, tuple, dict, set, frozenset)):
            if len(value) > MAX_VALUE_CHARS:
                self.fail(f"a collection of {len(value):,} items (the limit is {MAX_VALUE_CHARS:,})")
            self.charge(len(value))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            self.fail(f"a number of {value.bit_length():,} bits (the limit is {MAX_INT_BITS:,})")
        else:
            self.check_time()
        return value

    def within(self, estimate: int, what: str) -> None:
        """Refuse an operation whose result would pass the value limit, before it runs."""
        if estimate > MAX_VALUE_CHARS:
            self.fail(f"{what} would make about {estimate:,} characters or items (the limit is {MAX_VALUE_CHARS:,})")


_active: ContextVar[Optional[Budget]] = ContextVar("notify_render_budget", default=None)


def current() -> Budget:
    """The budget of the render in progress (a fresh one outside any render, so checks still apply)."""
    return _active.get() or Budget()


@contextmanager
def budget_scope(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one the hooks charge while rendering in this thread."""
    token = _active.set(budget)
    try:
        yield budget
    finally:
        _active.reset(token)


# -- measuring values ---------------------------------------------------------------------------------


@dataclass
class Size:
    """The measure of a value: about how long its text is, how many objects it holds, and how deep they nest."""

    chars: int = 0  # about the length of str(value)
    nodes: int = 0  # objects walked
    depth: int = 0  # deepest nesting


def measure(value: Any, budget: Budget, limit: int = MAX_VALUE_CHARS) -> Size:
    """The size of ``value``'s text form, walked iteratively; stops as soon as it passes ``limit``."""
    size = Size()
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        size.nodes += 1
        size.depth = max(size.depth, depth)
        if size.nodes % _TIME_CHECK_EVERY == 0:
            budget.check_time()
        if isinstance(item, (str, bytes, bytearray)):
            size.chars += len(item) + 2
        elif isinstance(item, Undefined) or item is None:
            size.chars += 4
        elif isinstance(item, bool):
            size.chars += 5
        elif isinstance(item, int):
            size.chars += item.bit_length() // 3 + 2
        elif isinstance(item, float):
            size.chars += 24
        elif isinstance(item, dict):
            size.chars += 2 + 2 * len(item)
            stack.extend((v, depth + 1) for pair in item.items() for v in pair)
        elif isinstance(item, (list, tuple, set, frozenset)):
            size.chars += 2 + 2 * len(item)
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, range):
            size.chars += 8 * len(item)
        elif isinstance(item, Namespace):  # walked at every reference: a cycle only grows until the limit
            size.chars += 13
            stack.append((dict(item._Namespace__attrs), depth + 1))  # type: ignore[attr-defined]
        else:
            size.chars += 64
        if size.chars > limit:
            break
    return size


def _check_inputs(budget: Budget, what: str, values: Any) -> Size:
    """Every input of one operation together may not pass twice the value limit in text form."""
    size = measure(values, budget, 2 * MAX_VALUE_CHARS)
    if size.chars > 2 * MAX_VALUE_CHARS:
        budget.fail(f"{what} was given more than {2 * MAX_VALUE_CHARS:,} characters of input")
    return size


def _text_len(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, bytearray)) else 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- format strings --------------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_BRACE_FIELD = re.compile(r"\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}")
_DIGITS = re.compile(r"\d+")


def _check_format(budget: Budget, fmt: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], percent: bool) -> None:
    """``%`` and ``str.format``: widths and precisions, and the fields times the biggest argument."""
    if not isinstance(fmt, str):
        return
    values = list(args) + list(kwargs.values())
    if percent and len(args) == 1 and isinstance(args[0], (tuple, dict)):
        values = list(args[0].values() if isinstance(args[0], dict) else args[0])
    if percent:
        specs = list(_PERCENT_SPEC.finditer(fmt))
        widths = [int(g) for m in specs for g in m.groups() if g and g != "*"]
        starred = any("*" in m.group(0) for m in specs)
    else:
        specs = list(_BRACE_FIELD.finditer(fmt))
        widths = [int(d) for m in specs if ":" in m.group(0) for d in _DIGITS.findall(m.group(0).split(":", 1)[1])]
        starred = any(m.group(0).count("{") > 1 for m in specs)
    if starred:  # widths taken from the arguments
        widths += [_int(v) for v in values]
    widest = max(widths, default=0)
    biggest = max((measure(v, budget).chars for v in values), default=0)
    budget.within(len(fmt) + len(specs) * (biggest + widest), "formatting")


# -- what calls, filters and tests may do ---------------------------------------------------------------


def _estimate_method(budget: Budget, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Methods of built-in values that can multiply their input: estimate before they run."""
    obj = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format and str.format_map
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    params = list(args) + list(kwargs.values())
    if isinstance(owner, (str, bytes, bytearray)):
        n = len(owner)
        if name in ("center", "ljust", "rjust", "zfill"):
            budget.within(max(n, _int(params[0]) if params else 0), f"str.{name}")
        elif name == "expandtabs":
            tab = _int(params[0]) if params else 8
            tabs = owner.count("\t") if isinstance(owner, str) else bytes(owner).count(b"\t")
            budget.within(n + tabs * tab, "str.expandtabs")
        elif name == "replace" and len(params) >= 2:
            budget.within(_replaced(owner, params[0], params[1]), "str.replace")
        elif name == "translate" and params and isinstance(params[0], dict):
            widest = max((_text_len(v) for v in params[0].values()), default=1)
            budget.within(n * max(widest, 1), "str.translate")
        elif name in ("format", "format_map") and isinstance(owner, str):
            kw = params[0] if name == "format_map" and params and isinstance(params[0], Mapping) else kwargs
            _check_format(budget, owner, args if name == "format" else (), kw, percent=False)
    elif isinstance(owner, int) and name == "to_bytes":
        budget.within(_int(params[0]) if params else 1, "int.to_bytes")


def _replaced(s: Any, old: Any, new: Any) -> int:
    if not isinstance(s, (str, bytes, bytearray)) or type(old) is not type(new) and not isinstance(old, str):
        return _text_len(s)
    try:
        count = len(s) + 1 if len(old) == 0 else s.count(old)
    except TypeError:
        return _text_len(s)
    return len(s) + count * max(len(new) - len(old), 0)


def _join_estimate(budget: Budget, items: list[Any], sep: Any) -> int:
    return sum(measure(i, budget).chars for i in items) + _text_len(sep) * max(len(items) - 1, 0)


_PASSED_NAMES = frozenset({"eval_ctx", "environment", "env", "context"})


def _bind(
    func: Callable[..., Any], passed: tuple[Any, ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """A filter's arguments by name (an async-capable filter's signature omits the argument Jinja passes)."""
    try:
        signature = inspect.signature(func)
        first = next(iter(signature.parameters), "")
        given = (*passed, *args) if first in _PASSED_NAMES else args
        return dict(signature.bind_partial(*given, **kwargs).arguments)
    except (TypeError, ValueError):
        return {}


def _estimate_filter(
    budget: Budget,
    name: str,
    func: Callable[..., Any],
    value: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    passed: tuple[Any, ...],
) -> tuple[Any, tuple[Any, ...]]:
    """Filters that can multiply their input; returns the value and args to use (``join`` lists its input)."""
    if name not in _AMPLIFYING_FILTERS:
        return value, args
    bound = _bind(func, passed, (value, *args), kwargs)
    if name == "center":
        budget.within(max(_text_len(value), _int(bound.get("width", 80))), "the center filter")
    elif name == "indent":
        width = bound.get("width", 4)
        pad = _text_len(width) if isinstance(width, str) else _int(width)
        lines = value.count("\n") + 1 if isinstance(value, str) else 1
        budget.within(_text_len(value) + lines * pad, "the indent filter")
    elif name == "batch" and bound.get("fill_with") is not None:
        budget.within(_int(bound.get("linecount")), "the batch filter")
    elif name == "slice":
        budget.within(_int(bound.get("slices")), "the slice filter")
    elif name == "replace":
        budget.within(_replaced(value, bound.get("old"), bound.get("new")), "the replace filter")
    elif name == "join":
        if not isinstance(value, (str, Undefined)):
            value = list(value)
            budget.account(value)
        budget.within(
            _join_estimate(budget, value if isinstance(value, list) else [], bound.get("d", "")), "the join filter"
        )
    elif name == "format":
        _check_format(budget, value, args, kwargs, percent=True)
    elif name in ("tojson", "pprint"):
        size = measure(value, budget)
        indent = bound.get("indent") or 1
        if isinstance(indent, str):
            indent = len(indent)
        budget.within(size.chars * 6 + size.nodes * size.depth * max(_int(indent), 1), f"the {name} filter")
    elif name == "wordwrap":
        width = max(_int(bound.get("width", 79)), 1)
        wrap = bound.get("wrapstring") or "\n"
        budget.within(_text_len(value) + (_text_len(value) // width + 1) * _text_len(wrap), "the wordwrap filter")
    elif name == "urlize":
        extra = sum(_text_len(v) for v in (bound.get("target"), bound.get("rel")))
        budget.within(_text_len(value) * 4 + (_text_len(value) // 4 + 1) * extra, "the urlize filter")
    elif name == "sum":
        start = bound.get("start", 0)
        if not isinstance(start, (int, float)):
            budget.fail("the sum filter adds numbers only")
    return value, args


_AMPLIFYING_FILTERS = frozenset(
    {"center", "indent", "batch", "slice", "replace", "join", "format", "tojson", "pprint", "wordwrap", "urlize", "sum"}
)


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so its inputs and result are checked (``pass_context``, so it is never run at compile time)."""
    kind = getattr(func, "jinja_pass_arg", None)

    @pass_context
    def guarded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        _check_inputs(budget, f"the {name} filter", (value, args, kwargs))
        passed = _passed(kind, context)
        value, args = _estimate_filter(budget, name, func, value, args, kwargs, passed)
        result = func(*passed, value, *args, **kwargs)
        return budget.account(result)

    guarded.__name__ = getattr(func, "__name__", name)
    guarded.__doc__ = func.__doc__
    return guarded


def _guard_test(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a test so comparing two huge structures (``is eq``, ``is in``) is refused."""
    kind = getattr(func, "jinja_pass_arg", None)

    @pass_context
    def guarded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        _check_inputs(budget, f"the {name} test", (value, args, kwargs))
        return func(*_passed(kind, context), value, *args, **kwargs)

    guarded.__name__ = getattr(func, "__name__", name)
    return guarded


def _passed(kind: Any, context: Any) -> tuple[Any, ...]:
    if kind is None:
        return ()
    name = getattr(kind, "name", "")
    if name == "context":
        return (context,)
    if name == "eval_context":
        return (context.eval_ctx,)
    return (context.environment,)


def bounded_range(*args: int) -> range:
    """``range()`` for templates: at most :data:`MAX_ITEMS` items."""
    rng = range(*args)
    if len(rng) > MAX_ITEMS:
        current().fail(f"a range of {len(rng):,} items (the limit is {MAX_ITEMS:,})")
    return rng


def _finalize(value: Any) -> Any:
    """Every ``{{ expression }}``: a structure is measured before it is turned into text, and output is charged."""
    budget = _active.get()
    if budget is None or isinstance(value, Undefined):  # constants folded at compile time are bounded by the source
        return value
    if isinstance(value, str):
        budget.charge(len(value))
        return value
    size = measure(value, budget)
    if size.chars > MAX_VALUE_CHARS:
        budget.fail(f"an expression whose text would be over {MAX_VALUE_CHARS:,} characters")
    if not isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
        budget.charge(size.chars)
        return value
    # A structure's text can be a few times its measure (a control character prints as four), so it is
    # turned into text here and charged for what it is; escape(str(x)) is what the output would do anyway.
    text = str(value)
    budget.account(text)
    return text


# -- code generation: budget ticks in loops and macros, checked concatenation and comparisons ----------


@dataclass(frozen=True)
class _Tick:
    """Marks the statement the code generator turns into a budget tick (Jinja2 allows no custom node types)."""

    chars: int


def _tick_node(body: list[nodes.Node], lineno: int) -> nodes.Node:
    return nodes.ExprStmt(nodes.Const(_Tick(_literal_chars(body))), lineno=lineno)


def _literal_chars(body: list[nodes.Node]) -> int:
    """Literal text in a body (nested loops' text included: an over-estimate, never an under-estimate)."""
    found = [n if isinstance(n, nodes.TemplateData) else list(n.find_all(nodes.TemplateData)) for n in body]
    return sum(len(d.data) for item in found for d in (item if isinstance(item, list) else [item]))


class BudgetCodeGenerator(CodeGenerator):
    """Jinja2's code generator plus the budget's hooks."""

    def visit_ExprStmt(self, node: nodes.ExprStmt, frame: Frame) -> None:
        """Emit a budget tick for the marker statements this generator inserted; other statements as Jinja2 does."""
        if isinstance(node.node, nodes.Const) and isinstance(node.node.value, _Tick):
            self.writeline(f"environment.budget_tick({int(node.node.value.chars)})", node)
        else:
            super().visit_ExprStmt(node, frame)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """A loop whose body starts with a budget tick, charged with the body's literal text."""
        node.body = [_tick_node(node.body, node.lineno), *node.body]
        super().visit_For(node, frame)

    def macro_body(self, node: Any, frame: Frame) -> Any:
        """A macro whose body starts with a budget tick, so recursion counts against the iteration limit."""
        node.body = [_tick_node(node.body, node.lineno), *node.body]
        return super().macro_body(node, frame)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """``~`` through :meth:`BoundedEnvironment.budget_concat`, so a concatenation is sized before it is built."""
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.budget_concat({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        """Comparisons with every operand through :meth:`BoundedEnvironment.budget_operand`."""
        self.write("(environment.budget_operand(")
        self.visit(node.expr, frame)
        self.write(")")
        for op in node.ops:
            self.write(f" {operators[op.op]} environment.budget_operand(")
            self.visit(op.expr, frame)
            self.write(")")
        self.write(")")


# Filters of the service's own (see add_filter), given to every environment.
_OWN_FILTERS: dict[str, Callable[..., Any]] = {}


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every operation metered against the active :class:`Budget`."""

    code_generator_class = BudgetCodeGenerator
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True, finalize=_finalize
        )
        self.globals["range"] = bounded_range
        self.globals.pop("lipsum", None)  # its size arguments are not worth metering
        self.filters = {name: _guard_filter(name, f) for name, f in {**self.filters, **_OWN_FILTERS}.items()}
        self.tests = {name: _guard_test(name, t) for name, t in self.tests.items()}  # type: ignore[arg-type]

    # hooks called from generated code ------------------------------------------------------------
    def budget_tick(self, chars: int) -> None:
        """Called at the top of every loop body and macro body: one iteration, charged with its literal text."""
        current().tick(chars)

    def budget_concat(self, join: Callable[[Any], str], parts: tuple[Any, ...]) -> str:
        """Join ``parts`` with ``join`` unless their measured size passes the value limit; the result is charged."""
        budget = current()
        total = sum(measure(p, budget).chars for p in parts)
        budget.within(total, "concatenation (~)")
        return budget.account(join(parts))  # type: ignore[no-any-return]

    def budget_operand(self, value: Any) -> Any:
        """Return a comparison operand unchanged, refusing a structure whose text form would pass the value limit."""
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            budget = current()
            size = measure(value, budget)
            if size.chars > MAX_VALUE_CHARS:
                budget.fail(f"a comparison with a structure over {MAX_VALUE_CHARS:,} characters")
        return value

    # the sandbox's own interception points ---------------------------------------------------------
    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Every arithmetic operator: refused before it runs when the result would pass a limit, then charged."""
        budget = current()
        budget.check_time()
        _check_binop(budget, operator, left, right)
        return budget.account(self.binop_table[operator](left, right))

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Every call (method, macro, global): inputs checked, multiplying methods estimated, and the result charged."""
        budget = current()
        owner = getattr(getattr(obj, "__wrapped__", obj), "__self__", None)
        receiver = owner if isinstance(owner, (*_SEQUENCES, dict, set, frozenset)) else None
        _check_inputs(budget, "a call", (receiver, args, kwargs))
        if isinstance(owner, (str, bytes)) and getattr(obj, "__name__", "") == "join" and len(args) == 1:
            items = budget.account(list(args[0]))  # a generator is listed first, so it can be measured
            budget.within(_join_estimate(budget, items, owner), "str.join")
            args = (items,)
        _estimate_method(budget, obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, (Macro, LoopContext)):  # their output was charged as it was produced
            budget.check_time()
            return result
        return budget.account(result)


_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _check_binop(budget: Budget, op: str, left: Any, right: Any) -> None:
    a, b = _int(left), _int(right)
    both_int = isinstance(left, int) and isinstance(right, int)
    if op == "**" and both_int:
        # at least (bits - 1) * b + 1 bits, at most bits * b: refuse the sure ones, the result check does the rest
        if b > 0 and abs(a) > 1 and (a.bit_length() - 1) * b + 1 > MAX_INT_BITS:
            budget.fail(f"{a} ** {b} would be over {MAX_INT_BITS:,} bits")
    elif op == "*":
        if both_int:
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                budget.fail(f"a product of over {MAX_INT_BITS:,} bits")
        elif isinstance(left, _SEQUENCES) and isinstance(right, int):
            _check_repeat(budget, left, right)
        elif isinstance(right, _SEQUENCES) and isinstance(left, int):
            _check_repeat(budget, right, left)
    elif op == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        limit = MAX_ITEMS if isinstance(left, (list, tuple)) else MAX_VALUE_CHARS
        if len(left) + len(right) > limit:
            budget.fail(f"joining with + would make {len(left) + len(right):,} items (the limit is {limit:,})")
    elif op == "%" and isinstance(left, str):
        args = right if isinstance(right, tuple) else (right,)
        _check_format(budget, left, args, right if isinstance(right, dict) else {}, percent=True)


def _check_repeat(budget: Budget, seq: Any, times: int) -> None:
    limit = MAX_ITEMS if isinstance(seq, (list, tuple)) else MAX_VALUE_CHARS
    total = len(seq) * max(times, 0)
    if total > limit:
        budget.fail(
            f"repeating with * would make {total:,} {'items' if limit == MAX_ITEMS else 'characters'} "
            f"(the limit is {limit:,})"
        )


_TEXT = BoundedEnvironment(autoescape=False)
_HTML = BoundedEnvironment(autoescape=True)


def add_filter(name: str, func: Callable[..., Any]) -> None:
    """Give templates a filter of the service's own (``short``), metered like the built-in ones, in every
    environment (the renderers' and any made later, such as the template checks' parser)."""
    _OWN_FILTERS[name] = func
    for environment in (_TEXT, _HTML):
        environment.filters[name] = _guard_filter(name, func)


#: Compiled templates kept per process: at most this many, holding at most this much source in all (a
#: compiled template takes about 12 bytes per character of source).
CACHE_ENTRIES = 512
CACHE_SOURCE_CHARS = 2_000_000
_cache: OrderedDict[tuple[str, bool], Template] = OrderedDict()
_cache_chars = 0
_cache_lock = threading.Lock()


def compile_source(source: str, html: bool) -> Template:
    """The compiled template for ``source``, from a small LRU cache (the worker renders the same few
    templates all day; a template of 100,000 characters takes about half a second to compile)."""
    global _cache_chars
    key = (source, html)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    compiled = (_HTML if html else _TEXT).from_string(source)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = compiled
            _cache_chars += len(source)
        while _cache and (len(_cache) > CACHE_ENTRIES or _cache_chars > CACHE_SOURCE_CHARS):
            (old, _), _ = _cache.popitem(last=False)
            _cache_chars -= len(old)
    return compiled


def render_compiled(template: Template, context: Mapping[str, Any], budget: Budget) -> str:
    """Render one compiled part under ``budget``, streaming and stopping at :data:`MAX_OUTPUT_CHARS`."""
    with budget_scope(budget):
        chunks: list[str] = []
        length = 0
        stream = cast(Generator[str, None, None], template.generate(context))
        try:
            for chunk in stream:
                length += len(chunk)
                if length > MAX_OUTPUT_CHARS:
                    budget.fail(f"the output is over {MAX_OUTPUT_CHARS:,} characters")
                chunks.append(chunk)
        finally:
            stream.close()
        if budget.failure is not None:  # a limit was hit and something swallowed the exception
            raise BudgetExceeded(budget.failure)
        budget.check_time()
        return "".join(chunks)


def render_source(source: str, context: Mapping[str, Any], budget: Budget, *, html: bool = False) -> str:
    """Compile (cached, outside the budget: its cost is bounded by the source's size) and render one part."""
    return render_compiled(compile_source(source, html), context, budget)

"""Template rendering in a budgeted Jinja2 sandbox; HTML autoescaped, text not.

Every way a template can fail to render (a syntax error, an unknown variable, an exception the template
raises such as ``{{ 1/0 }}``, or a broken render budget, see :mod:`notify.sandbox`) raises
:class:`RenderFailed`, a :class:`notify.errors.TemplateFailed`: the worker fails the job permanently
(``template_error``), a preview or a save answers 422 naming the part.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Optional

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2 import Template as JinjaTemplate
from jinja2.utils import Namespace

from notify.catalog import EVENT_TYPES
from notify.digests import DIGEST_VARIANT, variant_of
from notify.errors import TemplateFailed, TransientError
from notify.headers import header_value
from notify.links import target
from notify.records import RenderedMessage, Template
from notify.sandbox import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_ITERATIONS,
    MAX_OUTPUT_CHARS,
    MAX_RENDER_SECONDS,
    MAX_VALUE_CHARS,
    MAX_WORK_CHARS,
    Budget,
    BudgetExceeded,
    add_filter,
    compile_source,
    render_compiled,
)

__all__ = [
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_RENDER_SECONDS",
    "MAX_VALUE_CHARS",
    "MAX_WORK_CHARS",
    "PART_FIELDS",
    "RenderFailed",
    "error_line",
    "locale_chain",
    "render",
    "render_context",
]

#: The template's parts, the RenderedMessage field each renders into, and whether it is HTML.
PART_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("subject", "subject", False),
    ("body_text", "text", False),
    ("body_html", "html", True),
    ("title", "title", False),
    ("body", "body", False),
)
_MAX_REASON = 300


class RenderFailed(TemplateFailed):
    """One part of a template could not be rendered; ``part`` and ``reason`` say which and why, ``line`` (when
    known) on which line of the part."""

    def __init__(self, template_id: str, version: int, part: str, reason: str, line: Optional[int] = None) -> None:
        super().__init__(f"template {template_id} v{version} {part}: {reason}")
        self.part = part
        self.reason = reason
        self.line = line


def locale_chain(requested: Optional[str], default: str = "en") -> list[str]:
    """The locales to try, most specific first: ``pt-BR`` → ``pt`` → default."""
    chain: list[str] = []
    if requested:
        parts = requested.split("-")
        chain += ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    if default not in chain:
        chain.append(default)
    return chain


# What ``short`` makes of a URL in the render in progress (the worker's: the job's short links); None: the URL itself.
_shorten: ContextVar[Optional[Callable[[str], str]]] = ContextVar("notify_shorten", default=None)


def short(value: Any) -> Any:
    """The ``short`` filter: ``{{ watch_url | short }}`` is the URL's short link (``notify.links``).

    Only an http or https URL with a host can be shortened; anything else fails the render (``RenderFailed`` on the
    part, a 422 on save or preview, ``template_error`` in the worker). An absent optional field stays empty.
    """
    if isinstance(value, Undefined):
        return value
    url = target(value)
    shorten = _shorten.get()
    return url if shorten is None else shorten(url)


add_filter("short", short)


@contextmanager
def _shortening(shorten: Optional[Callable[[str], str]]) -> Iterator[None]:
    token = _shorten.set(shorten)
    try:
        yield
    finally:
        _shorten.reset(token)


def _absent(name: str, hint: str) -> Undefined:
    return Undefined(hint=hint, name=name)


EVENT_FIELDS = ("event_id", "event_type", "job_id", "unsubscribe_url")


def render_context(
    template_key: str,
    payload: Mapping[str, Any],
    user: Mapping[str, Any],
    event: Mapping[str, Any],
    *,
    digest: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """The variables a template of ``template_key`` sees: the payload's fields, ``user`` and ``event``; a digest
    variant's (``review_liked.digest``) also ``digest``.

    ``template_key`` is an event type or a variant of one (:func:`notify.digests.variant_of`); the base event
    type's payload model says which fields exist. Every field it declares but ``payload`` omits (an optional one)
    is present as an absent value: falsy, rendered as the empty string, so ``{% if first_name %}`` works. The same
    holds for the user's empty profile fields. Names nobody declares stay strict errors.

    ``digest`` (:func:`notify.digests.digest_context`: ``count``, ``items``, ``first_at``, ``last_at``) is given
    to a digest variant only, whose ``payload`` is its newest member's. A digest variant rendered without one
    fails on the first use of ``digest`` (a strict undefined naming the cause); a template that is not a digest
    variant never sees ``digest``, even when one is passed.
    """
    event_type, variant = variant_of(template_key)
    context: dict[str, Any] = {}
    spec = EVENT_TYPES.get(event_type)
    if spec is not None:
        for name in spec.payload_model.model_fields:
            context[name] = _absent(name, f"the {event_type} payload has no {name!r}")
    for name, value in payload.items():
        context[name] = _absent(name, f"the {event_type} payload has no {name!r}") if value is None else value
    context["user"] = {
        name: _absent(f"user.{name}", f"the user has no {name!r}") if value is None else value
        for name, value in user.items()
    }
    # Every event field a template may name is present; a missing one (no unsubscribe link on account mail) is
    # absent: falsy, and empty when printed.
    context["event"] = {name: _absent(f"event.{name}", f"the event has no {name!r}") for name in EVENT_FIELDS}
    context["event"].update({k: v for k, v in event.items() if v is not None})
    if variant == DIGEST_VARIANT:
        # A namespace, not a dict: ``digest.items`` must be the members, where a dict's would be its items() method.
        # (The render budget measures a namespace's attributes as it does a dict's values.)
        context["digest"] = (
            Namespace(digest)
            if digest is not None
            else StrictUndefined(
                hint=f"the digest template {template_key} was rendered without a digest (digest.count, digest.items)",
                name="digest",
            )
        )
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BudgetExceeded):
        text = str(exc)
    elif isinstance(exc, TemplateSyntaxError):
        text = f"line {exc.lineno}: {exc.message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def error_line(exc: BaseException) -> Optional[int]:
    """The line of the template source ``exc`` was raised on: a syntax error's own, else that of the innermost
    template frame of its traceback (Jinja2 maps its compiled code back to the source's lines); None if unknown."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>":
            line = frame.lineno
    return line


def render(
    template: Template,
    context: Mapping[str, Any],
    *,
    clock: Callable[[], float] = time.thread_time,
    shorten: Optional[Callable[[str], str]] = None,
) -> RenderedMessage:
    """Render every part of ``template`` under one render budget; any failure is a :class:`RenderFailed`.

    Every part is compiled first (cached per source; compiling costs time in proportion to the source,
    which is bounded at save), then the budget's clock starts and the parts render one after the other. The
    subject is an email header: each run of control characters a payload brought into it (CR, LF...) is one space.
    ``shorten`` is what the ``short`` filter makes of a checked URL (the worker's: the job's short link; previews':
    a sample); without it the URL stays as it is. A :class:`TransientError` it raises (its key list unreadable) is
    raised as it is: the job retries, where a template's own failure is permanent.
    """
    compiled: list[tuple[str, str, Optional[JinjaTemplate]]] = []
    for part, field, html in PART_FIELDS:
        source: Optional[str] = getattr(template, part)
        try:
            compiled.append((part, field, None if source is None else compile_source(source, html)))
        except Exception as exc:  # noqa: BLE001 - a syntax error, or the compiler giving up on the source
            raise RenderFailed(template.template_id, template.version, part, _reason(exc), error_line(exc)) from exc
    budget = Budget(clock=clock)
    rendered: dict[str, Optional[str]] = {}
    with _shortening(shorten):
        for part, field, code in compiled:
            try:
                rendered[field] = None if code is None else render_compiled(code, context, budget)
            except TransientError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a template raises is that template's failure
                raise RenderFailed(template.template_id, template.version, part, _reason(exc), error_line(exc)) from exc
    subject = rendered.get("subject")
    if subject is not None:
        rendered["subject"] = header_value(subject)
    return RenderedMessage(
        template_id=template.template_id,
        template_version=template.version,
        locale=template.locale,
        **rendered,
    )

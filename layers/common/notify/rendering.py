"""Template rendering with Jinja2's sandbox; HTML autoescaped, text not."""

from __future__ import annotations

from typing import Any, Optional

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from notify.errors import PermanentError
from notify.ports import RenderedMessage, Template

_text_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_html_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True, keep_trailing_newline=True)


def locale_chain(requested: Optional[str], default: str = "en") -> list[str]:
    """The locales to try, most specific first: ``pt-BR`` → ``pt`` → default."""
    chain: list[str] = []
    if requested:
        parts = requested.split("-")
        chain += ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]
    if default not in chain:
        chain.append(default)
    return chain


def render(template: Template, context: dict[str, Any]) -> RenderedMessage:
    """Render every part of ``template``. A syntax or variable error is permanent."""

    def text(source: Optional[str]) -> Optional[str]:
        return None if source is None else _text_env.from_string(source).render(context)

    def html(source: Optional[str]) -> Optional[str]:
        return None if source is None else _html_env.from_string(source).render(context)

    try:
        return RenderedMessage(
            template_id=template.template_id,
            template_version=template.version,
            locale=template.locale,
            subject=text(template.subject),
            text=text(template.body_text),
            html=html(template.body_html),
            title=text(template.title),
            body=text(template.body),
        )
    except TemplateError as exc:
        raise PermanentError(f"template {template.template_id} v{template.version} failed to render: {exc}") from exc

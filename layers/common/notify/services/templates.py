"""Template management: validation on save, versions, tombstone deletes and previews.

A template's ``event_type`` is an event type (``review_liked``) or its digest variant (``review_liked.digest``,
ids ``review_liked.digest.email.en``), which renders a digest of the type's notifications (issue 23) and also sees
``digest`` (:func:`notify.digests.digest_context`). Account events have no digest variant: they are never
digested.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Optional

from jinja2 import TemplateSyntaxError, meta
from pydantic import Field, ValidationError, model_validator

from notify.catalog import EventType, field_errors, get_event_type, validate_payload
from notify.clock import Clock, iso
from notify.digests import DIGEST_VARIANT, DigestItem, digest_context, digest_template_key, refuse_account, variant_of
from notify.errors import FieldError, NotFound, TemplateFailed, ValidationFailed
from notify.headers import first_control
from notify.links import sample_link
from notify.models import Category, Channel, Strict
from notify.ports import TemplateStore
from notify.records import RenderedMessage, Template, UserProfile
from notify.rendering import RenderFailed, render, render_context
from notify.sandbox import BoundedEnvironment

PARTS: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: ("subject", "body_text", "body_html"),
    Channel.PUSH: ("title", "body"),
    Channel.WEBSOCKET: ("title", "body"),
}
REQUIRED: dict[Channel, tuple[tuple[str, ...], ...]] = {
    Channel.EMAIL: (("subject",), ("body_text", "body_html")),
    Channel.PUSH: (("title",), ("body",)),
    Channel.WEBSOCKET: (("body",),),
}
GLOBALS = frozenset({"user", "event"})
#: The parts that become an email header: one line, no control character in their source.
HEADER_PARTS = frozenset({"subject"})
MAX_PART = 100_000
# The bounded sandbox also for parsing: Jinja2 folds constants while looking for variables, and a plain
# sandbox would fold ``{{ 'x' * 10**9 }}`` right there.
_parser = BoundedEnvironment(autoescape=False)
SAMPLE_USER = UserProfile("user-1", email="user-1@example.com", first_name="Ada", last_name="Lovelace")
#: The recipient with only what every profile has, for the "optional fields absent" check at save.
BARE_USER = UserProfile("user-1", email="user-1@example.com")
#: How many members the sample digest of a digest variant's checks and previews has.
SAMPLE_DIGEST_MEMBERS = 3
_SAMPLE_DIGEST_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EVENT_TYPE_DESCRIPTION = (
    "An event type (review_liked), or its digest variant (review_liked.digest), which renders one notification "
    "for a digest of them and also sees digest.count, digest.items, digest.first_at and digest.last_at. "
    "Account event types have no digest variant."
)


class TemplateContent(Strict):
    """The editable parts of a template; which ones apply depends on the channel."""

    subject: Optional[str] = Field(default=None, max_length=998)
    body_text: Optional[str] = Field(default=None, max_length=MAX_PART)
    body_html: Optional[str] = Field(default=None, max_length=MAX_PART)
    title: Optional[str] = Field(default=None, max_length=200)
    body: Optional[str] = Field(default=None, max_length=MAX_PART)


class TemplateInput(TemplateContent):
    """Body of POST /api/v1/templates."""

    event_type: str = Field(min_length=1, max_length=64, description=EVENT_TYPE_DESCRIPTION)
    channel: Channel
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    @model_validator(mode="after")
    def _parts_fit_the_channel(self) -> TemplateInput:
        allowed = PARTS[self.channel]
        extra = [p for p in ("subject", "body_text", "body_html", "title", "body") if p not in allowed]
        given = [p for p in extra if getattr(self, p) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} not used by the {self.channel.value} channel (it uses {allowed})")
        for group in REQUIRED[self.channel]:
            if all(getattr(self, p) in (None, "") for p in group):
                raise ValueError(f"the {self.channel.value} channel needs {' or '.join(group)}")
        return self


class TemplateDraft(TemplateContent):
    """Body of POST /api/v1/templates:preview: content not saved yet (an editor's), and what to render it with.

    Nothing is checked at parse time beyond the field types, so that every problem comes back at once, each on
    its part (and line): see :meth:`TemplateService.preview_draft`.
    """

    event_type: str = Field(min_length=1, max_length=64, description=EVENT_TYPE_DESCRIPTION)
    channel: Channel
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    payload: Optional[dict[str, Any]] = None
    user: Optional[dict[str, Any]] = None


class PreviewInput(Strict):
    """Body of a template preview: the payload (else the event type's sample) and user fields to render with."""

    payload: Optional[dict[str, Any]] = None
    user: Optional[dict[str, Any]] = None


def template_id(event_type: str, channel: Channel, locale: str) -> str:
    """The public id of a template key: ``<event_type>.<channel>.<locale>`` (a digest variant's:
    ``review_liked.digest.email.en``)."""
    return f"{event_type}.{channel.value}.{locale}"


def parse_template_id(value: str) -> tuple[str, Channel, str]:
    """Split a template id into (event type or variant, channel, locale); NotFound if it is not one."""
    parts = value.split(".")
    if len(parts) == 4 and parts[1] == DIGEST_VARIANT:
        parts = [digest_template_key(parts[0]), *parts[2:]]
    if len(parts) != 3 or parts[1] not in {c.value for c in Channel}:
        raise NotFound(f"template {value} not found")
    return parts[0], Channel(parts[1]), parts[2]


def template_spec(event_type: str) -> tuple[EventType, bool]:
    """The event type a template's ``event_type`` renders, and whether it is the type's digest variant.

    An unknown type or variant, and the digest variant of an account type, are 422 field errors on ``event_type``.
    """
    base, variant = variant_of(event_type)
    if variant is not None and variant != DIGEST_VARIANT:
        raise ValidationFailed(
            [FieldError("event_type", f"{event_type!r}: the only variant is {digest_template_key(base)!r}", "enum")]
        )
    spec = get_event_type(base)
    if variant is not None:
        try:
            refuse_account(spec.name)
        except ValueError as exc:
            raise ValidationFailed([FieldError("event_type", str(exc), "digest_account")]) from None
    return spec, variant is not None


def sample_digest(payload: Mapping[str, Any], count: int = SAMPLE_DIGEST_MEMBERS) -> dict[str, Any]:
    """A digest of ``count`` members, each with ``payload``, a minute apart: what checks and previews render a
    digest variant with."""
    items = [DigestItem(payload, _SAMPLE_DIGEST_START + timedelta(minutes=i), f"sample-{i:04d}") for i in range(count)]
    return digest_context(items, count, count)


def check_parts(event_type: str, parts: dict[str, Optional[str]]) -> None:
    """Syntax errors and variables the event type does not provide are field errors with line numbers."""
    errors = part_errors(event_type, parts)
    if errors:
        raise ValidationFailed(errors, "The template is not valid")


def part_errors(event_type: str, parts: dict[str, Optional[str]]) -> list[FieldError]:
    """Each part's Jinja2 syntax error, and each variable it names that the event type does not provide, as a
    field error on the part with its line (``line`` and the message's ``line N:``); a line break or another
    control character in a part that is an email header (the subject) is one too."""
    spec, digest = template_spec(event_type)
    provided = set(spec.payload_model.model_fields) | GLOBALS | ({"digest"} if digest else set())
    errors: list[FieldError] = []
    for name, source in parts.items():
        if source is None:
            continue
        control = first_control(source) if name in HEADER_PARTS else None
        if control is not None:
            message = f"line 1: a {name} is one line of an email header: no line break or control character ({control})"
            errors.append(FieldError(name, message, "header_control", 1))
            continue
        try:
            ast = _parser.parse(source)
        except TemplateSyntaxError as exc:
            errors.append(FieldError(name, f"line {exc.lineno}: {exc.message}", "template_syntax", exc.lineno))
            continue
        unknown = sorted(meta.find_undeclared_variables(ast) - provided)
        for variable in unknown:
            line = next((i for i, text in enumerate(source.splitlines(), 1) if variable in text), 1)
            errors.append(
                FieldError(
                    name,
                    f"line {line}: {variable!r} is not provided by {event_type} "
                    f"(available: {', '.join(sorted(provided))})",
                    "template_variable",
                    line,
                )
            )
    return errors


def shape_errors(channel: Channel, parts: dict[str, Optional[str]]) -> list[FieldError]:
    """The parts the channel does not use, and the ones it needs that are missing or empty, as field errors."""
    allowed = PARTS[channel]
    errors = [
        FieldError(part, f"not used by the {channel.value} channel (it uses {', '.join(allowed)})", "part_unused")
        for part, source in parts.items()
        if part not in allowed and source is not None
    ]
    for group in REQUIRED[channel]:
        if all(parts.get(p) in (None, "") for p in group):
            errors.append(FieldError(group[0], f"the {channel.value} channel needs {' or '.join(group)}", "missing"))
    return errors


def required_payload(spec: EventType) -> dict[str, Any]:
    """The event type's sample payload with its optional fields left out."""
    fields = spec.payload_model.model_fields
    return {k: v for k, v in spec.sample_payload().items() if k in fields and fields[k].is_required()}


def _event(spec: EventType, event_id: str) -> dict[str, Any]:
    # A sample link, so a template's visible unsubscribe link shows in previews and is checked when saved.
    link = None if spec.category is Category.ACCOUNT else "https://notifications.example.com/u/sample-token"
    return {"event_id": event_id, "event_type": spec.name, "job_id": "", "unsubscribe_url": link}


def check_renders(template: Template) -> None:
    """Render every part under the render budget with the sample payload and user, then with only the
    required payload fields and a bare user; a part that raises or breaks the budget is a field error.

    A digest variant renders the first time with a digest of :data:`SAMPLE_DIGEST_MEMBERS` members of the sample
    payload, the second with a digest of one member (only the required fields), so both wordings are checked."""
    spec, digest = template_spec(template.event_type)
    samples = (
        ("the sample payload", spec.sample_payload(), SAMPLE_USER, SAMPLE_DIGEST_MEMBERS),
        ("only the required payload fields", required_payload(spec), BARE_USER, 1),
    )
    for label, payload, user, members in samples:
        context = render_context(
            template.event_type,
            payload,
            user.template_context(),
            _event(spec, "check"),
            digest=sample_digest(payload, members) if digest else None,
        )
        label = f"{label} in a digest of {members}" if digest else label
        try:
            render(template, context, shorten=sample_link)
        except RenderFailed as exc:
            raise ValidationFailed(
                [FieldError(exc.part, f"{exc.reason} (rendering with {label})", "template_render", exc.line)],
                "The template cannot be rendered",
            ) from None


def view(template: Template) -> dict[str, Any]:
    """The public JSON shape of one template version."""
    data: dict[str, Any] = {
        "template_id": template.template_id,
        "event_type": template.event_type,
        "channel": template.channel.value,
        "locale": template.locale,
        "version": template.version,
        "created_at": template.created_at,
    }
    for part in PARTS[template.channel]:
        data[part] = getattr(template, part)
    return data


class TemplateService:
    """Template management: validated saves as new versions, reads, tombstone deletes and previews."""

    def __init__(self, store: TemplateStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def save(self, data: TemplateInput) -> Template:
        """Validate and store a new version (creating the key if needed)."""
        parts = {p: getattr(data, p) for p in PARTS[data.channel]}
        check_parts(data.event_type, parts)
        template = self._new(data.event_type, data.channel, data.locale, parts)
        check_renders(template)
        return self._store.save(template)

    def update(self, tid: str, content: TemplateContent) -> Template:
        """A new version of an existing template: the parts given replace, the others are kept."""
        event_type, channel, locale = parse_template_id(tid)
        current = self.get(tid)
        merged: dict[str, Any] = {"event_type": event_type, "channel": channel, "locale": locale}
        for part in PARTS[channel]:
            merged[part] = getattr(current, part)
        merged.update(content.model_dump(exclude_unset=True))
        try:
            data = TemplateInput.model_validate({k: v for k, v in merged.items() if v is not None})
        except ValidationError as exc:  # the merged document breaks a rule: one field error per problem
            raise ValidationFailed(field_errors(exc)) from None
        return self.save(data)

    def get(self, tid: str, version: Optional[int] = None, *, retired: bool = False) -> Template:
        """The newest (or the given) version. A retired (deleted) template is gone for reads: NotFound,
        unless ``retired`` asks for one of its versions (a preview of what a job was rendered with)."""
        event_type, channel, locale = parse_template_id(tid)
        latest = self._store.latest(event_type, channel, locale)
        if latest is None or (latest.deleted and not retired):
            raise NotFound(f"template {tid} not found" + (" (it was retired)" if latest is not None else ""))
        found = latest if version is None else self._store.version(event_type, channel, locale, version)
        if found is None or found.deleted:
            raise NotFound(f"template {tid}{'' if version is None else f' v{version}'} not found")
        return found

    def versions(self, tid: str) -> list[Template]:
        """Every version, newest first; NotFound once the template is retired."""
        self.get(tid)
        event_type, channel, locale = parse_template_id(tid)
        return [t for t in self._store.versions(event_type, channel, locale) if not t.deleted]

    def list(self, event_type: Optional[str] = None, channel: Optional[Channel] = None) -> list[Template]:
        """The newest version of every template not retired, optionally of one event type or channel."""
        return [
            t
            for t in self._store.keys()
            if not t.deleted and (event_type in (None, t.event_type)) and (channel in (None, t.channel))
        ]

    def delete(self, tid: str) -> None:
        """Retire a template: a tombstone version; older versions stay readable."""
        current = self.get(tid)
        self._store.save(Template(**{**current.__dict__, "deleted": True, "created_at": iso(self._clock())}))

    def preview(self, tid: str, data: PreviewInput, version: Optional[int] = None) -> RenderedMessage:
        """Render with the given payload (validated) or the event type's sample, and a sample user.

        A template that fails to render (it raises, or breaks the render budget) is a 422 on its part.
        """
        template = self.get(tid, version, retired=version is not None)
        spec, _ = template_spec(template.event_type)
        payload = validate_payload(spec, data.payload) if data.payload is not None else spec.sample_payload()
        return _render_preview(template, spec, payload, data.user)

    def preview_draft(self, draft: TemplateDraft) -> RenderedMessage:
        """Render content that is not saved (an editor's, as it is typed), with the given payload or the event
        type's sample and a sample user; ``template_version`` is 0.

        Every problem is a field error of one 422, each on its part and, for the template's own text, its line:
        an unknown event type, parts the channel does not use or lacks, Jinja2 syntax errors, variables the event
        type does not provide, an invalid payload; then a part that fails to render (raises, or breaks the
        render budget). The checks are the ones a save makes (:meth:`save`), so what previews cleanly saves.
        """
        spec, _ = template_spec(draft.event_type)
        parts = {p: getattr(draft, p) for p in ("subject", "body_text", "body_html", "title", "body")}
        errors = shape_errors(draft.channel, parts)
        errors += part_errors(draft.event_type, {p: parts[p] for p in PARTS[draft.channel]})
        payload = spec.sample_payload()
        if draft.payload is not None:
            try:
                payload = validate_payload(spec, draft.payload)
            except ValidationFailed as exc:
                errors += exc.errors
        if errors:
            raise ValidationFailed(errors, "The template is not valid")
        template = self._new(draft.event_type, draft.channel, draft.locale, parts)
        return _render_preview(template, spec, payload, draft.user)

    def _new(self, event_type: str, channel: Channel, locale: str, parts: Mapping[str, Any]) -> Template:
        """A template made now and not stored yet (version 0: the store numbers it), with the channel's ``parts``."""
        return Template(
            event_type=event_type,
            channel=channel,
            locale=locale,
            version=0,
            template_id=template_id(event_type, channel, locale),
            created_at=iso(self._clock()),
            **{p: parts[p] for p in PARTS[channel]},
        )


def _render_preview(
    template: Template, spec: EventType, payload: dict[str, Any], user: Optional[dict[str, Any]]
) -> RenderedMessage:
    """Render with ``payload`` and the sample user (overridden by ``user``); a failure is a 422 on its part.

    A digest variant renders a digest of :data:`SAMPLE_DIGEST_MEMBERS` members with ``payload``."""
    profile = {**SAMPLE_USER.template_context(), **(user or {})}
    digest = sample_digest(payload) if variant_of(template.event_type)[1] == DIGEST_VARIANT else None
    context = render_context(template.event_type, payload, profile, _event(spec, "preview"), digest=digest)
    try:
        return render(template, context, shorten=sample_link)  # a preview makes no short link: it shows a sample
    except RenderFailed as exc:
        raise ValidationFailed(
            [FieldError(exc.part, exc.reason, "template_render", exc.line)], "The template cannot be rendered"
        ) from None
    except TemplateFailed as exc:
        raise ValidationFailed([FieldError("body", str(exc), "template_render")]) from None

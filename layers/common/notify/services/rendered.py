"""A notification's message as it was rendered: the template version its job recorded, with its event's payload.

The worker records the template version (and, since the console, the template id, hence the locale) on the
job's ``SENDING`` transition, and ingestion keeps the payload on the event's record; together they render the
message again. The recipient's profile stays with the Auth service, so ``user`` is a sample recipient with the
job's user id: fields a template takes from the profile (first name, email) show the sample's.
"""

from __future__ import annotations

from typing import Any, Optional

from notify.errors import NotFound
from notify.models import Channel
from notify.ports import StatusReader
from notify.records import JobRecord, RenderedMessage
from notify.rendering import locale_chain
from notify.services.templates import PreviewInput, TemplateService, template_id


class RenderedJobs:
    """Render a job's message again, from its recorded template version and its event's payload."""

    def __init__(self, store: StatusReader, templates: TemplateService, default_locale: str = "en") -> None:
        self._store = store
        self._templates = templates
        self._default_locale = default_locale

    def render(self, job_id: str) -> dict[str, Any]:
        """``{job_id, template_id, template_version, payload, rendered}``; NotFound (with the reason) for a job
        never rendered (not taken by the worker yet, or failed before its template was chosen) or whose
        payload is not kept (its event came before payloads were recorded, or expired)."""
        record = self._store.get_job(job_id)
        if record is None:
            raise NotFound(
                f"notification {job_id} has not been rendered: the worker has not taken it yet, or it does not exist"
            )
        detail = _rendered_with(record)
        if detail is None:
            raise NotFound(f"notification {job_id} was never rendered (it is {record.status.value})")
        event = self._store.get_event(record.event_id)
        if event is None or event.payload is None:
            raise NotFound(f"the payload of notification {job_id} is not kept (its event predates it, or expired)")
        version = int(detail["template_version"])
        key = event.template_key or event.event_type
        tid = detail.get("template_id") or self._locate(key, record.channel, event.locale, version)
        preview = PreviewInput(payload=event.payload, user={"id": record.user_id})
        message = self._templates.preview(tid, preview, version)
        return {
            "job_id": job_id,
            "template_id": tid,
            "template_version": version,
            "payload": event.payload,
            "rendered": _parts(message),
        }

    def _locate(self, key: str, channel: Channel, locale: Optional[str], version: int) -> str:
        """For jobs recorded before the template id was: the first template along the event's locale chain that
        has the version (the user's own locale, which the worker also tried, is the Auth service's)."""
        for candidate in locale_chain(locale, self._default_locale):
            tid = template_id(key, channel, candidate)
            try:
                self._templates.get(tid, version, retired=True)
            except NotFound:
                continue
            return tid
        raise NotFound(f"no {key} {channel.value} template has version {version} any more")


def _rendered_with(record: JobRecord) -> Optional[dict[str, Any]]:
    """The detail of the job's latest transition that names the template (id and version) it rendered: its
    ``SENDING``. Later ones (``SENT``) record the version alone, and the id is what says which locale the worker
    chose from the user's profile. Only for a job recorded before the id was, the latest version alone."""
    versioned = [entry.detail for entry in record.history if entry.detail.get("template_version") is not None]
    for detail in reversed(versioned):
        if detail.get("template_id"):
            return detail
    return versioned[-1] if versioned else None


def _parts(message: RenderedMessage) -> dict[str, Any]:
    return {
        k: v for k, v in message.__dict__.items() if k in ("template_id", "template_version", "locale") or v is not None
    }

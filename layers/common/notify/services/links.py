"""Short links for the API: following one (``GET /l/{code}``), making one (``POST /api/v1/links``), reading one.

Following a link costs one read and, when the click counts, one write: a template's link counts on its job's item
(the job's ``clicks``, the link's own count and, the first time, the ``CLICKED`` entry of the history, all in that
one write); a link made through the API counts on its own item. A click the store cannot count (throttled, down)
is logged and still redirected: the recipient gets where the link leads either way.

The first click on any of a job's links is told to the status webhooks that subscribe to ``notification.clicked``
(``webhooks``; none, none told), after the write that found it first. A message that cannot be queued is logged and
the click made not the first again (the counts stay), so the next click tells it: the redirect never waits on, nor
fails for, the accounting.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import NotFound, StoreUnavailable
from notify.links import CODE_PATTERN, BadTarget, random_code, short_url, target
from notify.ports import ClickStore, LinkStore
from notify.records import ShortLink
from notify.services.feedback import link_without_secrets
from notify.services.webhook_emitter import WebhookEmitter, for_engagement

log = logging.getLogger(__name__)

DEFAULT_TTL_DAYS = 90
MAX_TTL_DAYS = 365


class LinkService:
    """Short links under ``base_url`` (``SHORT_LINK_BASE``): made, read and followed. Without a base, a link's
    ``short_url`` starts with the one the caller passes: the host its request came to."""

    def __init__(
        self,
        store: LinkStore,
        clicks: ClickStore,
        clock: Clock,
        base_url: Optional[str],
        *,
        webhooks: Optional[WebhookEmitter] = None,
    ) -> None:
        self._store = store
        self._clicks = clicks
        self._clock = clock
        self._base = base_url
        self._webhooks = webhooks

    def follow(self, code: str, *, count: bool) -> str | None:
        """Where the link ``code`` leads (a stored http(s) URL, checked again), or None: no such link, expired, or
        not one a link may lead to. ``count`` is False for HEAD and link scanners, which are redirected uncounted."""
        link = self._live(code)
        if link is None:
            return None
        try:
            url = target(link.url)
        except BadTarget:
            log.warning("short link %s… leads to a URL no link may lead to; refused", code[:4])
            return None
        if count:
            self._count(link, code, url)
        return url

    def _count(self, link: ShortLink, code: str, url: str) -> None:
        """Count a click (and emit a job's first): logged, never raised, when the store or the queue is down."""
        at = iso(self._clock())
        first: Optional[dict[str, str]] = None
        try:
            if link.job_id:
                first = self._clicks.record_click(link.job_id, code, at, link_without_secrets(url))
            else:
                self._store.count_click(code, at)
        except StoreUnavailable as exc:
            log.warning("a click on short link %s… was not counted: %s", code[:4], exc)
            return
        if first is None or self._webhooks is None:
            return
        job = {"job_id": link.job_id, "user_id": link.user_id, **first}
        try:
            self._webhooks.emit(for_engagement(job, "clicked"))
        except StoreUnavailable as exc:
            # The redirect goes ahead; the click is made not the first again, so the next one tells it (same id).
            log.warning("the first click on short link %s… was not told to the status webhooks: %s", code[:4], exc)
            try:
                self._clicks.forget_first_click(str(link.job_id), at)
            except StoreUnavailable as again:
                log.warning("nor could it be forgotten, so no later click will tell it: %s", again)

    def create(self, url: str, *, ttl_days: int, caller_id: str, base: str = "") -> dict[str, Any]:
        """A new link to ``url`` (BadTarget if it may not lead there) for ``ttl_days``, made by ``caller_id``."""
        now = self._clock()
        checked = target(url)
        expires = iso(now + timedelta(days=ttl_days))
        for _ in range(3):  # a code already taken (2^-96 per link made) draws another
            link = ShortLink(random_code(), checked, expires, created_by=caller_id, created_at=iso(now))
            if self._store.create(link):
                return self.view(link, base)
        raise StoreUnavailable("cannot make a short link: every code drawn was taken")

    def get(self, code: str, *, caller_id: str, read_all: bool, base: str = "") -> dict[str, Any]:
        """The link with its clicks. ``read_all`` (a key that reads notifications) sees every link; another key sees
        only the links it made: any other is NotFound, as an unknown or expired one."""
        link = self._live(code)
        if link is None or not (read_all or (link.created_by is not None and link.created_by == caller_id)):
            raise NotFound(f"short link {code[:32]} not found")
        if link.job_id:
            link = ShortLink(**{**link.__dict__, "clicks": self._clicks.link_clicks(link.job_id, code)})
        return self.view(link, base)

    def view(self, link: ShortLink, base: str = "") -> dict[str, Any]:
        """The public JSON shape of a link, under ``SHORT_LINK_BASE`` (else ``base``)."""
        data: dict[str, Any] = {
            "code": link.code,
            "short_url": short_url(self._base or base, link.code),
            "url": link.url,
            "expires_at": link.expires_at,
            "created_at": link.created_at,
            "job_id": link.job_id,
            "user_id": link.user_id,
            "clicks": link.clicks,
            "first_click_at": link.first_click_at,
        }
        return {k: v for k, v in data.items() if v is not None}

    def _live(self, code: str) -> ShortLink | None:
        """The stored link of a well-formed code, unless it expired (DynamoDB's TTL deletes it a while after)."""
        if not CODE_PATTERN.fullmatch(code):
            return None
        link = self._store.get(code)
        if link is None or datetime.fromisoformat(link.expires_at) <= self._clock():
            return None
        return link

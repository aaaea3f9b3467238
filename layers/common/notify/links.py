"""Short links with click tracking: ``{{ url | short }}`` in a template makes ``{SHORT_LINK_BASE}/l/{code}``.

A code is 16 base64url characters (96 bits). A template's link is derived, not drawn: the HMAC-SHA256 of the job
id and the URL under the short links' own key list (``ShortLinkKeysParameter``, first key), cut to 12 bytes. So a
job rendered again (a retry, a redelivery) makes the very same code and its one write puts the same item again, and
no one without the key can make or guess a code from what a status reader knows (the job id, the URL). A link made
through the API (``POST /api/v1/links``) has no job to derive from: its code is random (``secrets``), stored only if
no link has it yet.

Codes are looked up, never verified, so the key list needs no old key: a rotation only changes the codes of links
rendered after it (docs/OPERATIONS.md). Only ``http`` and ``https`` URLs with a host and no credentials become links,
and ``GET /l/{code}`` redirects only to a URL it stored itself, checked again: there is no open redirect.

Account notifications are never tracked (their links carry reset and confirmation tokens): in them ``short``
leaves the URL as it is. ``HEAD`` and known link scanners (:data:`SCANNER_MARKERS`) are redirected without counting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Optional
from urllib.parse import urlsplit

from pydantic import HttpUrl, TypeAdapter, ValidationError

from notify.catalog import category_of
from notify.clock import iso
from notify.models import Category, NotificationJob
from notify.records import JOB_RETENTION, ShortLink
from notify.signing import parse_keys

CODE_BYTES = 12  # 96 bits: a guess among 2^96 codes, where the issue asks for at least 60
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16}")
MAX_URL_CHARS = 2048
# What a link shows in previews and in a job's message rendered again by the console: no link is made there.
SAMPLE_LINK = "https://notifications.example.com/l/SampleShortLink0"
# Lower-case parts of the User-Agent of clients that follow links without a person: search and link-preview bots
# (Googlebot, Slackbot, Twitterbot, Discordbot…), mail security scanners (Microsoft Safe Links, Proofpoint, Mimecast,
# Barracuda), chat previews and headless browsers. A request without a User-Agent counts as one too: every browser
# sends one. Their requests are redirected like any other, and not counted (docs/API.md#short-links).
SCANNER_MARKERS = (
    "bot",
    "crawler",
    "spider",
    "preview",
    "scanner",
    "safelinks",
    "proofpoint",
    "mimecast",
    "barracuda",
    "facebookexternalhit",
    "whatsapp",
    "headless",
)
_PURPOSE = "short-link"
_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


class BadTarget(ValueError):
    """Not a URL a short link may lead to: only http and https URLs with a host, no credentials, no blanks."""


def target(url: object) -> str:
    """``url`` (stripped of surrounding blanks) if a short link may lead to it; BadTarget, saying why, otherwise.

    A URL with characters outside ASCII (an IRI: ``https://例え.jp/パス``) comes back as the ASCII URL it stands for
    (the host in punycode, the rest percent-encoded, as pydantic's ``HttpUrl`` writes it), since it ends up in a
    ``Location`` header, which carries ASCII only.
    """
    if not isinstance(url, str):
        raise BadTarget(f"only http and https URLs can be shortened, not a {type(url).__name__}")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise BadTarget(f"only http and https URLs of at most {MAX_URL_CHARS} characters can be shortened")
    if any(c.isspace() or ord(c) < 32 or 127 <= ord(c) < 160 for c in url):
        raise BadTarget("only http and https URLs can be shortened: this one has blanks or control characters")
    if not url.isascii():
        try:
            url = str(_HTTP_URL.validate_python(url))
        except ValidationError:
            raise BadTarget("only http and https URLs can be shortened: this one cannot be read") from None
        if len(url) > MAX_URL_CHARS:  # percent-encoding makes it longer: the limit holds for what is stored
            raise BadTarget(f"only http and https URLs of at most {MAX_URL_CHARS} characters can be shortened")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise BadTarget("only http and https URLs can be shortened: this one cannot be read") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadTarget(f"only http and https URLs can be shortened, not {parts.scheme or 'a relative'!r} ones")
    if not host:
        raise BadTarget("only http and https URLs with a host can be shortened")
    if parts.username is not None or parts.password is not None:
        raise BadTarget("only http and https URLs without credentials (user:password@) can be shortened")
    return url


def is_scanner(user_agent: Optional[str]) -> bool:
    """Whether a request with this User-Agent comes from a link scanner or a preview, not a person."""
    agent = (user_agent or "").lower()
    return not agent.strip() or any(marker in agent for marker in SCANNER_MARKERS)


def derive_code(key: bytes, job_id: str, url: str) -> str:
    """The code of ``url`` in job ``job_id``: the first 12 bytes of its HMAC-SHA256 under ``key``, base64url."""
    digest = hmac.new(key, f"{_PURPOSE}\n{job_id}\n{url}".encode(), hashlib.sha256).digest()[:CODE_BYTES]
    return base64.urlsafe_b64encode(digest).decode()


def random_code() -> str:
    """A code for a link with no job (``POST /api/v1/links``): 12 random bytes, base64url."""
    return base64.urlsafe_b64encode(secrets.token_bytes(CODE_BYTES)).decode()


def short_url(base_url: str, code: str) -> str:
    """The link a recipient sees: ``{base}/l/{code}``."""
    return f"{base_url.rstrip('/')}/l/{code}"


def sample_link(url: str) -> str:
    """``short`` in previews: :data:`SAMPLE_LINK` for any URL (nothing is stored)."""
    return SAMPLE_LINK


class JobLinks:
    """The short links one render of one job makes (``short`` calls :meth:`short`); ``made`` lists them, once each,
    for the worker to store before the message goes out. Without a key (an account notification) URLs stay as
    they are and nothing is made.

    ``key`` is called on the first link only, so a job whose template shortens nothing never reads the key list;
    one that cannot be used raises KeysUnusable (transient: the job retries), which the render passes on as it is.
    """

    def __init__(
        self, job_id: str, user_id: str, expires_at: datetime, key: Optional[Callable[[], bytes]], base_url: str
    ) -> None:
        self._job_id = job_id
        self._user_id = user_id
        self._expires_at = iso(expires_at)
        self._key_source = key
        self._key: Optional[bytes] = None
        self._base = base_url
        self._made: dict[str, ShortLink] = {}

    @property
    def made(self) -> list[ShortLink]:
        """The links made so far, each once, in the order first made."""
        return list(self._made.values())

    def short(self, url: str) -> str:
        """The short link of ``url`` (a checked http(s) URL) in this job: the same code for the same URL."""
        if self._key_source is None:
            return url
        if self._key is None:
            self._key = self._key_source()
        code = derive_code(self._key, self._job_id, url)
        if code not in self._made:
            self._made[code] = ShortLink(code, url, self._expires_at, job_id=self._job_id, user_id=self._user_id)
        return short_url(self._base, code)


class ShortLinks:
    """Makes each job's :class:`JobLinks` under ``base_url`` (``SHORT_LINK_BASE``), with the key list ``key()``
    returns (the short links' own, comma-separated, newest first: the first one derives)."""

    def __init__(self, key: Callable[[], str], base_url: str) -> None:
        self._key = key
        self._source = str(getattr(key, "name", "the short-link key list"))
        self._base = base_url

    def for_job(self, job: NotificationJob) -> JobLinks:
        """The links of one render of ``job``; they expire with the job's item (its creation + JOB_RETENTION).

        The key list is read (cached, see ``SsmSecret``) and checked when the render makes its first link: a value
        that cannot be used is KeysUnusable, transient (the job retries), never a template error; a message without
        a short link does not depend on it.
        """
        tracked = category_of(job.event_type) is not Category.ACCOUNT
        key = self._first_key if tracked else None
        return JobLinks(job.job_id, job.user_id, job.created_at + JOB_RETENTION, key, self._base)

    def _first_key(self) -> bytes:
        return parse_keys(self._key(), self._source)[0]

"""The in-app channel: a user's inbox, its counts, and the frames pushed to the user's live WebSocket connections.

A ``websocket`` job becomes one :class:`InboxItem` (its id derived from the job, so a redelivered job finds the
item it stored and pushes nothing again) and is ``SENT`` once stored, whether or not the user is online. Each of
the user's live connections then gets ``{"type": "notification", "item": …, "counts": …}``; every change a user
makes (seen, read, unread, archive, read-all) pushes ``{"type": "counts", "unseen", "unread", "total"}``.

Frames respect API Gateway's limits: a WebSocket frame carries at most 32 KiB and a message 128 KiB. A
notification frame that would not fit one frame goes out without the item's ``body`` and ``data`` and with
``"truncated": true``; the client reads the whole item from the inbox API.

An item's read, the first since it was unread (``read`` or ``read-all``), is told to the status webhooks that
subscribe to ``inbox.read`` (``webhooks``; none, none told) before it is written: see :meth:`InboxService.mark`.

A user has at most ``max_connections`` live connections (the MaxConnectionsPerUser parameter, 10 by default):
``$connect`` closes the oldest beyond it (:meth:`InboxService.connect`), and every read of a user's connections
reads at most that many records, so a user with a flood of stale records cannot make a delivery's read unbounded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Optional

from notify.clock import Clock, iso
from notify.errors import ConnectionGone, DeliveryError, NotFound, StoreUnavailable
from notify.limits import DEFAULT_MAX_CONNECTIONS, FRAME_BYTES
from notify.models import Channel, NotificationJob
from notify.ports import BeforeRead, ConnectionPoster, ConnectionStore, InboxStore
from notify.records import (
    Connection,
    InAppDelivery,
    InboxAction,
    InboxCounts,
    InboxFilter,
    InboxItem,
    InboxPage,
    RenderedMessage,
)
from notify.services.webhook_emitter import WebhookEmitter, for_inbox_read

log = logging.getLogger(__name__)

#: A stored item stays well inside DynamoDB's 400 KB item limit: above this its ``data`` is dropped.
MAX_ITEM_BYTES = 300 * 1024
#: API Gateway closes a WebSocket connection after 2 hours; its record expires with it.
CONNECTION_LIFETIME = timedelta(hours=2)
#: $connect reads up to this many records beyond the limit: the connects that may race it (WebSocketFunction's
#: reserved concurrency is 50 by default) and records whose $disconnect was lost. Each connect trims what it read,
#: so a partition holding more (records written before the limit existed) shrinks connect by connect.
CONNECT_READ_MARGIN = 50
#: $connect records a connection before API Gateway completes its handshake, and PostToConnection answers 410 until
#: then. A connection this young that answers 410 is kept (its TTL or a later 410 removes it), so a frame sent in
#: that moment cannot make a new socket deaf for its 2 hours.
HANDSHAKE_GRACE = timedelta(seconds=30)
DEFAULT_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class Connected:
    """What $connect did: the connection it recorded and the user's other connections it closed or forgot."""

    connection: Connection
    closed: tuple[str, ...] = ()  # the oldest beyond the limit: closed through the management API and forgotten
    gone: tuple[str, ...] = ()  # expired records, or connections closed already (410): forgotten
    kept: dict[str, str] = field(default_factory=dict)  # connection → why it is left for the next connect to trim


def item_id(job: NotificationJob) -> str:
    """The inbox item id of a job: its time in hex milliseconds (so ids sort newest-last) and a hash of the job id."""
    moment = job.send_after or job.created_at
    millis = int(moment.timestamp() * 1000)
    return f"{millis:012x}{hashlib.sha256(job.job_id.encode()).hexdigest()[:20]}"


# Posted to a connection just before the user's newer connections push it out (MaxConnectionsPerUser): its client
# must not reconnect by itself, or two tabs over a limit of one would keep closing each other.
REPLACED_FRAME = {"type": "closed", "reason": "connection_limit"}


def counts_frame(counts: InboxCounts) -> dict[str, Any]:
    """The frame pushed after every change to a user's inbox."""
    return {"type": "counts", "unseen": counts.unseen, "unread": counts.unread, "total": counts.total}


def notification_frame(item: InboxItem, counts: InboxCounts) -> bytes:
    """The frame that announces a new item, cut to one WebSocket frame (see the module's docstring)."""
    document = item.document()
    frame: dict[str, Any] = {"type": "notification", "item": document, "counts": counts_frame(counts)}
    data = _encode(frame)
    if len(data) <= FRAME_BYTES:
        return data
    frame["item"] = {**document, "body": None, "data": {}, "truncated": True}
    data = _encode(frame)
    if len(data) <= FRAME_BYTES:
        return data
    # Only a very long title is left to blame: keep the ids, the client reads the rest from the inbox.
    frame["item"] = {**document, "title": None, "body": None, "data": {}, "truncated": True}
    return _encode(frame)


class InboxService:
    """Stores in-app notifications, answers the inbox API and keeps the user's open sockets up to date."""

    def __init__(
        self,
        inbox: InboxStore,
        connections: ConnectionStore,
        poster: Optional[ConnectionPoster],
        clock: Clock,
        retention: timedelta = DEFAULT_RETENTION,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        webhooks: Optional[WebhookEmitter] = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("a user may have at least one connection")
        self._inbox = inbox
        self._connections = connections
        self._poster = poster
        self._clock = clock
        self._retention = retention
        self._max_connections = max_connections
        self._webhooks = webhooks

    # -- the worker ---------------------------------------------------------------------

    def deliver(
        self,
        job: NotificationJob,
        message: RenderedMessage,
        time_left: Callable[[], bool] = lambda: True,
    ) -> InAppDelivery:
        """Store the job's item and push it to the user's live connections.

        A redelivered job (its item stored already) pushes nothing: the first copy did, or the item waits in
        the inbox. A connection that is gone (410) is forgotten; one that fails otherwise is reported in
        ``failed`` and the item still waits in the inbox. ``time_left`` is asked before each post (the claim's
        lease); once it says no, the remaining connections are not posted to.
        """
        item = self.item_for(job, message)
        stored = self._inbox.put(item)
        if not stored:
            return InAppDelivery(item.id, stored=False)
        if self._poster is None:
            return InAppDelivery(item.id, stored=True)
        counts = self._inbox.counts(job.user_id, self._clock())
        targets = self._targets(job)
        reached, gone, failed = self._post_all(job.user_id, targets, notification_frame(item, counts), time_left)
        return InAppDelivery(item.id, stored=True, reached=reached, gone=gone, failed=failed)

    def item_for(self, job: NotificationJob, message: RenderedMessage) -> InboxItem:
        """The inbox item a job becomes (title and body from its rendered template, data from its payload)."""
        created = job.send_after or job.created_at
        item = InboxItem(
            id=item_id(job),
            user_id=job.user_id,
            job_id=job.job_id,
            event_type=job.event_type,
            created_at=iso(created),
            expires_at=iso(max(created, self._clock()) + self._retention),
            title=message.title,
            body=message.body,
            data=dict(job.payload),
        )
        if len(_encode(item.document())) > MAX_ITEM_BYTES:
            item = InboxItem(**{**item.__dict__, "data": {}})
        return item

    # -- the inbox API ------------------------------------------------------------------

    def page(self, user_id: str, status: InboxFilter, limit: int, cursor: Optional[str]) -> InboxPage:
        """One page of the user's inbox, newest first, with the user's counts."""
        now = self._clock()
        items, next_cursor = self._inbox.page(user_id, status, limit, cursor, now)
        return InboxPage(items, next_cursor, self._inbox.counts(user_id, now))

    def counts(self, user_id: str) -> InboxCounts:
        """The user's unseen, unread and total counts."""
        return self._inbox.counts(user_id, self._clock())

    def mark(self, user_id: str, item: str, action: InboxAction) -> tuple[InboxItem, InboxCounts]:
        """Apply ``action`` to one of the user's items (NotFound if they have none by that id); push the counts.

        Reading an unread item emits ``inbox.read`` first, before the write: if the messages cannot be queued
        (StoreUnavailable, a 503) the item stays unread, so the user's retry emits them again. Emitting after the
        write would lose them when the queue failed, since the retry would find the item read and emit nothing. A
        message may therefore go out twice (the write failed after it, or two reads raced), always with the same
        ``webhook-id`` (the endpoint, ``inbox.read`` and the job), so a receiver keeps one. An item marked unread
        and read again emits again, with that same id."""
        changed = self._inbox.mark(user_id, item, action, self._clock(), before_read=self._read_emitter(user_id))
        if changed is None:
            raise NotFound(f"inbox item {item} not found")
        return changed, self.push_counts(user_id)

    def read_all(self, user_id: str) -> tuple[int, InboxCounts]:
        """Mark all the user's unread items read; return how many changed and the counts (pushed). Each batch's
        ``inbox.read`` messages are emitted before its write, as in :meth:`mark`: a failure leaves that batch and the
        rest unread for the retry."""
        changed = self._inbox.mark_all_read(user_id, self._clock(), before_read=self._read_emitter(user_id))
        return changed, self.push_counts(user_id)

    def _read_emitter(self, user_id: str) -> Optional[BeforeRead]:
        """What the store calls with the jobs of the user's items it is about to mark read: their ``inbox.read``
        messages onto the delay queue (StoreUnavailable if they cannot be). Only websocket jobs become items."""
        webhooks = self._webhooks
        if webhooks is None:
            return None

        def emit(jobs: list[dict[str, str]]) -> None:
            channel = Channel.WEBSOCKET.value
            webhooks.emit([c for job in jobs for c in for_inbox_read({**job, "user_id": user_id, "channel": channel})])

        return emit

    def push_counts(self, user_id: str) -> InboxCounts:
        """Send the user's fresh counts to each live connection (best effort) and return them."""
        counts = self.counts(user_id)
        if self._poster is not None:
            targets = self._connections.of_user(user_id, self._clock(), self._max_connections)
            self._post_all(user_id, targets, _encode(counts_frame(counts)), lambda: True)
        return counts

    # -- the WebSocket API --------------------------------------------------------------

    def connect(self, user_id: str, connection_id: str) -> Connected:
        """Record a connection whose handshake carried a valid token for ``user_id``, then make room for it: close
        the user's oldest live connections beyond the limit and forget the expired ones.

        The new connection is recorded first and the user's records are read after (consistently), so of two
        connects at once the later read sees both, and together they leave the limit. The new connection itself is
        never closed here: each connect keeps itself and the newest others. A connection that answers 410 while
        young enough to be still in its handshake (a racing connect's) is kept, not forgotten: forgetting it would
        leave its socket open and deaf; the next connect closes it. Failures to close or forget are reported in
        ``kept`` and never refuse the handshake: the new connection is recorded, and the next connect trims again.
        Without a management API (no poster) the oldest are only forgotten.
        """
        now = self._clock()
        connection = Connection(connection_id, user_id, iso(now), iso(now + CONNECTION_LIFETIME))
        self._connections.add(connection)
        try:
            records = self._connections.records_of(user_id, self._max_connections + CONNECT_READ_MARGIN)
        except StoreUnavailable as exc:
            log.warning("the connections of %s could not be read to trim them: %s", user_id, exc)
            return Connected(connection, kept={"*": f"not read: {exc}"[:500]})
        others = [c for c in records if c.connection_id != connection_id]
        expired = [c for c in others if not _live(c, now)]
        newest_first = sorted((c for c in others if _live(c, now)), key=_age_key, reverse=True)
        excess = newest_first[self._max_connections - 1 :]
        closed: list[str] = []
        gone: list[str] = []
        kept: dict[str, str] = {}
        for old in expired:
            self._forget(old, kept, gone)
        for old in reversed(excess):  # the oldest first
            try:
                if self._poster is not None:
                    self._tell_replaced(old.connection_id)
                    self._poster.close(old.connection_id)
            except ConnectionGone:
                if self._opening(old):
                    kept[old.connection_id] = "410 while its handshake may still be completing: kept"
                else:
                    self._forget(old, kept, gone)
                continue
            except DeliveryError as exc:
                log.warning("connection %s of %s could not be closed: %s", old.connection_id, user_id, exc)
                kept[old.connection_id] = str(exc)[:500]
                continue
            self._forget(old, kept, closed)
        return Connected(connection, tuple(closed), tuple(gone), kept)

    def _tell_replaced(self, connection_id: str) -> None:
        """Say why the connection is about to close (best effort: the close that follows is what counts)."""
        assert self._poster is not None
        try:
            self._poster.post(connection_id, _encode(REPLACED_FRAME))
        except (ConnectionGone, DeliveryError) as exc:
            log.info("connection %s was not told it is replaced: %s", connection_id, exc)

    def disconnect(self, connection_id: str) -> None:
        """Forget a closed connection."""
        self._connections.remove(connection_id)

    def reply(self, connection_id: str, frame: dict[str, Any]) -> None:
        """Answer a frame the client sent, on its own connection (a closed one is forgotten)."""
        if self._poster is None:
            return
        try:
            self._poster.post(connection_id, _encode(frame))
        except ConnectionGone:
            self._connections.remove(connection_id)

    # -- steps --------------------------------------------------------------------------

    def _forget(self, connection: Connection, kept: dict[str, str], forgotten: list[str]) -> None:
        """Remove a connection's record: appended to ``forgotten``, or to ``kept`` with the store's error."""
        try:
            self._connections.remove(connection.connection_id, connection.user_id)
        except StoreUnavailable as exc:
            log.warning("connection %s could not be forgotten: %s", connection.connection_id, exc)
            kept[connection.connection_id] = str(exc)[:500]
        else:
            forgotten.append(connection.connection_id)

    def _targets(self, job: NotificationJob) -> list[Connection]:
        """The user's live connections (at most the limit); only the named one if the job names a connection of this
        user's (a connection of anyone else's is never posted to)."""
        connections = self._connections.of_user(job.user_id, self._clock(), self._max_connections)
        explicit = job.contact.connection_id if job.contact else None
        if explicit:
            return [c for c in connections if c.connection_id == explicit]
        return connections

    def _post_all(
        self, user_id: str, targets: list[Connection], data: bytes, time_left: Callable[[], bool]
    ) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, str]]:
        reached: list[str] = []
        gone: list[str] = []
        failed: dict[str, str] = {}
        assert self._poster is not None
        for connection in targets:
            connection_id = connection.connection_id
            if not time_left():
                failed[connection_id] = "not posted: the claim's lease was running out"
                continue
            try:
                self._poster.post(connection_id, data)
            except ConnectionGone:
                if self._opening(connection):
                    failed[connection_id] = "410 while its handshake may still be completing: kept"
                    continue
                gone.append(connection_id)
                self._connections.remove(connection_id, user_id)
            except DeliveryError as exc:
                log.warning("posting to connection %s failed: %s", connection_id, exc)
                failed[connection_id] = str(exc)[:500]
            else:
                reached.append(connection_id)
        return tuple(reached), tuple(gone), failed

    def _opening(self, connection: Connection) -> bool:
        """True while the connection is young enough that API Gateway may not have completed its handshake."""
        try:
            connected = datetime.fromisoformat(connection.connected_at)
        except ValueError:
            return False
        return self._clock() - connected < HANDSHAKE_GRACE


def _live(connection: Connection, now: datetime) -> bool:
    try:
        return datetime.fromisoformat(connection.expires_at) > now
    except ValueError:
        return False


def _age_key(connection: Connection) -> tuple[str, str]:
    """Orders connections by when they connected (ISO times in UTC sort as text), the id breaking ties."""
    return (connection.connected_at, connection.connection_id)


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

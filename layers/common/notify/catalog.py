"""The event type registry: each type's payload model, default channels, priority and TTL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from notify.errors import FieldError, ValidationFailed
from notify.models import Category, Channel, Priority


class Payload(BaseModel):
    """Base of every payload model: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UserRegistered(Payload):
    """``user_registered``: the link that confirms the new account, and the user's first name if known."""

    confirmation_url: HttpUrl
    first_name: Optional[str] = Field(default=None, max_length=100)


class PasswordReset(Payload):
    """``password_reset``: the reset link and how many minutes it stays valid (at most a week)."""

    reset_url: HttpUrl
    expires_in_minutes: int = Field(gt=0, le=7 * 24 * 60)


class ReviewLiked(Payload):
    """``review_liked``: which review of which film was liked, by whom, and its number of likes now."""

    review_id: str = Field(min_length=1, max_length=128)
    movie_id: str = Field(min_length=1, max_length=128)
    movie_title: str = Field(min_length=1, max_length=300)
    liked_by: str = Field(min_length=1, max_length=200)
    likes_count: int = Field(ge=1)


class NewEpisode(Payload):
    """``new_episode``: the series, the season and episode numbers, and where to watch it."""

    series_id: str = Field(min_length=1, max_length=128)
    series_title: str = Field(min_length=1, max_length=300)
    season: int = Field(ge=1)
    episode: int = Field(ge=1)
    watch_url: HttpUrl
    episode_title: Optional[str] = Field(default=None, max_length=300)


class NewFilm(Payload):
    """``new_film``: the film, its release date and where to watch it."""

    film_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1, max_length=300)
    release_date: date
    watch_url: HttpUrl


class CampaignTriggered(Payload):
    """Emitted by the scheduler; carries the campaign's own event type and payload."""

    campaign_id: str = Field(min_length=1, max_length=128)
    run_id: str = Field(min_length=1, max_length=256)
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class EventType:
    """What the service knows about one event type."""

    name: str
    payload_model: type[Payload]
    default_channels: tuple[Channel, ...]
    priority: Priority
    ttl: timedelta
    category: Category

    def sample_payload(self) -> dict[str, Any]:
        """A payload that validates, for template previews and docs."""
        return dict(SAMPLES[self.name])

    def describe(self) -> dict[str, Any]:
        """The public JSON shape: defaults, the payload's required and optional fields and a sample payload."""
        fields = self.payload_model.model_fields
        return {
            "event_type": self.name,
            "category": self.category.value,
            "channels": [c.value for c in self.default_channels],
            "priority": self.priority.value,
            "ttl_seconds": int(self.ttl.total_seconds()),
            "required": [name for name, f in fields.items() if f.is_required()],
            "optional": [name for name, f in fields.items() if not f.is_required()],
            "sample_payload": self.sample_payload(),
        }


EVENT_TYPES: dict[str, EventType] = {
    spec.name: spec
    for spec in (
        EventType(
            "user_registered", UserRegistered, (Channel.EMAIL,), Priority.HIGH, timedelta(days=1), Category.ACCOUNT
        ),
        EventType(
            "password_reset", PasswordReset, (Channel.EMAIL,), Priority.HIGH, timedelta(hours=1), Category.ACCOUNT
        ),
        EventType(
            "review_liked",
            ReviewLiked,
            (Channel.PUSH, Channel.WEBSOCKET),
            Priority.LOW,
            timedelta(days=2),
            Category.SOCIAL,
        ),
        EventType(
            "new_episode",
            NewEpisode,
            (Channel.PUSH, Channel.WEBSOCKET),
            Priority.NORMAL,
            timedelta(days=3),
            Category.CONTENT,
        ),
        EventType(
            "new_film", NewFilm, (Channel.EMAIL, Channel.PUSH), Priority.NORMAL, timedelta(days=7), Category.CONTENT
        ),
        # A campaign run's jobs are marketing, whatever the campaign's own event type.
        EventType(
            "campaign_triggered",
            CampaignTriggered,
            (Channel.EMAIL,),
            Priority.LOW,
            timedelta(days=1),
            Category.MARKETING,
        ),
    )
}

SAMPLES: dict[str, dict[str, Any]] = {
    "user_registered": {"confirmation_url": "https://example.com/confirm/abc", "first_name": "Ada"},
    "password_reset": {"reset_url": "https://example.com/reset/xyz", "expires_in_minutes": 30},
    "review_liked": {
        "review_id": "r-1",
        "movie_id": "m-1",
        "movie_title": "Arrival",
        "liked_by": "Grace",
        "likes_count": 3,
    },
    "new_episode": {
        "series_id": "s-1",
        "series_title": "Dark",
        "season": 1,
        "episode": 2,
        "watch_url": "https://example.com/watch/s-1/1/2",
    },
    "new_film": {
        "film_id": "f-1",
        "title": "Dune",
        "release_date": "2026-12-01",
        "watch_url": "https://example.com/watch/f-1",
    },
    "campaign_triggered": {
        "campaign_id": "c-1",
        "run_id": "c-1#2026-12-01T09:00:00Z",
        "event_type": "new_film",
        "payload": {},
    },
}


def get_event_type(name: str, loc: str = "event_type") -> EventType:
    """The registered type called ``name``, or a 422-shaped error listing the known ones."""
    try:
        return EVENT_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValidationFailed(
            [FieldError(loc, f"unknown event type {name!r}; known types: {known}", "enum")]
        ) from None


def validate_payload(event_type: EventType, payload: dict[str, Any], loc: str = "payload") -> dict[str, Any]:
    """Check ``payload`` strictly against the type's model; return it normalised to JSON types."""
    try:
        model = event_type.payload_model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(field_errors(exc, prefix=loc)) from None
    return model.model_dump(mode="json", exclude_none=True)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Translate pydantic errors into dotted-path field errors."""
    out = []
    for err in exc.errors(include_url=False):
        parts = [prefix] if prefix else []
        parts += [str(p) for p in err["loc"]]
        out.append(FieldError(".".join(parts) or "body", err["msg"], err["type"]))
    return out


def category_of(event_type: str) -> Category:
    """The category of a job of ``event_type``; an unknown type (a job from a newer API) counts as content."""
    spec = EVENT_TYPES.get(event_type)
    return spec.category if spec is not None else Category.CONTENT

"""The templates the service ships for every built-in event type and channel (locale ``en``).

Push and in-app messages carry their links as short links (``{{ url | short }}``), whose clicks count on the job;
emails keep plain links, which SES's click tracking wraps (account mail: neither, it is never tracked).
"""

from __future__ import annotations

from typing import Any

from notify.clock import Clock, iso
from notify.models import Channel
from notify.ports import TemplateStore
from notify.records import Template

_HI = "Hi {{ user.first_name or 'there' }},"
# The visible unsubscribe link of every email that is not an account notification (the headers carry it too).
_BYE_TEXT = "{% if event.unsubscribe_url %}\n--\nUnsubscribe: {{ event.unsubscribe_url }}\n{% endif %}"
_BYE_HTML = (
    '{% if event.unsubscribe_url %}<p style="font-size:small"><a href="{{ event.unsubscribe_url }}">'
    "Unsubscribe</a> from emails like this one.</p>{% endif %}"
)

DEFAULTS: dict[tuple[str, Channel], dict[str, Any]] = {
    ("user_registered", Channel.EMAIL): {
        "subject": "Welcome{% if first_name %}, {{ first_name }}{% endif %}! Please confirm your email",
        "body_text": _HI + "\n\nConfirm your email address: {{ confirmation_url }}\n",
        "body_html": "<p>" + _HI + '</p><p><a href="{{ confirmation_url }}">Confirm your email address</a></p>',
    },
    ("password_reset", Channel.EMAIL): {
        "subject": "Reset your password",
        "body_text": _HI + "\n\nReset your password within {{ expires_in_minutes }} minutes: {{ reset_url }}\n"
        "If you did not ask for this, ignore this email.\n",
        "body_html": "<p>" + _HI + '</p><p><a href="{{ reset_url }}">Reset your password</a> within '
        "{{ expires_in_minutes }} minutes.</p><p>If you did not ask for this, ignore this email.</p>",
    },
    ("review_liked", Channel.EMAIL): {
        "subject": "{{ liked_by }} liked your review of {{ movie_title }}",
        "body_text": _HI + "\n\n{{ liked_by }} liked your review of {{ movie_title }} "
        "({{ likes_count }} like{{ 's' if likes_count != 1 else '' }} so far).\n" + _BYE_TEXT,
        "body_html": "<p>" + _HI + "</p><p>{{ liked_by }} liked your review of <b>{{ movie_title }}</b> "
        "({{ likes_count }} like{{ 's' if likes_count != 1 else '' }} so far).</p>" + _BYE_HTML,
    },
    ("review_liked", Channel.PUSH): {
        "title": "Your review got a like",
        "body": "{{ liked_by }} liked your review of {{ movie_title }}",
    },
    ("review_liked", Channel.WEBSOCKET): {
        "title": "{{ liked_by }} liked your review",
        "body": "{{ liked_by }} liked your review of {{ movie_title }} "
        "({{ likes_count }} like{{ 's' if likes_count != 1 else '' }} so far).",
    },
    ("new_episode", Channel.EMAIL): {
        "subject": "New episode of {{ series_title }}: S{{ season }}E{{ episode }}",
        "body_text": _HI + "\n\nSeason {{ season }}, episode {{ episode }} of {{ series_title }} is out.\n"
        "Watch it: {{ watch_url }}\n" + _BYE_TEXT,
        "body_html": "<p>" + _HI + "</p><p>Season {{ season }}, episode {{ episode }} of <b>{{ series_title }}</b> "
        'is out.</p><p><a href="{{ watch_url }}">Watch now</a></p>' + _BYE_HTML,
    },
    ("new_episode", Channel.PUSH): {
        "title": "{{ series_title }}: new episode",
        "body": "S{{ season }}E{{ episode }} is out. Watch now: {{ watch_url | short }}",
    },
    ("new_episode", Channel.WEBSOCKET): {
        "title": "New episode of {{ series_title }}",
        "body": "Season {{ season }}, episode {{ episode }}{% if episode_title %}: {{ episode_title }}{% endif %} "
        "is out. Watch it: {{ watch_url | short }}",
    },
    ("new_film", Channel.EMAIL): {
        "subject": "{{ title }} is now available",
        "body_text": _HI + "\n\n{{ title }} is out ({{ release_date }}). Watch it: {{ watch_url }}\n" + _BYE_TEXT,
        "body_html": "<p>" + _HI + "</p><p><b>{{ title }}</b> is out ({{ release_date }}).</p>"
        '<p><a href="{{ watch_url }}">Watch now</a></p>' + _BYE_HTML,
    },
    ("new_film", Channel.PUSH): {
        "title": "New film: {{ title }}",
        "body": "Out {{ release_date }}. Watch now: {{ watch_url | short }}",
    },
    ("new_film", Channel.WEBSOCKET): {
        "title": "New film: {{ title }}",
        "body": "Out {{ release_date }}. Watch it: {{ watch_url | short }}",
    },
    ("user_registered", Channel.WEBSOCKET): {
        "title": "Welcome{% if first_name %}, {{ first_name }}{% endif %}!",
        "body": "Please confirm your email address to finish signing up.",
    },
    ("password_reset", Channel.WEBSOCKET): {
        "title": "Password reset requested",
        "body": "A link to reset your password was sent to your email; it works for {{ expires_in_minutes }} minutes.",
    },
}
# Every other (type, channel) pair gets a generic template so no default channel is ever missing one.
for _type in ("user_registered", "password_reset", "campaign_triggered"):
    for _channel in Channel:
        DEFAULTS.setdefault(
            (_type, _channel),
            {
                "subject": "A message for you",
                "body_text": _HI + "\n\nYou have a new notification.\n",
                "body_html": "<p>" + _HI + "</p><p>You have a new notification.</p>",
            }
            if _channel is Channel.EMAIL
            else {"title": "Notification", "body": "You have a new notification."}
            if _channel is Channel.PUSH
            else {"title": "Notification", "body": "You have a new notification."},
        )


def seed_default_templates(store: TemplateStore, clock: Clock, locale: str = "en") -> int:
    """Store every default template that has no version yet; return how many were written."""
    written = 0
    for (event_type, channel), parts in DEFAULTS.items():
        if store.latest(event_type, channel, locale) is not None:
            continue
        store.save(
            Template(
                event_type=event_type,
                channel=channel,
                locale=locale,
                version=0,
                template_id=f"{event_type}.{channel.value}.{locale}",
                created_at=iso(clock()),
                **parts,
            )
        )
        written += 1
    return written

"""The templates the service ships for every built-in event type and channel (locale ``en``).

Push and in-app messages carry their links as short links (``{{ url | short }}``), whose clicks count on the job;
emails keep plain links, which SES's click tracking wraps (account mail: neither, it is never tracked).

The digest variants (``review_liked.digest``, ``new_episode.digest``, issue 23) render one notification for a
digest of a type's notifications: the top-level payload fields are the newest member's, ``digest.count`` counts the
members and ``digest.items`` (oldest first) holds the ones the rule keeps (its ``max_items``); an email lists them
all, a push or an in-app message at most :data:`DIGEST_LISTED`, then "and N more". Each wording covers one member
("Ann liked"), two ("Ann and Bob liked") and more ("Ann and 49 others liked").
"""

from __future__ import annotations

from typing import Any

from notify.clock import Clock, iso
from notify.digests import digest_template_key
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

# -- digest variants ------------------------------------------------------------------------------------------------

#: How many of a digest's members a default digest template lists before "and N more".
DIGEST_LISTED = 10
# Sets ``shown`` (the members listed) and ``more`` (how many are not), ahead of a part that lists members: a push or
# an in-app message lists DIGEST_LISTED; an email lists every member the rule keeps (its max_items).
_SHOWN = f"{{% set shown = digest.items[:{DIGEST_LISTED}] %}}{{% set more = digest.count - shown | length %}}"
_SHOWN_ALL = "{% set shown = digest.items %}{% set more = digest.count - shown | length %}"
_AND_MORE_TEXT = "{% if more > 0 %}and {{ more }} more\n{% endif %}"
_AND_MORE_HTML = "{% if more > 0 %}<p>and {{ more }} more</p>{% endif %}"
_LIKERS = (
    "{{ liked_by }}{% if digest.count == 2 %} and {{ digest.items[0].payload.liked_by }}"
    "{% elif digest.count > 2 %} and {{ digest.count - 1 }} others{% endif %}"
)
_LIKES_SO_FAR = "({{ likes_count }} like{{ 's' if likes_count != 1 else '' }} so far)"
_EPISODE = "S{{ item.payload.season }}E{{ item.payload.episode }}"
_EPISODE_TITLE = "{% if item.payload.get('episode_title') %}: {{ item.payload.episode_title }}{% endif %}"
_EPISODE_TITLE_TEXT = "{% if item.payload.get('episode_title') %} ({{ item.payload.episode_title }}){% endif %}"
_EPISODES_OUT = "{{ digest.count }} new episodes of {{ series_title }} are out"
_EPISODE_LIST_INLINE = (
    "{% for item in shown %}" + _EPISODE + "{{ ', ' if not loop.last else '' }}{% endfor %}"
    "{% if more > 0 %} and {{ more }} more{% endif %}"
)

DEFAULTS.update(
    {
        (digest_template_key("review_liked"), Channel.EMAIL): {
            "subject": _LIKERS + " liked your review of {{ movie_title }}",
            "body_text": _SHOWN_ALL
            + _HI
            + "\n\n"
            + _LIKERS
            + " liked your review of {{ movie_title }} "
            + _LIKES_SO_FAR
            + "{% if digest.count > 1 %}:\n{% for item in shown %}- {{ item.payload.liked_by }}\n{% endfor %}"
            + _AND_MORE_TEXT
            + "{% else %}.\n{% endif %}"
            + _BYE_TEXT,
            "body_html": _SHOWN_ALL
            + "<p>"
            + _HI
            + "</p><p>"
            + _LIKERS
            + " liked your review of <b>{{ movie_title }}</b> "
            + _LIKES_SO_FAR
            + "{% if digest.count > 1 %}:</p><ul>{% for item in shown %}<li>{{ item.payload.liked_by }}"
            "</li>{% endfor %}</ul>" + _AND_MORE_HTML + "{% else %}.</p>{% endif %}" + _BYE_HTML,
        },
        (digest_template_key("review_liked"), Channel.PUSH): {
            "title": "Your review got {% if digest.count == 1 %}a like{% else %}{{ digest.count }} likes{% endif %}",
            "body": _LIKERS + " liked your review of {{ movie_title }}",
        },
        (digest_template_key("review_liked"), Channel.WEBSOCKET): {
            "title": _LIKERS + " liked your review",
            "body": _LIKERS + " liked your review of {{ movie_title }} " + _LIKES_SO_FAR + ".",
        },
        (digest_template_key("new_episode"), Channel.EMAIL): {
            "subject": "{% if digest.count == 1 %}New episode of {{ series_title }}: S{{ season }}E{{ episode }}"
            "{% else %}{{ digest.count }} new episodes of {{ series_title }}{% endif %}",
            "body_text": _SHOWN_ALL
            + _HI
            + "\n\n{% if digest.count == 1 %}Season {{ season }}, episode {{ episode }} of "
            "{{ series_title }} is out.\nWatch it: {{ watch_url }}\n{% else %}" + _EPISODES_OUT + ":\n"
            "{% for item in shown %}- "
            + _EPISODE
            + _EPISODE_TITLE_TEXT
            + ": {{ item.payload.watch_url }}\n{% endfor %}"
            + _AND_MORE_TEXT
            + "{% endif %}"
            + _BYE_TEXT,
            "body_html": _SHOWN_ALL + "<p>" + _HI + "</p>{% if digest.count == 1 %}<p>Season {{ season }}, episode "
            '{{ episode }} of <b>{{ series_title }}</b> is out.</p><p><a href="{{ watch_url }}">Watch now</a></p>'
            "{% else %}<p>{{ digest.count }} new episodes of <b>{{ series_title }}</b> are out:</p><ul>"
            '{% for item in shown %}<li><a href="{{ item.payload.watch_url }}">'
            + _EPISODE
            + "</a>"
            + _EPISODE_TITLE
            + "</li>{% endfor %}</ul>"
            + _AND_MORE_HTML
            + "{% endif %}"
            + _BYE_HTML,
        },
        (digest_template_key("new_episode"), Channel.PUSH): {
            "title": "{{ series_title }}: {% if digest.count == 1 %}new episode{% else %}{{ digest.count }} new "
            "episodes{% endif %}",
            "body": _SHOWN
            + "{% if digest.count == 1 %}S{{ season }}E{{ episode }} is out{% else %}"
            + _EPISODE_LIST_INLINE
            + " are out{% endif %}. Watch now: {{ watch_url | short }}",
        },
        (digest_template_key("new_episode"), Channel.WEBSOCKET): {
            "title": "{% if digest.count == 1 %}New episode{% else %}{{ digest.count }} new episodes{% endif %} of "
            "{{ series_title }}",
            "body": _SHOWN + "{% if digest.count == 1 %}Season {{ season }}, episode {{ episode }}"
            "{% if episode_title %}: {{ episode_title }}{% endif %} is out{% else %}"
            + _EPISODE_LIST_INLINE
            + " are out{% endif %}. Watch it: {{ watch_url | short }}",
        },
    }
)

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

"""Users' notification preferences: read, replace, and import in bulk (docs/PREFERENCES.md)."""
# No `from __future__ import annotations`: the Event Handler reads route annotations at runtime.

from typing import Annotated

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body
from notify.models import PreferencesInput, Strict, UserId
from notify.services.preferences import MAX_BULK
from pydantic import Field

from api.deps import Preferences, PreferencesReader, PreferencesWriter
from api.openapi import responses
from api.params import PathUserId
from api.views import PreferencesList, PreferencesView

tracer = Tracer()
router = Router()
NIGHTS_OFF = Example(
    value={
        "channels": {"push": True},
        "categories": {"marketing": {"email": False}},
        "quiet_hours": {"start": "22:00", "end": "08:00", "timezone": "Europe/Berlin"},
    }
)


class UserPreferencesInput(PreferencesInput):
    """One user's document in an import."""

    user_id: UserId


class PreferencesImport(Strict):
    """Many users' documents at once (a migration from another provider); each replaces that user's."""

    items: list[UserPreferencesInput] = Field(min_length=1, max_length=MAX_BULK)


@router.get("/api/v1/users/<user_id>/preferences", tags=["preferences"], responses=responses(200, "The preferences"))
@tracer.capture_method
def get_preferences(_: PreferencesReader, preferences: Preferences, user_id: PathUserId) -> PreferencesView:
    """The user's preferences; a user who never set any has everything on and no quiet hours."""
    return PreferencesView.model_validate(preferences.get(user_id))


@router.put("/api/v1/users/<user_id>/preferences", tags=["preferences"], responses=responses(200, "Stored"))
@tracer.capture_method
def put_preferences(
    _: PreferencesWriter,
    preferences: Preferences,
    user_id: PathUserId,
    document: Annotated[PreferencesInput, Body(embed=False, openapi_examples={"nights_off": NIGHTS_OFF})],
) -> PreferencesView:
    """Replace the user's preferences with this document (what it leaves out is on); account mail cannot be off.

    The document GET returned is accepted as it is: user_id, if sent, must be the path's (else a 422 on user_id);
    suppressed and updated_at are read-only and ignored.
    """
    return PreferencesView.model_validate(preferences.replace(user_id, document))


@router.put("/api/v1/preferences", tags=["preferences"], responses=responses(200, "Stored, in order"))
@tracer.capture_method
def import_preferences(
    _: PreferencesWriter, preferences: Preferences, batch: Annotated[PreferencesImport, Body(embed=False)]
) -> PreferencesList:
    """Replace up to 100 users' preferences in one call; nothing is stored unless every document is valid."""
    documents = [
        (i.user_id, PreferencesInput.model_validate(i.model_dump(mode="json", exclude={"user_id"})))
        for i in batch.items
    ]
    return PreferencesList(items=[PreferencesView.model_validate(d) for d in preferences.replace_many(documents)])

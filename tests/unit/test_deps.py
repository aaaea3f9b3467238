"""api.deps: the services a route is given through ``Depends()``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from api import deps
from api.context import Services
from aws_lambda_powertools.event_handler import Depends


def _service_aliases() -> dict[str, tuple[Any, Any]]:
    """Each alias of api.deps whose dependency gives a part of the container: its type and its dependency."""
    fields = get_type_hints(Services)
    found = {}
    for name, alias in vars(deps).items():
        if get_origin(alias) is not Annotated:
            continue
        kind, *metadata = get_args(alias)
        for meta in metadata:
            if isinstance(meta, Depends) and meta.dependency.__name__ in fields:
                found[name] = (kind, meta.dependency)
    return found


def test_each_service_a_route_is_given_is_the_containers_part_of_the_type_its_annotation_names() -> None:
    fields = get_type_hints(Services)
    aliases = _service_aliases()

    assert {
        "Ingest",
        "Queries",
        "Templates",
        "Throttles",
        "DeadLetters",
        "Campaigns",
        "Segments",
        "Preferences",
        "Links",
        "ShortLinkService",
        "Overviews",
        "Rendered",
        "Inbox",
        "Tokens",
    } <= set(aliases)
    for name, (kind, dependency) in aliases.items():
        part = dependency.__name__
        assert fields[part] is kind, f"{name} names {kind.__name__}, the container's {part} is {fields[part]}"
        given = object()
        assert dependency(SimpleNamespace(**{part: given})) is given

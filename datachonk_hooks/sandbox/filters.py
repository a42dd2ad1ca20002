"""The filters dbt Cloud's lists take (`project_id`, `project_id__in`, `status__in`,
`state`...), read as django-filter reads them, so a filtered list answers here exactly what
it would there, and a bad value gets the same 400. Unknown filters never reach an endpoint:
the routes table passes on only the parameters the spec declares for the route."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from datachonk_hooks.sandbox.parsing import _int_param, _list_param
from datachonk_hooks.sandbox.wire import _ApiError

T = TypeVar("T")
#: the soft-deletion states a list may ask for; nothing in the sandbox is ever deleted
_STATES = {"active": True, "1": True, "all": True, "deleted": False, "2": False}


def narrow(
    rows: list[T],
    query: dict[str, list[str]],
    names: Iterable[str],
    value_of: Callable[[T, str], object],
    filters: dict[str, object],
) -> list[T]:
    """Keep the rows whose field equals `name`'s integer, or is in `name__in`'s list (sent
    as `[1,2]`, `1,2` or repeated), for each name given; echo each one used in `filters`."""
    for name in names:
        field, many = name.removesuffix("__in"), name.endswith("__in")
        if many and query.get(name):
            try:
                wanted = [int(item) for item in _list_param(query, name)]
            except ValueError:
                raise _ApiError.invalid({name: ["Enter a number."]}) from None
            rows = [row for row in rows if value_of(row, field) in wanted]
            filters[name] = wanted
        elif not many:
            value = _int_param(query, name)
            if value is not None:
                rows = [row for row in rows if value_of(row, field) == value]
                filters[name] = value
    return rows


def soft_state(rows: list[T], query: dict[str, list[str]], filters: dict[str, object]) -> list[T]:
    """`state`: active (1), deleted (2) or all; every object here is active."""
    given = (query.get("state") or [""])[-1].strip()
    if not given:
        return rows
    if given.lower() not in _STATES:
        message = f"Select a valid choice. {given} is not one of the available choices."
        raise _ApiError.invalid({"state": [message]})
    filters["state"] = int(given) if given.isdigit() else given.lower()
    return rows if _STATES[given.lower()] else []

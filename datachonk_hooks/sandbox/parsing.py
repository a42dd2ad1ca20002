"""How the simulator reads a request as dbt Cloud does: list and integer query
parameters, ordering, limit/offset pages, the body (JSON or a form) and a trigger's fields,
with the same validation messages, so clients meet the real service's refusals here first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TypeVar
from urllib.parse import parse_qs

from datachonk_hooks.sandbox.wire import _ApiError, _Incoming, _Trigger

_STR_OVERRIDES = (
    "git_sha",
    "git_branch",
    "schema_override",
    "dbt_version_override",
    "target_name_override",
)
_INT_OVERRIDES = (
    "azure_pull_request_id",
    "github_pull_request_id",
    "gitlab_merge_request_id",
    "non_native_pull_request_id",
    "threads_override",
    "timeout_seconds_override",
)
_OVERRIDES = (*_STR_OVERRIDES, *_INT_OVERRIDES, "generate_docs_override", "steps_override")
T = TypeVar("T")


def _list_param(query: dict[str, list[str]], name: str) -> list[str]:
    """Every list encoding clients send: JSON array, Python-list-like, comma list, repeats."""
    items: list[str] = []
    for raw in query.get(name, []):
        text = raw.strip()
        if text.startswith("["):
            text = text[1:-1] if text.endswith("]") else text[1:]
        items += [part.strip().strip("'\"").strip() for part in text.split(",")]
    return [item for item in items if item]


def _int_param(query: dict[str, list[str]], name: str, default: int | None = None) -> int | None:
    values = query.get(name)
    if not values or not values[-1].strip():
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise _ApiError.invalid({name: ["A valid integer is required."]}) from None


def _ordering(query: dict[str, list[str]], allowed: Iterable[str]) -> str:
    order_by = (query.get("order_by") or ["id"])[-1].strip() or "id"
    if order_by.lstrip("-") not in allowed:
        raise _ApiError.invalid({"order_by": ["Invalid ordering field."]})
    return order_by


def _page(
    items: list[T], query: dict[str, list[str]], filters: dict[str, object], order_by: str
) -> tuple[list[T], dict[str, object]]:
    """One page by limit/offset: at most 100 items, as dbt Cloud enforces since 2023."""
    limit = _int_param(query, "limit", 100) or 0
    offset = _int_param(query, "offset", 0) or 0
    if not 1 <= limit <= 100:
        bound = "less than or equal to 100" if limit > 100 else "greater than or equal to 1"
        raise _ApiError.invalid({"limit": [f"Ensure this value is {bound}."]})
    if offset < 0:
        raise _ApiError.invalid({"offset": ["Ensure this value is greater than or equal to 0."]})
    chosen = items[offset : offset + limit]
    return chosen, {
        "filters": {"limit": limit, "offset": offset, **filters},
        "order_by": order_by,
        "pagination": {"count": len(chosen), "total_count": len(items)},
    }


def _decode_body(incoming: _Incoming) -> object | None:
    if not incoming.raw.strip():
        return None
    text = incoming.raw.decode("utf-8", errors="replace")
    media = incoming.content_type.split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        form = parse_qs(text, keep_blank_values=True)
        return {k: (v if k == "steps_override" else v[-1]) for k, v in form.items()}
    if media == "multipart/form-data":
        raise _ApiError.detail(415, f'Unsupported media type "{media}" in request.')
    try:
        body: object = json.loads(text)
    except ValueError as exc:
        raise _ApiError.detail(400, f"JSON parse error - {exc}") from None
    return body


def _clean_override(name: str, value: object) -> object:
    """The override as dbt Cloud stores it; a bad one raises ValueError with its message."""
    if name == "steps_override":
        if not isinstance(value, list):
            raise ValueError(f'Expected a list of items but got type "{type(value).__name__}".')
        if not value:
            raise ValueError("This list may not be empty.")
        steps = tuple(step.strip() for step in value if isinstance(step, str))
        if len(steps) < len(value) or not all(steps):
            raise ValueError("This field may not be blank.")
        return steps
    if name in _INT_OVERRIDES:
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value).strip()):
            raise ValueError("A valid integer is required.")
        return int(str(value))
    if name == "generate_docs_override":
        if str(value).lower() not in ("true", "false"):
            raise ValueError("Must be a valid boolean.")
        return str(value).lower() == "true"
    if not isinstance(value, str) or not value.strip():
        raise ValueError("This field may not be blank.")
    return value


def _parse_trigger(body: object) -> _Trigger:
    """Validate a trigger body field by field, with the serializer's messages."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        message = f"Invalid data. Expected a dictionary, but got {type(body).__name__}."
        raise _ApiError.invalid({"non_field_errors": [message]})
    errors: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    cause = body.get("cause")
    if cause is None:
        errors["cause"] = ["This field is required."]
    elif not isinstance(cause, str):
        errors["cause"] = ["Not a valid string."]
    elif not cause.strip():
        errors["cause"] = ["This field may not be blank."]
    elif len(cause) > 255:  # not in the spec, but real triggers fail beyond it
        errors["cause"] = ["Ensure this field has no more than 255 characters."]
    for name in _OVERRIDES:
        if body.get(name) is not None:
            try:
                values[name] = _clean_override(name, body[name])
            except ValueError as exc:
                errors[name] = [str(exc)]
    if errors or not isinstance(cause, str):
        raise _ApiError.invalid(errors)
    texts = {name: value for name, value in values.items() if isinstance(value, str)}
    steps = values.get("steps_override")
    named = ("git_sha", "git_branch", "schema_override", "steps_override")
    return _Trigger(
        cause=cause,
        git_sha=texts.get("git_sha"),
        git_branch=texts.get("git_branch"),
        schema_override=texts.get("schema_override"),
        steps_override=steps if isinstance(steps, tuple) else None,
        other_overrides=tuple((k, v) for k, v in values.items() if k not in named),
    )

"""The simulator's wire format: statuses, records of its state, the API's envelopes and
errors, and the parsing of requests (query parameters, pages, trigger bodies)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qs

QUEUED, STARTING, RUNNING, SUCCESS, ERROR, CANCELLED = 1, 2, 3, 10, 20, 30
STATUS_NAMES = {
    1: "Queued",
    2: "Starting",
    3: "Running",
    10: "Success",
    20: "Error",
    30: "Cancelled",
}
TERMINAL = frozenset({SUCCESS, ERROR, CANCELLED})
FIRST_RUN_ID = 70403103900001  # 14 digits like cell-based accounts: no client may assume 32 bits
_FIRST_TRIGGER_ID = 70403104900001
_FIRST_STEP_ID = 70403105900001
_OUTCOMES = {"success": SUCCESS, "error": ERROR, "cancelled": CANCELLED}
_JOB_TYPES = frozenset({"ci", "scheduled", "other", "merge", "exposure_sync", "adaptive", "hybrid"})
_ALL = frozenset({"read", "run", "cancel", "projects"})
_GRANTS = {
    "account_admin": _ALL,
    "job_admin": _ALL,
    "job_runner": frozenset({"read", "run", "cancel"}),  # Projects: no access
    "job_viewer": frozenset({"read", "projects"}),
}
_DENIED = {
    "run": "You do not have permission to run jobs."
    " Job Runner or Job Admin permission is required.",
    "cancel": "You do not have permission to cancel runs."
    " Job Runner or Job Admin permission is required.",
    "projects": "You do not have permission to view projects."
    " Job Viewer, Job Admin or Account Admin permission is required.",
}
_FAULT_OPTIONS = {
    "429": {"retry_after"},
    "500": {"message"},
    "slow": {"delay"},
    "drip": {"interval", "body_only"},
    "redirect": {"port", "status", "bare"},
    "odd_id": {"id"},
}
_FAULT_KINDS = frozenset(
    {
        "500",
        "502_html",
        "503",
        "429",
        "slow",
        "drop_after_create",
        "504_after_create",
        "404",
        "malformed_json",
        "reset",
        "drip",
        "redirect",
        "odd_id",
    }
)
_INVALID = "The request was invalid. Please double check the provided data and try again."
_GATEWAY_TIMEOUT = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)
_BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
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
# Fields whose values never vary in this simulation, written as they appear on the wire.
_RUN_FIXED = (
    '{"dbt_version": "versionless", "owner_thread_id": null, "deferring_run_id": null,'
    ' "has_docs_generated": false, "has_sources_generated": false, "blocked_by": [],'
    ' "last_checked_at": null, "last_heartbeat_at": null, "should_start_at": null,'
    ' "trigger": null, "job": null, "environment": null, "retrying_run_id": null,'
    ' "used_repo_cache": null}'
)
_JOB_FIXED = (
    '{"generate_docs": false, "run_generate_sources": false, "run_compare_changes": false,'
    ' "description": "", "dbt_version": null, "raw_dbt_version": null, "state": 1,'
    ' "run_failure_count": 0, "deferring_job_definition_id": null,'
    ' "deferring_environment_id": null, "lifecycle_webhooks": false,'
    ' "lifecycle_webhooks_url": null, "settings": {"threads": 4, "target_name": "default"},'
    ' "schedule": {"cron": "0 6 * * *", "date": {"type": "every_day"},'
    ' "time": {"type": "at_exact_hours", "hours": [6]}}, "is_deferrable": false,'
    ' "triggers_on_draft_pr": false, "job_completion_trigger_condition": null,'
    ' "generate_sources": false, "cron_humanized": "At 06:00 AM", "next_run": null,'
    ' "next_run_humanized": null}'
)
_PROJECT_FIXED = (
    '{"description": "", "connection_id": null, "repository_id": null,'
    ' "semantic_layer_config_id": null, "skipped_setup": false, "state": 1,'
    ' "dbt_project_subdirectory": null, "docs_job_id": null, "freshness_job_id": null, "type": 0}'
)
# The jaffle_shop graph every simulated run builds: (model, materialization, key), in build order
_MODELS = (
    ("stg_customers", "view", "customer_id"),
    ("stg_orders", "view", "order_id"),
    ("stg_payments", "view", "payment_id"),
    ("customers", "table", "customer_id"),
    ("orders", "table", "order_id"),
)
_PARENTS = {
    "customers": ("stg_customers", "stg_orders", "stg_payments"),
    "orders": ("stg_orders", "stg_payments"),
}
_FAILING_MODEL = "orders"
_NODES = tuple(
    node
    for model, kind, key in _MODELS
    for node in (
        (kind, model),
        ("test", f"unique_{model}_{key}"),
        ("test", f"not_null_{model}_{key}"),
    )
)
T = TypeVar("T")


@dataclass(frozen=True)
class SandboxRun:
    """What a test may assert about a run, with its status as of the moment of reading."""

    id: int
    job_id: int
    project_id: int
    cause: str
    git_sha: str | None
    git_branch: str | None
    steps_override: tuple[str, ...] | None
    schema_override: str | None
    status: int
    created_at: datetime


@dataclass(frozen=True)
class SandboxRequest:
    """One request as received, so tests can assert what a client really sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: object | None
    authorization_ok: bool


@dataclass(frozen=True)
class _Project:
    id: int
    name: str
    created_s: float  # simulated seconds since the sandbox's epoch, like every *_s below
    #: the git URL dbt Cloud clones from (`repository.remote_url`), when one is connected
    repository_url: str | None = None


@dataclass(frozen=True)
class _Job:
    id: int
    project_id: int
    name: str
    outcome: str
    queued_s: float
    starting_s: float
    running_s: float
    environment_id: int
    job_type: str
    active: bool
    execute_steps: tuple[str, ...]
    created_s: float


@dataclass(frozen=True)
class _Trigger:
    cause: str
    cause_category: str = "api"
    git_sha: str | None = None
    git_branch: str | None = None
    schema_override: str | None = None
    steps_override: tuple[str, ...] | None = None
    other_overrides: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class _Run:
    """A run keeps a snapshot of its job, so editing the job later never rewrites history."""

    id: int
    trigger_id: int
    job: _Job
    trigger: _Trigger
    created_s: float
    cancelled_s: float | None = None

    @property
    def step_names(self) -> tuple[str, ...]:
        commands = self.trigger.steps_override or self.job.execute_steps
        fixed = ("Clone Git Repository", "Create Profile from Connection Snowflake")
        return (*fixed, *(f"Invoke dbt with `{c}`" for c in ("dbt deps", *commands)))


@dataclass(frozen=True)
class _Progress:
    """Where a run stands at one instant."""

    status: int
    dequeued_s: float | None
    started_s: float | None
    finished_s: float | None
    message: str | None


@dataclass(frozen=True)
class _Fault:
    kind: str
    method: str
    pattern: re.Pattern[str]
    times: int
    options: tuple[tuple[str, object], ...]

    def option(self, name: str, default: float) -> float:
        """A numeric option (a delay, a port), or `default` when it is not a number."""
        value = dict(self.options).get(name, default)
        return float(value) if isinstance(value, int | float) else default

    def value(self, name: str, default: object = None) -> object:
        """An option as given (an odd id may be any JSON value: a huge int, a string...)."""
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class _Incoming:
    method: str
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    content_type: str
    raw: bytes


@dataclass(frozen=True)
class _Call:
    """What an endpoint needs: the id in the path, the artifact path, the query and body."""

    key: int
    rest: str
    query: dict[str, list[str]]
    body: object | None
    body_error: _ApiError | None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


class _ApiError(Exception):
    """Ends a request early with exactly the payload dbt Cloud sends for that case."""

    def __init__(self, status: int, payload: object) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload

    @classmethod
    def envelope(
        cls, status: int, message: str, data: object = None, developer: str | None = ""
    ) -> _ApiError:
        return cls(status, {"status": _status_block(status, message, developer), "data": data})

    @classmethod
    def invalid(cls, errors: dict[str, list[str]]) -> _ApiError:
        return cls.envelope(400, _INVALID, errors)

    @classmethod
    def detail(cls, status: int, text: str) -> _ApiError:
        """Django REST framework's own answers, outside the envelope."""
        return cls(status, {"detail": text})

    def response(self, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
        return _json_response(self.status, self.payload, headers)


def _json_response(
    status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> _Response:
    return _Response(status, json.dumps(payload).encode(), headers=headers)


def _status_block(code: int, message: str, developer: str | None = "") -> dict[str, object]:
    return {
        "code": code,
        "is_success": code < 400,
        "user_message": message,
        "developer_message": developer,
    }


def _ok(data: object, extra: object = None) -> _Response:
    payload: dict[str, object] = {"status": _status_block(200, "Success!"), "data": data}
    if extra is not None:
        payload["extra"] = extra
    return _json_response(200, payload)


def _hms(seconds: float) -> str:
    """dbt Cloud's "HH:MM:SS", where hours go past 24."""
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _humanize(seconds: float) -> str:
    """'56 minutes, 48 seconds' or '1 day': the largest unit and the next one if non-zero."""
    total = max(0, int(seconds))
    values = (total // 86400, total % 86400 // 3600, total % 3600 // 60, total % 60)
    names = ("day", "hour", "minute", "second")
    first = next((i for i, value in enumerate(values) if value), None)
    if first is None:
        return "0 minutes"
    parts = [(values[i], names[i]) for i in (first, first + 1) if i < 4 and values[i]]
    return ", ".join(f"{value} {name}{'' if value == 1 else 's'}" for value, name in parts)


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

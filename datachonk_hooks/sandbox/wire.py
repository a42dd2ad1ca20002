"""The simulator's vocabulary: run statuses and ids, permission sets, fault kinds, the
records of its state and of one request, and the API's envelopes and errors.

Shared by every part of the simulator (`parsing` reads requests, `shapes` writes the JSON,
`endpoints` and `routes` answer), so it holds data and the smallest helpers only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

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
    """What an endpoint needs: the object's id in the path (`key`), the project it is
    nested in (`parent`, v3), the artifact path (`rest`), the query and the body."""

    key: int
    rest: str
    query: dict[str, list[str]]
    body: object | None
    body_error: _ApiError | None
    parent: int = 0


@dataclass(frozen=True)
class _User:
    """A member of the account (`/users/`): the sandbox seeds one, its owner."""

    id: int
    first_name: str
    last_name: str
    email: str
    created_s: float = 0.0


@dataclass(frozen=True)
class _Environment:
    """A deployment environment of a project, as the jobs that run in it name it."""

    id: int
    project_id: int


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

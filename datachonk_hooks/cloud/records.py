"""dbt Cloud's answers as typed records: runs, their steps, jobs and projects.

Parsed leniently: unknown fields are ignored and odd values tolerated (a time with no UTC
equivalent, an absurd step index, a huge log), but ids must be 64-bit positive integers:
anything else is a bad response, not a crash later in the ledger.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from datachonk_hooks.cloud.errors import BadResponseError
from datachonk_hooks.cloud.status import RunStatus

#: dbt Cloud's ids are int64 (cell-based accounts use 14 digits); 0 and below are no ids
MAX_ID = 2**63 - 1
#: characters of a server's message shown in an error (cut with an ellipsis beyond)
MESSAGE_LIMIT = 200
JSONDict = dict[str, Any]


# --------------------------------------------------------------------------- records


#: bounds on what a run's steps may hold (dbt Cloud's are far smaller): a step's place,
#: its name (shown in one line), and its logs (only their end is ever shown)
MAX_STEP_INDEX = 9999
MAX_STEP_NAME = 200
MAX_STEP_LOGS = 1 << 20


@dataclass(frozen=True)
class RunStep:
    index: int
    name: str
    status: RunStatus
    logs: str = ""
    duration: timedelta | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        index = _int(data.get("index")) or 0
        logs = str(data.get("logs") or "")
        return cls(
            index=index if 0 <= index <= MAX_STEP_INDEX else 0,
            name=_clip(str(data.get("name") or "").strip(), MAX_STEP_NAME),
            status=RunStatus(_int(data.get("status")) or 0),
            logs=logs if len(logs) <= MAX_STEP_LOGS else logs[-MAX_STEP_LOGS:],
            duration=parse_duration(data.get("duration")),
        )


@dataclass(frozen=True)
class Run:
    """One dbt Cloud run, parsed leniently: unknown fields are ignored, odd ones tolerated."""

    id: int
    status: RunStatus
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    status_message: str | None = None
    git_sha: str | None = None
    git_branch: str | None = None
    cause: str | None = None
    href: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration: timedelta | None = None
    job_name: str | None = None
    steps: tuple[RunStep, ...] = ()

    @property
    def is_complete(self) -> bool:
        return self.status.is_terminal

    @property
    def current_step(self) -> RunStep | None:
        """The step that is running now, or else the last one that started."""
        started = [s for s in self.steps if s.status != RunStatus.QUEUED]
        running = [s for s in started if not s.status.is_terminal]
        candidates = running or started
        return candidates[-1] if candidates else None

    @property
    def failed_step(self) -> RunStep | None:
        return next((s for s in self.steps if s.status == RunStatus.ERROR), None)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        run_id = _required_id(data, "run")
        trigger = _map(data.get("trigger"))
        job = _map(data.get("job"))
        steps = _list(data.get("run_steps"))
        return cls(
            id=run_id,
            status=RunStatus(_int(data.get("status")) or 0),
            account_id=_id(data.get("account_id"), f"run {run_id}: account_id"),
            project_id=_id(data.get("project_id"), f"run {run_id}: project_id"),
            job_id=_id(data.get("job_definition_id"), f"run {run_id}: job_definition_id")
            or _id(data.get("job_id"), f"run {run_id}: job_id"),
            status_message=_str(data.get("status_message")),
            git_sha=_str(data.get("git_sha")) or _str(trigger.get("git_sha")),
            git_branch=_str(data.get("git_branch")) or _str(trigger.get("git_branch")),
            cause=_str(trigger.get("cause")),
            href=_str(data.get("href")),
            created_at=parse_timestamp(data.get("created_at")),
            started_at=parse_timestamp(data.get("started_at")),
            finished_at=parse_timestamp(data.get("finished_at")),
            duration=parse_duration(data.get("duration")),
            job_name=_str(job.get("name")),
            steps=tuple(
                sorted(
                    (RunStep.from_api(s) for s in steps if isinstance(s, Mapping)),
                    key=lambda s: s.index,
                )
            ),
        )

    def to_json(self) -> JSONDict:
        """A stable JSON shape for `--json` output and the local API."""
        return {
            "id": self.id,
            "status": int(self.status),
            "status_humanized": self.status.label,
            # what the status means for whoever pushed (the README's Run statuses table)
            "status_hint": self.status.hint,
            "status_description": self.status.described,
            "is_complete": self.is_complete,
            "status_message": self.status_message,
            "account_id": self.account_id,
            "project_id": self.project_id,
            "job_id": self.job_id,
            "job_name": self.job_name,
            "git_sha": self.git_sha,
            "git_branch": self.git_branch,
            "cause": self.cause,
            "href": self.href,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": self.duration.total_seconds() if self.duration else None,
            "steps": [
                {"index": s.index, "name": s.name, "status": s.status.label} for s in self.steps
            ],
        }


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    account_id: int | None = None
    project_id: int | None = None
    environment_id: int | None = None
    job_type: str | None = None
    active: bool = True
    triggers: tuple[str, ...] = ()
    execute_steps: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        job_id = _required_id(data, "job")
        triggers = _map(data.get("triggers"))
        steps = _list(data.get("execute_steps"))
        return cls(
            id=job_id,
            name=str(data.get("name") or ""),
            account_id=_id(data.get("account_id"), f"job {job_id}: account_id"),
            project_id=_id(data.get("project_id"), f"job {job_id}: project_id"),
            environment_id=_id(data.get("environment_id"), f"job {job_id}: environment_id"),
            job_type=_str(data.get("job_type")),
            active=_int(data.get("state")) in (None, 1) and not data.get("deactivated"),
            triggers=tuple(sorted(name for name, on in triggers.items() if on is True)),
            execute_steps=tuple(str(s) for s in steps),
        )


@dataclass(frozen=True)
class Project:
    id: int
    name: str
    account_id: int | None = None
    #: the git URL dbt Cloud clones (`repository.remote_url`), when it was asked for and told
    repository_url: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        project_id = _required_id(data, "project")
        repository = data.get("repository")
        url = repository.get("remote_url") if isinstance(repository, Mapping) else None
        return cls(
            project_id,
            str(data.get("name") or ""),
            _id(data.get("account_id"), f"project {project_id}: account_id"),
            url if isinstance(url, str) and url else None,
        )


# --------------------------------------------------------------------------- parsing helpers


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _id(value: object, what: str) -> int | None:
    """An id dbt Cloud sent, or None when it sent none (absent or null).

    Anything else than an integer in 1..2^63-1 (a bool, a string, a float, 2^64+5, -5) is a
    bad response, not a crash later in the ledger (SQLite holds 64-bit integers) nor a run
    recorded under a number dbt Cloud never gave it.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise BadResponseError(
            f"dbt Cloud returned {what} {_shown(value)}, which is no id (an integer from 1 to"
            " 2^63-1)"
        )
    return value


def _required_id(data: Mapping[str, Any], kind: str) -> int:
    ident = _id(data.get("id"), f"a {kind} with id")
    if ident is None:
        raise BadResponseError(f"dbt Cloud returned a {kind} without an id")
    return ident


def _shown(value: object) -> str:
    """A value from the server as JSON (escaped), one short line even for a 300-digit id."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return _clip(text, 40)


def _clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut to `limit` characters with an ellipsis, so a long message stays readable
    (and stays the server's words: it is never replaced by something else)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_timestamp(value: object) -> datetime | None:
    """dbt Cloud sends `2024-07-03 13:59:00.653171+00:00` for runs and ISO `T...Z` for jobs."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # 0001-01-01T00:00+05:00 has no UTC time: no time at all
    except (ValueError, OverflowError):
        return None
    return parsed


def parse_duration(value: object) -> timedelta | None:
    """`"HH:MM:SS"` where hours may exceed 24 (`"24:00:36"`)."""
    if not isinstance(value, str):
        return None
    parts = value.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
        if not math.isfinite(seconds):
            return None
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    except (ValueError, OverflowError):  # "00:00:x", "99999999999:00:00"
        return None

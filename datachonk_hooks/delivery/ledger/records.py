"""What the ledger holds, as typed records: triggers, pushes, how runs ended, and its error.

Callers never see rows or dicts: `rows` turns the file's rows into these frozen records, and
every `Ledger` operation returns them. Times are timezone-aware UTC (`as_utc`, `to_text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.errors import DatachonkError, ExitCode

#: dbt Cloud run statuses after which a run never changes again (Success, Error, Cancelled).
TERMINAL_RUN_STATUSES = frozenset({10, 20, 30})

SOURCES = frozenset({"push", "manual", "ci"})


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(UTC)


class LedgerError(DatachonkError):
    """The ledger file cannot be used; the message names the file and what to do."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        #: the file is no SQLite database (or a damaged one): it can be moved aside
        self.damaged = damaged


class TriggerState(StrEnum):
    """Where a trigger is in its life; only PENDING (and stale SENDING) rows get sent."""

    AWAITING_PUSH = "awaiting_push"
    PENDING = "pending"
    SENDING = "sending"
    TRIGGERED = "triggered"
    FINISHED = "finished"
    PUSH_FAILED = "push_failed"


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the ledger keeps it for the outcome line and `history`.

    The failing step's text is dbt Cloud's (and the dbt project's): kept as received and
    sanitized where it is shown. `log_tail` holds the last lines of that step's logs.
    """

    status: int
    finished_at: datetime | None = None
    duration_s: float | None = None
    failed_step_index: int | None = None
    failed_step: str | None = None
    error_line: str | None = None
    log_tail: str | None = None


@dataclass(frozen=True)
class TriggerRecord:
    """One trigger of one dbt Cloud job for one commit, as the ledger holds it."""

    id: int
    #: "" when pushed while no host was configured, until it is sent (`record_host`)
    host: str
    account_id: int
    job_id: int
    sha: str
    branch: str | None
    request: TriggerRequest
    state: TriggerState
    reason: str | None
    run_id: int | None
    run_url: str | None
    run_status: int | None
    push_id: int | None
    source: str
    attempts: int
    first_attempt_at: datetime | None
    claimed_by: str | None
    claimed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    #: a send ended without an answer at this time: the run may yet appear in dbt Cloud
    unknown_since: datetime | None = None
    #: how the run ended, once a follower or a refresh saw its end
    outcome: RunOutcome | None = None
    #: when the developer was told that outcome (an outcome line, a `watch` to its end, the
    #: `history` table); None: not yet. A desktop notification does not count.
    told_at: datetime | None = None


@dataclass(frozen=True)
class PushRecord:
    """One `git push` the pre-push hook saw, so the waiter can tell when it has landed."""

    id: int
    remote_name: str
    remote_url: str
    git_pid: int | None
    tracking_before: dict[str, str]
    foreground: bool
    state: str
    reason: str | None
    created_at: datetime
    #: the landing waiter waiting for it ("pid@host"), once it has started
    waiter: str | None = None
    #: commits the `git push` command line named, besides local branch tips
    pushed_tips: tuple[str, ...] = ()


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_text(moment: datetime) -> str:
    """ISO text in UTC with a fixed shape, so text order is time order."""
    return as_utc(moment).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)

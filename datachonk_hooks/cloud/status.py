"""dbt Cloud's run statuses and what each means for the person who pushed.

Standard library only: the hook prints outcome lines with these texts, and must not import
the HTTP client to do so.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class RunStatus(IntEnum):
    """dbt Cloud's run status codes; unknown codes become pseudo-members, never a crash."""

    QUEUED = 1
    STARTING = 2
    RUNNING = 3
    SUCCESS = 10
    ERROR = 20
    CANCELLED = 30

    @classmethod
    def _missing_(cls, value: object) -> RunStatus | None:
        if not isinstance(value, int):
            return None
        if not 0 <= value <= 9999:  # no status dbt Cloud has: the ledger stores an INTEGER
            value = 0
        member = int.__new__(cls, value)
        member._name_ = f"UNKNOWN_{value}"
        member._value_ = value
        return member

    @property
    def label(self) -> str:
        """The name dbt Cloud shows (`status_humanized`)."""
        return self.name.title() if not self.name.startswith("UNKNOWN") else f"Status {self.value}"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED)

    @property
    def hint(self) -> str | None:
        """What the status means for the person who pushed (the status table in the README);
        None where dbt Cloud's own name says it all (Starting, unknown codes)."""
        return _STATUS_HINTS.get(self)

    @property
    def described(self) -> str:
        """`Queued (waiting for an available runner)`: the label with its hint."""
        hint = self.hint
        return f"{self.label} ({hint})" if hint else self.label


_STATUS_HINTS: Final[dict[RunStatus, str]] = {
    RunStatus.QUEUED: "waiting for an available runner",
    RunStatus.RUNNING: "monitor progress",
    RunStatus.SUCCESS: "models are live",
    RunStatus.ERROR: "one or more steps failed",
    RunStatus.CANCELLED: "re-trigger if needed: `datachonk-hook run --force`",
}


def retrigger_hint(sha: str | None) -> str:
    """The Cancelled hint, naming the commit when known (a bare `run --force` would trigger
    whatever HEAD is now, not the cancelled run's commit)."""
    ref = f" --ref {sha[:12]}" if sha else ""
    return f"re-trigger if needed: `datachonk-hook run --force{ref}`"

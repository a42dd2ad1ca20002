"""The doctor's report: one line per check, a mark, and for a failure how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

CONNECT = "run `datachonk-hook connect`"
#: what a check that talks to dbt Cloud says while no host is configured
NEEDS_HOST = "needs the dbt Cloud host (see the host check)"
_MARKS = {True: "ok", False: "FAIL", None: "skip"}


@dataclass(frozen=True)
class Check:
    """One line of the report; `passed` None means skipped because of an earlier failure."""

    name: str
    passed: bool | None
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix and self.passed is False else ""
        return f"{_MARKS[self.passed]:<4}  {self.name}: {self.detail}{fix}"


def doctor_lines(checks: list[Check]) -> list[str]:
    failed = sum(check.passed is False for check in checks)
    skipped = sum(check.passed is None for check in checks)
    if not failed and not skipped:
        summary = f"all {len(checks)} checks passed"
    else:
        summary = f"{failed} of {len(checks)} checks failed" + (
            f", {skipped} skipped" if skipped else ""
        )
    return [check.line() for check in checks] + [summary]

"""How runs ended, told to the person who pushed: once, where they already look.

The landing waiter follows the runs it started and records each end in the ledger
(`outcome_of`); the next `git push` (the hook) and the next `datachonk-hook` command print
one line per run that ended since the developer was last told (`tell`), from the ledger
alone, so telling costs no network. `Ledger.mark_told` marks before anything is printed:
two processes telling at once print each outcome once between them.

Step names, error lines and URLs are dbt Cloud's (and the dbt project's) text: they are
kept as received and sanitized here, where they become a line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from datachonk_hooks.cloud.status import RunStatus, retrigger_hint
from datachonk_hooks.delivery.ledger import RunOutcome, TriggerRecord
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.sanitize import sanitize

if TYPE_CHECKING:
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.delivery.ledger import Ledger

PREFIX = "datachonk:"
#: lines of the failing step's logs kept in the ledger (`watch` shows 30 of a live run)
LOG_TAIL_LINES = 30
#: the longest error line kept and shown; dbt's are far shorter
MAX_ERROR_LINE = 200
#: the longest log line kept in the tail (the ledger holds at most 30 of them)
MAX_TAIL_LINE = 500
#: the outcome lines one command prints at most; the rest are in `history`
MAX_TOLD = 10

# dbt Cloud's step logs start each line with the time ("12:01:05  ") and may hold colour
# codes; both go before a line is judged
_DECORATION = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_TIME_PREFIX = re.compile(r"^\s*\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:\s+|$)")
# dbt's per-node progress lines ("3 of 8 ERROR creating ... [ERROR in 1.02s]") name the
# node, not the error: the summary after "Completed with N error(s)" does
_PROGRESS = re.compile(r"^\d+ of \d+ ")
_ERROR_WORD = re.compile(r"\b(?:Error|error|ERROR)\b")
_COMPLETED_WITH_ERRORS = re.compile(r"^Completed with \d+ errors?")


def outcome_of(run: Run) -> RunOutcome:
    """What the ledger keeps of a run's end: status, duration, and for a failure the step,
    its first error line and the last lines of its logs."""
    duration = run.duration
    if duration is None and run.started_at is not None and run.finished_at is not None:
        duration = run.finished_at - run.started_at
    step = run.failed_step
    logs = step.logs if step is not None else ""
    tail = [line[:MAX_TAIL_LINE] for line in logs.rstrip().splitlines()[-LOG_TAIL_LINES:]]
    return RunOutcome(
        status=int(run.status),
        finished_at=run.finished_at,
        duration_s=duration.total_seconds() if duration is not None else None,
        failed_step_index=step.index if step is not None else None,
        failed_step=step.name if step is not None else None,
        error_line=(
            first_error_line(logs, run.status_message) if run.status == RunStatus.ERROR else None
        ),
        log_tail="\n".join(tail) or None,
    )


def first_error_line(logs: str, status_message: str | None = None) -> str | None:
    """The first line that says what went wrong: the first one of dbt's error summary,
    else the first line naming an error that is not a per-node progress line, else the
    run's status message."""
    lines = [_TIME_PREFIX.sub("", _DECORATION.sub("", line)).strip() for line in logs.splitlines()]
    for index, line in enumerate(lines):
        if _COMPLETED_WITH_ERRORS.match(line):
            found = next((later for later in lines[index + 1 :] if later), None)
            if found:
                return found[:MAX_ERROR_LINE]
    for line in lines:
        if line and _ERROR_WORD.search(line) and not _PROGRESS.match(line):
            return line[:MAX_ERROR_LINE]
    return status_message.strip()[:MAX_ERROR_LINE] if status_message else None


def compact_duration(seconds: float) -> str:
    """`3m12s`, `45s`, `1h02m`: short enough for a line in `git push` output."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def outcome_line(record: TriggerRecord) -> str:
    """One line for a run that ended, e.g.
    `run 70403103900001 for 0e92d14 (main) failed at step 4 "dbt build": Database Error in
    model orders https://...` (without the `datachonk:` prefix)."""
    outcome = record.outcome
    status = RunStatus(outcome.status if outcome else (record.run_status or 0))
    branch = f" ({record.branch})" if record.branch else ""
    head = f"run {record.run_id} for {record.sha[:7]}{branch}"
    took = (
        f" in {compact_duration(outcome.duration_s)}"
        if outcome is not None and outcome.duration_s is not None
        else ""
    )
    if status == RunStatus.SUCCESS:
        text = f"{head} succeeded{took}: {status.hint}"
    elif status == RunStatus.ERROR:
        step = ""
        if outcome is not None and outcome.failed_step_index is not None:
            step = f' at step {outcome.failed_step_index} "{outcome.failed_step or ""}"'
        why = f": {outcome.error_line}" if outcome is not None and outcome.error_line else ""
        text = f"{head} failed{step}{why}"
    elif status == RunStatus.CANCELLED:
        text = f"{head} was cancelled{took}: {retrigger_hint(record.sha)}"
    else:
        text = f"{head} ended: {status.described}"
    where = f" {record.run_url}" if record.run_url else ""
    return sanitize(text + where)


def tell(ledger: Ledger, echo: Callable[[str], None]) -> list[TriggerRecord]:
    """Print one line per run that ended since the developer was last told, and remember
    they were told. Returns the records told."""
    untold = ledger.untold()
    if not untold:
        return []
    marked = set(ledger.mark_told([record.id for record in untold]))
    told = [record for record in untold if record.id in marked]
    for record in told[-MAX_TOLD:]:
        echo(f"{PREFIX} {outcome_line(record)}")
    if len(told) > MAX_TOLD:
        echo(f"{PREFIX} {len(told) - MAX_TOLD} more runs ended: `datachonk-hook history`")
    return told


def tell_in(folder: Path, echo: Callable[[str], None]) -> None:
    """`tell` for the repository at `folder`, best effort: a command must work outside a
    repository, with no ledger yet, or with a ledger it cannot read."""
    from datachonk_hooks.delivery.ledger import Ledger, ledger_file
    from datachonk_hooks.push.gitrepo import open_repo

    try:
        repo = open_repo(folder)
        if not ledger_file(repo).exists():
            return
        with Ledger.for_repo(repo, busy_timeout=1.0) as ledger:
            tell(ledger, echo)
    except DatachonkError:
        return


def refresh(
    ledger: Ledger,
    records: Sequence[TriggerRecord],
    client_for: Callable[[TriggerRecord], DbtCloudClient],
    *,
    told: bool = False,
) -> list[TriggerRecord]:
    """Ask dbt Cloud once about each record whose run has not ended (as far as the ledger
    knows), and record what it says; the others, and any that cannot be asked, are
    returned unchanged. `told`: the caller shows the new status to the developer."""
    fresh = []
    for record in records:
        if record.run_id is None or record.outcome is not None:
            fresh.append(record)
            continue
        try:
            run = client_for(record).get_run(record.run_id)
        except DatachonkError:  # DbtCloudError too: the last known status stays
            fresh.append(record)
            continue
        fresh.append(note_run(ledger, record.id, run, told=told)[0])
    return fresh


def note_run(
    ledger: Ledger, trigger_id: int, run: Run, *, told: bool = False
) -> tuple[TriggerRecord, bool]:
    """Record what was seen of a run: its end with its outcome, else its status; (the
    record, whether this call recorded the end). The one way a follower, a refresh and a
    watch write what they saw, so an end is recorded (and notified) once."""
    return ledger.finish_run(trigger_id, outcome_of(run), told=told)
